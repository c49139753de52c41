#!/usr/bin/python3
"""Figures from satalab results.

Sweep figures read a results file of `satalab sweep` (HDF5, schema in
docs/results-schema.md); cost figures read the JSON of `satalab info --json`.
The bench figure reads a file of `satalab bench --out`; the drift figure files of `satalab drift`. Each writes one PNG (and a PDF with --pdf) whose bottom line names the input
file, its config and the satalab version that wrote it.

  scripts/plot.py hist-grid results/quick.h5 --error rel --out rel_hist.png
  scripts/plot.py scale results/scale.h5 --where method=sata --where precision=fp16-acc32

Points are chosen with --where KEY=VALUE[,VALUE...] (repeatable) on the
columns of /points. A figure needs one point per cell of its axes; when more
match, the error names the parameter that tells them apart. Errors in the
input (missing file, dataset or column, unknown schema version, no matching
point) print one line and exit with code 2.

Run under Debian's /usr/bin/python3 (h5py, numpy, pandas, matplotlib).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import importlib  # noqa: E402

EXIT_BAD_INPUT = 2

# name: (module.function in satalab_plot, input kind, default output name, help)
COMMANDS = {
    "cost-vs-context": ("cost.cost_vs_context", "cost", "fig1_cost_vs_context",
                        "paper Fig. 1: state size and FLOPs per token relative to the KV cache and conventional "
                        "attention vs context length"),
    "cost-packing": ("cost.cost_packing", "cost", "fig3_cost_packing",
                     "paper Fig. 3: reduction from tight packing per Taylor term"),
    "cost-heads": ("cost.cost_heads", "cost", "fig4_cost_heads",
                   "paper Fig. 4: multi-head state size and FLOPs over embedding size x head size"),
    "cost-alpha": ("cost.cost_alpha", "cost", "fig5_cost_alpha",
                   "paper Fig. 5: alpha_p per Taylor term vs fp8/bf16/fp16/fp32 resolution"),
    "hist-grid": ("grids.hist_grid", "results", "a3_hist",
                  "paper A3: histograms of log10 error per head size x P, median marked"),
    "position-grid": ("grids.position_grid", "results", "a4_position",
                      "paper A4: error by token position, median and 5-95%% band"),
    "scale": ("sweeps.error_vs_scale", "results", "error_vs_scale",
              "error vs input scale per P (median, p99; absolute and relative), sqrt(ln n) marked"),
    "decomposition": ("sweeps.decomposition", "results", "decomposition",
                      "truncation vs rounding (and exact baseline) per precision"),
    "normalisers": ("sweeps.normalisers", "results", "normalisers",
                    "rate of non-positive normalisers vs P and scale"),
    "context": ("sweeps.error_vs_context", "results", "error_vs_context",
                "error vs context length per precision"),
    "needle": ("sweeps.needle", "results", "needle",
               "needle retrieval: fraction of needles retrieved vs needle logit per P"),
    "pareto": ("sweeps.pareto", "results", "pareto",
               "median relative error vs bytes per sequence: SATA (per P) vs quantized KV caches (per scheme)"),
    "pareto-grid": ("sweeps.pareto_grid", "results", "pareto_grid",
                    "median relative error vs bytes per token per workload and d_key: SATA per P, exact attention "
                    "per KV-cache scheme and per kernel recipe"),
    "workloads": ("workloads.error_vs_p", "results", "workloads",
                  "median error vs P per workload (gaussian, RoPE, outliers, key bias, sinks, fitted) with "
                  "exact attention's own error"),
    "recipes": ("recipes.error_vs_context", "results", "recipes_vs_context",
                "exact attention per kernel recipe (flash2, sdpa-math, flash3 fp8, sage int8) and per precision "
                "policy: max (--stat) absolute and median relative error vs sequence length, per workload"),
    "polynomials": ("polynomials.error_vs_p", "results", "polynomials",
                    "median error vs P per read-out polynomial (taylor, taylor-shift, moment-fit, chebyshev, "
                    "positive), one panel per head size"),
    "apriori": ("apriori.predicted_vs_measured", "results", "apriori",
                "a-priori truncation estimates (predicted relative error, remainder bound) vs the measured "
                "median relative truncation error, per read-out polynomial"),
    "drift": ("drift.error_vs_position", "drift", "drift",
              "long-context drift: relative error vs position per state accumulation mode and precision, "
              "with exact attention's own error (from satalab drift; several files: one per precision)"),
    "bench": ("bench.decode_vs_context", "bench", "fig6_decode_vs_context",
              "paper Fig. 6: decode time per token and memory, SATA vs exact attention, vs context length "
              "(from satalab bench)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plot.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, kind, default_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if kind == "cost":
            p.add_argument("input", metavar="COST.json", help="output of `satalab info ... --json`")
        elif kind == "bench":
            p.add_argument("input", metavar="BENCH.h5", help="file of `satalab bench --out`")
        elif kind == "drift":
            p.add_argument("input", metavar="DRIFT.h5", nargs="+", help="files of `satalab drift`")
        else:
            p.add_argument("input", metavar="RESULTS.h5", help="results file of `satalab sweep`")
        p.add_argument("-o", "--out", help="PNG to write (default: figures/%s[_rel].png next to the input)"
                       % default_name)
        p.add_argument("--dpi", type=int, default=150, help="resolution of the PNG (default 150)")
        p.add_argument("--pdf", action="store_true", help="also write a PDF next to the PNG")
        if kind == "results":
            p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                           help="keep points whose column KEY equals VALUE (VALUE,VALUE,... for several); "
                                "repeatable")
        if name in ("hist-grid", "position-grid"):
            p.add_argument("--error", choices=["abs", "rel"], default="abs",
                           help="absolute |Y - Y_hat| or relative |Y - Y_hat| / |Y| (default abs)")
            p.add_argument("--component", choices=["total", "truncation", "rounding", "baseline"],
                           default="total", help="error component (docs/results-schema.md; default total)")
        if name == "hist-grid":
            p.add_argument("--no-paper", action="store_true",
                           help="do not mark the paper's A3 medians (absolute total error only)")
        if name in ("workloads", "polynomials"):
            p.add_argument("--error", choices=["abs", "rel"], default="rel", help="error kind (default rel)")
        if name == "recipes":
            p.add_argument("--stat", choices=["median", "p95", "p99", "max"], default="max",
                           help="statistic of the absolute error (default max, the deviation of Golden et al. "
                                "2024); the relative error is always the median")
        if name in ("pareto", "pareto-grid"):
            p.add_argument("--error", choices=["abs", "rel"], default="rel", help="error kind (default rel)")
            p.add_argument("--stat", choices=["median", "p95", "p99"], default="median",
                           help="error statistic (default median)")
        if kind == "cost":
            p.add_argument("--d-key", type=int, nargs="+", help="head sizes to draw (default: all in the file)")
            if name in ("cost-vs-context", "cost-heads"):
                p.add_argument("--taylor-terms", "-P", type=int, default=4, help="P (default 4, as the paper)")
        if kind == "bench":
            p.add_argument("--precision", help="decode precision policy to draw (default fp32 if present)")
            p.add_argument("--taylor-terms", "-P", type=int, help="SATA's P to draw (default 4 if present)")
        if name == "cost-vs-context":
            p.add_argument("--min-tokens", type=float, default=1e3, help="smallest context (default 1e3)")
            p.add_argument("--max-tokens", type=float, default=1e8, help="largest context (default 1e8)")
        if name == "cost-heads":
            p.add_argument("--embedding-step", type=int, default=1024, help="embedding sizes step (default 1024)")
            p.add_argument("--embedding-max", type=int, default=8192, help="largest embedding size (default 8192)")
        if name == "cost-alpha":
            p.add_argument("--formats", nargs="+", default=["e5m2", "e4m3", "bf16", "fp16", "fp32"],
                           help="formats in the right panel (default e5m2 e4m3 bf16 fp16 fp32)")
        p.set_defaults(default_name=default_name, kind=kind)
    return parser


def default_out(args) -> str:
    suffix = "_rel" if getattr(args, "error", "abs") == "rel" and args.command != "pareto" else ""
    component = getattr(args, "component", "total")
    if component != "total":
        suffix += f"_{component}"
    if args.kind == "drift":
        return os.path.join(os.path.dirname(args.input[0]), "figures", f"{args.default_name}.png")
    return os.path.join(os.path.dirname(args.input), "figures", f"{args.default_name}{suffix}.png")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.out is None:
        args.out = default_out(args)
    # Imported here so that --help and argument errors do not wait for matplotlib.
    module_name, function_name = COMMANDS[args.command][0].split(".")
    function = getattr(importlib.import_module(f"satalab_plot.{module_name}"), function_name)
    from satalab_plot.bench import Bench
    from satalab_plot.drift import Drift
    from satalab_plot.results import Cost, InputError, Results
    try:
        source = {"cost": Cost, "bench": Bench, "drift": Drift, "results": Results}[args.kind](args.input)
        try:
            out = function(source, args)
        finally:
            if isinstance(source, Results):
                source.close()
    except InputError as error:
        print(f"plot.py {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
