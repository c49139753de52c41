"""The README's Python example works as written (with the documented PYTHONPATH),
and every public function has a docstring."""

import os
import re
import subprocess
import sys

import satalab


def readme_section(source_dir):
    text = open(os.path.join(source_dir, "README.md")).read()
    start = text.index("## Python module")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_readme_example_runs_as_written(source_dir):
    section = readme_section(source_dir)
    assert "export PYTHONPATH=$PWD/build/release/python" in section
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(example.strip().splitlines()) == 4  # the import line and three lines
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert 1e-6 < float(result.stdout) < 1.0  # a median absolute error


def test_every_public_name_is_documented():
    for name in satalab.__all__:
        obj = getattr(satalab, name)
        if callable(obj):
            assert obj.__doc__ and len(obj.__doc__) > 40, name
    for method in ("append", "query", "prefill", "values", "save", "load"):
        assert len(getattr(satalab.SataState, method).__doc__) > 40, method
    assert "softmax_scale" in satalab.attention.__doc__ and "1/sqrt(d_key)" in satalab.attention.__doc__
