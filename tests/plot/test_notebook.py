#!/usr/bin/python3
"""notebooks/explore_results.ipynb runs headless (`jupyter nbconvert --execute`)
on tiny sweeps made by the satalab binary, without touching the notebook.

Usage: test_notebook.py SATALAB_BINARY  (run by ctest; needs Debian's
jupyter-nbconvert and python3-ipykernel: scripts/setup.sh --with-notebooks)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NOTEBOOK = os.path.join(SOURCE, "notebooks", "explore_results.ipynb")
CONFIGS = os.path.join(SOURCE, "experiments", "configs")
SATALAB = None


def sweep(config, out, *sets):
    args = [SATALAB, "sweep", os.path.join(CONFIGS, config), "--out", out, "--force", "--jobs", "1"]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True, capture_output=True)
    return out


def read(path):
    with open(path, "rb") as stream:
        return stream.read()


def nbconvert_command():
    jupyter = shutil.which("jupyter", path="/usr/bin") or shutil.which("jupyter")
    return [jupyter] if jupyter else [sys.executable, "-m", "jupyter"]


class NotebookTest(unittest.TestCase):
    def test_notebook_executes_headless_on_a_tiny_sweep(self):
        with tempfile.TemporaryDirectory(prefix="satalab_notebook_test_") as d:
            results = sweep("paper_error_quick.toml", f"{d}/grid.h5", "taylor_terms=[2,3]", "d_key=[4,8]",
                            "heads_times_d_key=8", "n_tokens=64")
            scale = sweep("scale_sweep.toml", f"{d}/scale.h5", "taylor_terms=[2,3]", "d_key=4", "method=sata",
                          "precision=fp32", "scale=[0.5,2.0]", "n_tokens=64")
            before = read(NOTEBOOK)
            env = dict(os.environ, SATALAB_RESULTS=results, SATALAB_SCALE_RESULTS=scale)
            result = subprocess.run(nbconvert_command() + ["nbconvert", "--to", "notebook", "--execute",
                                    "--ExecutePreprocessor.timeout=300", NOTEBOOK, "--output-dir", d],
                                    capture_output=True, text=True, env=env)
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            executed = read(os.path.join(d, "explore_results.ipynb")).decode("utf-8")
            self.assertEqual(executed.count('"image/png"'), 3, "expected three figures in the executed notebook")
            self.assertNotIn('"output_type": "error"', executed)
            self.assertTrue(read(NOTEBOOK) == before, "the notebook in the tree was modified")


if __name__ == "__main__":
    SATALAB = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
