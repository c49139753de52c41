"""Deviation from the fp64 truth vs sequence length per kernel recipe
(exact attention as FlashAttention-2/3, PyTorch's math path and
SageAttention round it; attention/recipe.hpp), with exact attention under
the plain precision policies for comparison."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from .figure import error_label, finish, log10_or_nan, new_figure
from .results import Results, apply_where, describe_fixed, one_point_per_cell
from .workloads import workload_label

# Colour families: bf16 blue, fp16 green, fp8 red/orange, int8 purple, policies grey.
COLORS = {
    "flash2-bf16": "tab:blue", "sdpa-math-bf16": "lightsteelblue",
    "flash2-fp16": "tab:green", "sdpa-math-fp16": "yellowgreen",
    "flash3-fp8": "tab:red", "flash3-fp8-hadamard": "tab:orange", "sdpa-math-fp8": "salmon",
    "sage-int8": "tab:purple",
}


def recipe_label(row) -> str:
    """The recipe, or exact@<precision> for points without one."""
    recipe = str(row.get("recipe", "none") or "none")
    return recipe if recipe != "none" else f"exact@{row['precision']}"


def error_vs_context(results: Results, args) -> str:
    needed_by = "recipes"
    stat = args.stat
    # The deviation (absolute, the chosen statistic) and the median relative error
    # (a max relative error is that of the output nearest zero).
    panels = [("abs", f"abs_err_{stat}", stat), ("rel", "rel_err_median", "median")]
    results.require_columns(["recipe", "n_tokens", "method", "precision", "workload", "modifiers"] +
                            [c for _, c, _ in panels], needed_by)
    frame = apply_where(results, results.points, args.where)
    frame = frame[frame.method == "exact"].copy()
    frame["recipe_label"] = [recipe_label(r) for _, r in frame.iterrows()]
    frame["workload_label"] = [workload_label(r) for _, r in frame.iterrows()]
    frame = one_point_per_cell(results, frame, ["workload_label", "recipe_label", "n_tokens"], needed_by)
    labels = sorted(frame.recipe_label.unique(), key=lambda s: (s.startswith("exact@"), s.split("-")[-1], s))
    workloads = sorted(frame.workload_label.unique(), key=lambda s: (s != "gaussian", s))
    greys = iter(["0.15", "0.45", "0.65", "0.8"])
    colors = {label: COLORS.get(label) or next(greys, "0.5") for label in labels}

    def style(label):
        return "--" if label.startswith("sdpa-math") else (":" if label.startswith("exact@") else "-")

    fig, axes = new_figure(len(workloads), len(panels), panel=(4.6, 3.4))
    for r, workload in enumerate(workloads):
        sub = frame[frame.workload_label == workload]
        for c, (kind, column, statistic) in enumerate(panels):
            ax = axes[r, c]
            for label in labels:
                line = sub[sub.recipe_label == label].sort_values("n_tokens")
                if line.empty:
                    continue
                ax.plot(line.n_tokens, log10_or_nan(line[column]), marker="o", ls=style(label), color=colors[label],
                        ms=3, lw=1.4)
            ax.set_xscale("log", base=2)
            ax.grid(True, alpha=0.4)
            ax.set_title(workload, fontsize=9)
            ax.set_xlabel("sequence length (tokens)", fontsize=8)
            ax.set_ylabel(f"{statistic} {error_label(kind)}", fontsize=8)
    handles = [Line2D([], [], color=colors[l], marker="o", ms=3, ls=style(l), label=l) for l in labels]
    axes[0, -1].legend(handles=handles, fontsize=6, loc="best")
    skip = ("n_tokens", "recipe", "recipe_label", "precision", "tile_rows", "tile_cols", "modifiers",
            "workload_label")
    title = (f"Exact attention per kernel recipe: {stat} absolute and median relative error vs the fp64 truth "
             "by sequence length "
             "(dashed: materialised math path; dotted: precision policies)\n"
             f"{describe_fixed(frame, skip=skip)}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)
