"""notebooks/python_api.ipynb runs headless (jupyter nbconvert --execute, Debian's
/usr/bin/python3 kernel) and its checks come out true."""

import json
import os
import subprocess
import sys


def test_python_api_notebook_executes(source_dir, tmp_path):
    notebook = os.path.join(source_dir, "notebooks", "python_api.ipynb")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)  # the kernel draws inline figures into the notebook
    result = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", notebook, "--output-dir", str(tmp_path),
         "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=600"],
        capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    executed = json.load(open(tmp_path / "python_api.ipynb"))
    text = "".join("".join(output.get("text", "")) for cell in executed["cells"] if cell["cell_type"] == "code"
                   for output in cell["outputs"])
    assert "token by token equals one shot: True" in text
    figures = [o for cell in executed["cells"] if cell["cell_type"] == "code" for o in cell["outputs"]
               if "image/png" in o.get("data", {})]
    assert len(figures) == 1
