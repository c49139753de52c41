"""notebooks/lm_head.ipynb runs headless on the sample capture shipped with
experiments/configs/lm_heads.toml, and its numbers are those of satalab.decompose."""

import json
import os
import subprocess
import sys


def test_lm_head_notebook_executes(source_dir, tmp_path):
    notebook = os.path.join(source_dir, "notebooks", "lm_head.ipynb")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1",
               LM_CAPTURE=os.path.join(source_dir, "experiments", "configs", "lm_heads_sample.h5"))
    env.pop("MPLBACKEND", None)
    result = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", notebook, "--output-dir", str(tmp_path),
         "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=600"],
        capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    executed = json.load(open(tmp_path / "lm_head.ipynb"))
    text = "".join("".join(output.get("text", "")) for cell in executed["cells"] if cell["cell_type"] == "code"
                   for output in cell["outputs"])
    assert "lm_heads_sample.h5: layer" in text and "the widest spread" in text
    assert "smallest P with median relative error <= 10% at fp32:" in text
    figures = [o for cell in executed["cells"] if cell["cell_type"] == "code" for o in cell["outputs"]
               if "image/png" in o.get("data", {})]
    assert len(figures) == 1
