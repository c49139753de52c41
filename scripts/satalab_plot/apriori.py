"""A-priori truncation estimates against the measured truncation error
(docs/results-schema.md, "A-priori truncation estimates"): per point, the
predicted relative error (the L1 distance between the read-out's attention
weights and softmax's) and the remainder bound of the read-out polynomial on
the query's logit interval, both medians over rows, against the measured
median relative truncation error (Taylor-quadratic vs exact at truth
precision), one colour per read-out family."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from .figure import finish, log10_or_nan, new_figure
from .polynomials import FAMILY_ORDER
from .results import InputError, Results, apply_where, describe_fixed


def predicted_vs_measured(results: Results, args) -> str:
    needed_by = "apriori"
    columns = ["predicted_rel_err_median", "remainder_bound_median", "trunc_rel_err_median", "polynomial"]
    results.require_columns(columns, needed_by)
    frame = apply_where(results, results.points, args.where)
    frame = frame[frame.predicted_rel_err_median.notna() & frame.trunc_rel_err_median.notna()]
    if frame.empty:
        raise InputError(f"{results.path}: no point has both an a-priori estimate and a measured truncation error "
                     f"(methods sata and taylor-quadratic, results schema version 5; needed by {needed_by})")
    families = sorted(frame.polynomial.unique(), key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 99, f))
    colors = {f: ("black" if f == "taylor" else plt.get_cmap("tab10")(i % 10)) for i, f in enumerate(families)}
    fig, axes = new_figure(1, 1, panel=(4.6, 4.0))
    ax = axes[0, 0]
    measured_all = log10_or_nan(frame.trunc_rel_err_median)
    for family in families:
        sub = frame[frame.polynomial == family]
        measured = log10_or_nan(sub.trunc_rel_err_median)
        ax.plot(measured, log10_or_nan(sub.predicted_rel_err_median), "o", color=colors[family], ms=4)
        ax.plot(measured, log10_or_nan(sub.remainder_bound_median), "^", color=colors[family], ms=4, mfc="none")
    finite = measured_all[np.isfinite(measured_all)]
    if finite.size:
        lo, hi = float(finite.min()) - 0.5, float(finite.max()) + 0.5
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ax.grid(True, alpha=0.4)
    ax.set_xlabel(r"measured: $\log_{10}$ median relative truncation error", fontsize=8)
    ax.set_ylabel(r"a priori: $\log_{10}$ median over rows", fontsize=8)
    handles = [Line2D([], [], color=colors[f], marker="o", ls="none", ms=4, label=f) for f in families]
    handles += [Line2D([], [], color="grey", marker="o", ls="none", ms=4, label="predicted rel. error"),
                Line2D([], [], color="grey", marker="^", ls="none", ms=4, mfc="none", label="remainder bound"),
                Line2D([], [], color="grey", ls="--", lw=0.8, label="equal")]
    ax.legend(handles=handles, fontsize=7, loc="best")
    title = ("A-priori truncation estimates vs measured truncation error (one marker per point)\n"
             f"{describe_fixed(frame, skip=('taylor_terms', 'd_key', 'polynomial', 'chebyshev_width', 'scale'))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)
