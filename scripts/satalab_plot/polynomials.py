"""Error vs P per read-out polynomial (docs/architecture.md, "Read-out
polynomials"): SATA's median error for each family at equal state size (the
state depends on P only), one panel per head size."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from .figure import error_label, finish, log10_or_nan, new_figure
from .results import Results, apply_where, describe_fixed, one_point_per_cell
from .sweeps import _mark_infinite

FAMILY_ORDER = ["taylor", "taylor-shift", "moment-fit", "chebyshev", "positive"]


def error_vs_p(results: Results, args) -> str:
    needed_by = "polynomials"
    kind = args.error
    column = f"{kind}_err_median"
    results.require_columns(["polynomial", "taylor_terms", "d_key", column], needed_by)
    frame = apply_where(results, results.points, args.where)
    frame = frame[frame.method == "sata"] if "method" in frame else frame
    frame = one_point_per_cell(results, frame, ["d_key", "polynomial", "taylor_terms"], needed_by)
    d_keys = sorted(frame.d_key.unique())
    families = sorted(frame.polynomial.unique(), key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 99, f))
    colors = {f: ("black" if f == "taylor" else plt.get_cmap("tab10")(i % 10)) for i, f in enumerate(families)}
    fig, axes = new_figure(1, len(d_keys), panel=(4.2, 3.4), sharey=True)
    for c, d_key in enumerate(d_keys):
        ax = axes[0, c]
        sub = frame[frame.d_key == d_key]
        for family in families:
            line = sub[sub.polynomial == family].sort_values("taylor_terms")
            if line.empty:
                continue
            ax.plot(line.taylor_terms, log10_or_nan(line[column]), "o-", color=colors[family],
                    lw=2.2 if family == "taylor" else 1.3, ms=3)
            _mark_infinite(ax, line.taylor_terms, line[column], colors[family])
        ax.set_xticks(sorted(sub.taylor_terms.unique()))
        ax.grid(True, alpha=0.4)
        ax.set_xlabel("Taylor terms P (the state's size)", fontsize=8)
        ax.set_title(f"d_key {int(d_key)}", fontsize=9)
        if c == 0:
            ax.set_ylabel(f"median {error_label(kind)}", fontsize=8)
    handles = [Line2D([], [], color=colors[f], marker="o", ms=3, label=f) for f in families]
    axes[0, -1].legend(handles=handles, fontsize=7, loc="best")
    title = ("SATA's median error vs P per read-out polynomial (same state, coefficients chosen per query)\n"
             f"{describe_fixed(frame, skip=('taylor_terms', 'd_key', 'polynomial', 'chebyshev_width'))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)
