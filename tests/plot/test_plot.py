#!/usr/bin/python3
"""scripts/plot.py end to end: every subcommand on tiny results files made by
the satalab binary gives a non-empty PNG of the size its grid implies, and bad
inputs give one line on stderr naming what is missing, with exit code 2.

Usage: test_plot.py SATALAB_BINARY  (run by ctest; needs Debian's h5py,
numpy, matplotlib and pandas under /usr/bin/python3)
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLOT = os.path.join(SOURCE, "scripts", "plot.py")
CONFIGS = os.path.join(SOURCE, "experiments", "configs")
SATALAB = None  # set from argv
DPI = 50


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def sweep(config, out, *sets):
    args = [SATALAB, "sweep", os.path.join(CONFIGS, config), "--out", out, "--force", "--jobs", "1"]
    for s in sets:
        args += ["--set", s]
    result = run(args)
    if result.returncode != 0:
        raise RuntimeError(f"satalab sweep {config} failed: {result.stderr}")
    return out


def png_size(path):
    with open(path, "rb") as stream:
        header = stream.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def expected_pixels(rows, cols, panel_w, panel_h):
    """figure.py: (0.8 + cols * panel_w) x (1.2 + rows * panel_h) inches."""
    return (round((0.8 + cols * panel_w) * DPI), round((1.2 + rows * panel_h) * DPI))


class PlotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="satalab_plot_test_")
        d = cls.dir
        cls.grid = sweep("paper_error_quick.toml", f"{d}/grid.h5", "taylor_terms=[2,3]", "d_key=[4,8]",
                         "heads_times_d_key=8", "n_tokens=64")
        cls.scale = sweep("scale_sweep.toml", f"{d}/scale.h5", "taylor_terms=[1,2]", "d_key=4", "method=sata",
                          "precision=fp32", "scale=[0.5,2.0]", "n_tokens=64")
        cls.poly = sweep("scale_sweep.toml", f"{d}/poly.h5", "taylor_terms=[3,4]", "d_key=[4,8]", "method=sata",
                         "precision=fp64", "truth=fp64", "scale=1.0", "n_tokens=64",
                         'polynomial=["taylor","chebyshev"]')
        cls.context = sweep("context_sweep.toml", f"{d}/context.h5", "n_tokens=[32,64]", "d_key=4",
                            'precision=["fp32","fp16-acc32"]')
        cls.needle = sweep("needle.toml", f"{d}/needle.h5", "taylor_terms=[2,3]", "needle_logit=[2.0,8.0]",
                           "n_tokens=64", "d_key=4")
        cls.pareto = sweep("taylor_vs_quantized.toml", f"{d}/pareto.h5", "d_key=4", "n_tokens=64",
                           "precision=fp32", "taylor_terms=[2,3]", 'kv_quant=["fp16","int8"]')
        cls.schemes = sweep("taylor_vs_quantized_schemes.toml", f"{d}/schemes.h5", "d_key=4", "n_tokens=64",
                            "taylor_terms=[2,3]", 'kv_quant=["int8","int4-g4-o0.05-s1-rq8"]',
                            'modifiers=["","rope"]', "truth_rows=16")
        cls.recipes = sweep("recipes.toml", f"{d}/recipes.h5", "n_tokens=[32,64]", "d_key=4", "heads=1",
                            "truth_rows=16", 'recipe=["none","flash2-bf16","sdpa-math-bf16"]', "precision=fp32")
        cls.bench = f"{d}/bench.h5"
        bench = run([SATALAB, "bench", "--sections", "decode", "--context", "1K", "4K", "-d", "4", "8",
                     "--precision", "fp32", "--repeats", "1", "--decode-steps", "4", "--process-budget", "2",
                     "--out", cls.bench])
        if bench.returncode != 0:
            raise RuntimeError(bench.stderr)
        cls.drift = f"{d}/drift.h5"
        drift = run([SATALAB, "drift", "-N", "2500", "--heads", "2", "--d-key", "4", "--d-value", "3", "-P", "3",
                     "--first-position", "100", "--positions", "4", "-o", cls.drift])
        if drift.returncode != 0:
            raise RuntimeError(drift.stderr)
        cls.cost = f"{d}/cost.json"
        info = run([SATALAB, "info", "--d-key", "8", "16", "32", "64", "-P", "1", "2", "3", "4", "--json"])
        if info.returncode != 0:
            raise RuntimeError(info.stderr)
        with open(cls.cost, "w") as stream:
            stream.write(info.stdout)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def plot(self, *args):
        return run([sys.executable, PLOT, *args, "--dpi", str(DPI)])

    def assert_png(self, args, size):
        out = os.path.join(self.dir, "out", "_".join(a.replace("=", "-") for a in args[:1] + args[2:]) + ".png")
        result = self.plot(*args, "--out", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"wrote {out}", result.stdout)
        self.assertGreater(os.path.getsize(out), 1000)
        self.assertEqual(png_size(out), size, args)
        import matplotlib.image
        pixels = matplotlib.image.imread(out)
        self.assertGreater(float(np.std(pixels[..., :3])), 0.01, f"{out} is blank")

    def assert_bad_input(self, args, *needles):
        result = self.plot(*args, "--out", os.path.join(self.dir, "bad.png"))
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "bad.png")))

    # --- every subcommand -------------------------------------------------------

    def test_cost_figures_have_two_panels(self):
        self.assert_png(["cost-vs-context", self.cost], expected_pixels(1, 2, 4.2, 3.4))
        self.assert_png(["cost-packing", self.cost], expected_pixels(1, 2, 4.2, 3.4))
        self.assert_png(["cost-heads", self.cost], expected_pixels(1, 2, 4.4, 4.0))
        self.assert_png(["cost-alpha", self.cost], expected_pixels(1, 2, 4.2, 3.4))

    def test_appendix_grids_have_one_panel_per_head_size_and_p(self):
        for error in ("abs", "rel"):
            self.assert_png(["hist-grid", self.grid, "--error", error], expected_pixels(2, 2, 3.0, 2.2))
            self.assert_png(["position-grid", self.grid, "--error", error], expected_pixels(2, 2, 3.0, 2.2))
        self.assert_png(["hist-grid", self.grid, "--component", "rounding"], expected_pixels(2, 2, 3.0, 2.2))

    def test_sweep_figures(self):
        self.assert_png(["scale", self.scale], expected_pixels(2, 1, 4.0, 3.0))
        self.assert_png(["normalisers", self.scale], expected_pixels(1, 1, 3.2, 2.6))
        self.assert_png(["context", self.context], expected_pixels(2, 1, 3.8, 2.8))
        self.assert_png(["decomposition", self.context, "--where", "n_tokens=64"], expected_pixels(2, 1, 3.6, 3.0))
        self.assert_png(["needle", self.needle], expected_pixels(1, 2, 4.2, 3.2))
        self.assert_png(["pareto", self.pareto, "--where", "precision=fp32"], expected_pixels(1, 1, 6.4, 4.4))
        self.assert_png(["polynomials", self.poly], expected_pixels(1, 2, 4.2, 3.4))
        self.assert_png(["apriori", self.poly], expected_pixels(1, 1, 4.6, 4.0))
        # One panel per workload (gaussian, gaussian+rope) and d_key.
        self.assert_png(["pareto-grid", self.schemes], expected_pixels(2, 1, 5.0, 3.8))
        # Kernel recipes: one row of panels per workload (gaussian, gaussian+outliers).
        self.assert_png(["recipes", self.recipes], expected_pixels(2, 2, 4.6, 3.4))

    def test_bench_figure(self):
        self.assert_png(["bench", self.bench], expected_pixels(1, 2, 4.4, 3.4))
        self.assert_bad_input(["bench", self.bench, "--precision", "bf16"], "no decode rows at precision bf16",
                              "fp32")
        self.assert_bad_input(["bench", self.bench, "-P", "7"], "taylor_terms=7")
        path = os.path.join(self.dir, "bench_v9.h5")
        shutil.copy(self.bench, path)
        with h5py.File(path, "r+") as f:
            f.attrs["bench_schema_version"] = np.int64(9)
        self.assert_bad_input(["bench", path], "bench_schema_version 9", "not supported")
        self.assert_bad_input(["bench", self.grid], "'bench_schema_version'", "missing")

    def test_drift_figure(self):
        self.assert_png(["drift", self.drift], expected_pixels(1, 3, 3.6, 2.8))
        self.assert_png(["drift", self.drift, self.drift], expected_pixels(1, 3, 3.6, 2.8))
        self.assert_bad_input(["drift", self.grid], "not a file of `satalab drift`")

    def test_help_lists_every_subcommand(self):
        result = run([sys.executable, PLOT, "--help"])
        self.assertEqual(result.returncode, 0)
        for name in ("cost-vs-context", "cost-packing", "cost-heads", "cost-alpha", "hist-grid", "position-grid",
                     "scale", "decomposition", "normalisers", "context", "needle", "pareto", "pareto-grid", "recipes",
                     "bench", "polynomials", "apriori", "drift"):
            self.assertIn(name, result.stdout)
            self.assertEqual(run([sys.executable, PLOT, name, "--help"]).returncode, 0, name)

    # --- bad input -----------------------------------------------------------------

    def broken_copy(self, name, edit):
        path = os.path.join(self.dir, name)
        shutil.copy(self.grid, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        return path

    def test_missing_dataset_is_named(self):
        path = self.broken_copy("no_hist.h5", lambda f: f.__delitem__("rel_hist"))
        self.assert_bad_input(["hist-grid", path, "--error", "rel"], "no_hist.h5", "'/rel_hist'", "missing")
        path = self.broken_copy("no_position.h5", lambda f: f["position"].__delitem__("abs_err_p95"))
        self.assert_bad_input(["position-grid", path], "'/position/abs_err_p95'", "missing")
        path = self.broken_copy("no_points.h5", lambda f: f.__delitem__("points"))
        self.assert_bad_input(["scale", path], "'/points'", "missing")

    def test_wrong_or_missing_schema_version_is_refused(self):
        path = self.broken_copy("v99.h5", lambda f: f.attrs.__setitem__("schema_version", np.int64(99)))
        self.assert_bad_input(["hist-grid", path], "schema_version 99", "not supported")
        path = self.broken_copy("unversioned.h5", lambda f: f.attrs.__delitem__("schema_version"))
        self.assert_bad_input(["context", path], "'schema_version'", "missing")
        bad_cost = os.path.join(self.dir, "cost_v7.json")
        with open(self.cost) as stream:
            doc = json.load(stream)
        doc["schema_version"] = 7
        with open(bad_cost, "w") as stream:
            json.dump(doc, stream)
        self.assert_bad_input(["cost-alpha", bad_cost], "schema_version 7")

    def test_missing_columns_and_files_are_named(self):
        self.assert_bad_input(["pareto", self.grid], "needs both sata and exact-kvquant", "0 exact")
        self.assert_bad_input(["hist-grid", os.path.join(self.dir, "absent.h5")], "absent.h5", "no such file")
        self.assert_bad_input(["cost-vs-context", self.grid], "not a JSON document")
        self.assert_bad_input(["hist-grid", self.cost], "not a readable HDF5 file")
        self.assert_bad_input(["cost-vs-context", self.cost, "--taylor-terms", "6"], "taylor_terms=6")

    def test_ambiguous_or_empty_selection_names_the_parameter(self):
        self.assert_bad_input(["hist-grid", self.scale], "differ in scale", "--where scale=")
        self.assert_bad_input(["hist-grid", self.grid, "--where", "colour=red"], "no column 'colour'")
        self.assert_bad_input(["hist-grid", self.grid, "--where", "d_key=5"], "no ok point", "values of d_key: 4, 8")

    # --- the cost document, against the paper and closed forms -------------------

    def test_info_json_matches_the_paper_and_closed_forms(self):
        with open(self.cost) as stream:
            doc = json.load(stream)
        model = {(m["d_key"], m["taylor_terms"]): m for m in doc["models"]}
        self.assertEqual(model[(64, 4)]["state_elements"], 3113825)    # paper §2.6
        self.assertEqual(model[(64, 4)]["flops_per_token"], 12738308)  # paper §2.7
        for (d, P), m in model.items():
            self.assertEqual(m["state_elements"], (d + 1) * math.comb(d + P - 1, P - 1))
            for term in m["terms"]:
                p = term["degree"]
                self.assertEqual(term["basis_size"], math.comb(d + p - 1, p))
                self.assertEqual(term["unpacked_size"], d ** p)
                self.assertAlmostEqual(term["alpha"], 1 / (math.factorial(p) * d ** (p / 2)), delta=1e-15)
        fp16 = next(f for f in doc["formats"] if f["name"] == "fp16")
        self.assertEqual(fp16["unit_roundoff"], 2.0 ** -11)
        self.assertEqual(fp16["decimal_resolution"], 1e-3)


if __name__ == "__main__":
    SATALAB = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
