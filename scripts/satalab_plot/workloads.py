"""Error vs P per workload (realistic inputs: RoPE, outlier channels, key
bias, attention sinks, fitted from a capture), with the plain gaussian curve
for comparison and exact attention's own error at the same precision."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from .figure import error_label, finish, log10_or_nan, new_figure
from .results import Results, apply_where, describe_fixed, one_point_per_cell
from .sweeps import _mark_infinite


def workload_label(row) -> str:
    """gaussian, gaussian+rope, gaussian+rope+outliers, fitted, ..."""
    modifiers = str(row.get("modifiers", "") or "")
    return str(row["workload"]) + (f"+{modifiers}" if modifiers else "")


def error_vs_p(results: Results, args) -> str:
    needed_by = "workloads"
    kind = args.error
    column = f"{kind}_err_median"
    baseline = f"baseline_{kind}_err_median"
    results.require_columns(["workload", "modifiers", "taylor_terms", "d_key", column, baseline, "logit_std"],
                            needed_by)
    frame = apply_where(results, results.points, args.where)
    frame = frame[frame.method == "sata"].copy() if "method" in frame else frame
    frame["workload_label"] = [workload_label(r) for _, r in frame.iterrows()]
    frame = one_point_per_cell(results, frame, ["d_key", "workload_label", "taylor_terms"], needed_by)
    d_keys = sorted(frame.d_key.unique())
    labels = sorted(frame.workload_label.unique(), key=lambda s: (s != "gaussian", s.count("+"), s))
    cmap = plt.get_cmap("tab10")
    colors = {label: ("black" if label == "gaussian" else cmap(i % 10)) for i, label in enumerate(labels)}
    fig, axes = new_figure(1, len(d_keys), panel=(4.4, 3.4), sharey=True)
    for c, d_key in enumerate(d_keys):
        ax = axes[0, c]
        sub = frame[frame.d_key == d_key]
        for label in labels:
            line = sub[sub.workload_label == label].sort_values("taylor_terms")
            if line.empty:
                continue
            width = 2.2 if label == "gaussian" else 1.3
            ax.plot(line.taylor_terms, log10_or_nan(line[column]), "o-", color=colors[label], lw=width, ms=3)
            # Exact attention at the same policy (the baseline component) does not depend on P.
            exact = np.nanmedian(log10_or_nan(line[baseline]))
            if np.isfinite(exact):
                ax.axhline(exact, color=colors[label], lw=0.9, ls=":")
        for label in labels:
            line = sub[sub.workload_label == label]
            _mark_infinite(ax, line.taylor_terms, line[column], colors[label])
        ax.set_xticks(sorted(sub.taylor_terms.unique()))
        ax.grid(True, alpha=0.4)
        ax.set_xlabel("Taylor terms P", fontsize=8)
        ax.set_title(f"d_key {int(d_key)}", fontsize=9)
        if c == 0:
            ax.set_ylabel(f"median {error_label(kind)}", fontsize=8)
    spread = frame.groupby("workload_label").logit_std.median()
    handles = [Line2D([], [], color=colors[l], marker="o", ms=3, label=f"{l} (logit std {spread[l]:.2g})")
               for l in labels]
    handles.append(Line2D([], [], color="0.3", ls=":", label="exact attention at the same precision"))
    axes[0, -1].legend(handles=handles, fontsize=6, loc="best")
    title = ("SATA's median error vs P per workload (dotted: exact attention's own error; "
             "triangles on the top edge: infinite error)\n"
             f"{describe_fixed(frame, skip=('taylor_terms', 'd_key', 'workload', 'modifiers', 'workload_label'))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)
