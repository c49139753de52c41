#!/usr/bin/python3
"""Markdown table of a taylor_vs_quantized sweep (README "KV-cache schemes and
kernel recipes"): one row per SATA P, KV-cache scheme and kernel recipe, the
bytes per token and the median relative error per workload and d_key.

  scripts/tvq_table.py results/tvq_schemes.h5 [more.h5 ...] [--stat median] [--error rel]

Points with the same label, workload and d_key in several files: the first
file wins. Bad input (missing file or column): one line, exit 2.
Run under Debian's /usr/bin/python3 (h5py, numpy, pandas).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from satalab_plot.results import InputError, Results, drop_repeats_over_p  # noqa: E402


def label(row, has_recipe: bool) -> str:
    if row.method == "sata":
        return f"SATA P = {int(row.taylor_terms)}"
    if row.method == "exact-kvquant":
        return f"exact-kvquant `{row.kv_quant}`"
    recipe = str(getattr(row, "recipe", "") or "") if has_recipe else ""
    return f"exact, recipe `{recipe}`" if recipe and recipe != "none" else f"exact {row.precision}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="RESULTS.h5")
    parser.add_argument("--error", choices=["abs", "rel"], default="rel")
    parser.add_argument("--stat", choices=["median", "p95", "p99"], default="median")
    args = parser.parse_args(argv)
    column = f"{args.error}_err_{args.stat}"
    rows, order, cells, bytes_per_token = {}, [], set(), {}
    try:
        for path in args.inputs:
            results = Results(path)
            results.require_columns([column, "method", "bytes_per_sequence", "n_tokens", "d_key", "workload"],
                                    "tvq_table.py")
            frame = drop_repeats_over_p(results.points)
            has_recipe = "recipe" in frame.columns
            for row in frame.itertuples():
                if row.method not in ("sata", "exact", "exact-kvquant"):
                    continue
                modifiers = str(getattr(row, "modifiers", "") or "")
                workload = modifiers or str(row.workload)
                name = label(row, has_recipe)
                if name not in rows:
                    rows[name] = {}
                    order.append(name)
                cell = (workload, int(row.d_key))
                cells.add(cell)
                rows[name].setdefault(cell, getattr(row, column))
                bytes_per_token.setdefault((name, int(row.d_key)), row.bytes_per_sequence / row.n_tokens)
    except InputError as error:
        print(f"tvq_table.py: {error}", file=sys.stderr)
        return 2
    d_keys = sorted({d for _, d in cells})
    workloads = sorted({w for w, _ in cells}, key=lambda w: (w != "gaussian", w))
    header = ["method"] + [f"bytes/token d={d}" for d in d_keys] + [f"{w} d={d}" for w in workloads for d in d_keys]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in order:
        line = [name]
        for d in d_keys:
            value = bytes_per_token.get((name, d))
            line.append("—" if value is None else f"{value:.3g}")
        for w in workloads:
            for d in d_keys:
                value = rows[name].get((w, d))
                line.append("—" if value is None else f"{value:.2g}")
        print("| " + " | ".join(line) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
