"""The paper's appendix grids (Heinsen & Kozachkov 2026, A3 and A4) for the
absolute or the relative error: histograms of log10 errors per head size x P,
and errors by token position."""
from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np

from .figure import d_key_color, error_label, error_symbol, finish, log10_or_nan, new_figure
from .results import (COMPONENT_FLAG, COMPONENT_PREFIX, UNUSED_BLOCK, InputError, Results, apply_where,
                      describe_fixed, one_point_per_cell)

# Medians of log10 |Y - Y_hat| in the paper's A3 histograms (fp16 autocast vs
# float64, 100K tokens), read off the figure to about 0.05 decades; they are
# nearly the same for every head size.
PAPER_A3_LOG10_MEDIAN = {3: -2.75, 4: -3.0, 5: -3.2, 6: -3.55}

COMPONENT_TITLE = {
    "total": "method vs exact attention at truth precision",
    "truncation": "truncation: Taylor-quadratic vs exact, both at truth precision",
    "rounding": "rounding: method vs Taylor-quadratic at truth precision",
    "baseline": "baseline: exact attention at the point's precision vs truth",
}


def _component_note(args) -> str:
    return "" if args.component == "total" else f" — {COMPONENT_TITLE[args.component]}"


def _component_rows(results: Results, frame, component: str, needed_by: str):
    if component == "total":
        return frame
    flag = COMPONENT_FLAG[component]
    results.require_columns([flag], needed_by)
    kept = frame[frame[flag]]
    if kept.empty:
        raise InputError(f"{results.path}: no selected point has the {component} component ({flag} is false)")
    return kept


def _select_grid(results: Results, args, needed_by: str, cell):
    prefix = COMPONENT_PREFIX[args.component]
    median_column = f"{prefix}{args.error}_err_median"
    results.require_columns(cell + [median_column], needed_by)
    frame = apply_where(results, results.points, args.where)
    frame = _component_rows(results, frame, args.component, needed_by)
    frame = one_point_per_cell(results, frame, cell, needed_by)
    return frame, prefix, median_column


def _panel_title(row) -> str:
    return f"d_key {int(row.d_key)} ({int(row.heads)} head{'s' if row.heads != 1 else ''}), P = {int(row.taylor_terms)}"


def hist_grid(results: Results, args) -> str:
    """A3: density of log10 error per decade, one panel per (P, d_key), median marked."""
    needed_by = f"hist-grid --error {args.error}"
    frame, prefix, median_column = _select_grid(results, args, needed_by, ["taylor_terms", "d_key"])
    hist = results.array(f"{prefix}{args.error}_hist", needed_by)
    edges = results.array("hist_bin_edges", needed_by)
    if hist.ndim != 2 or hist.shape[1] != 254 or edges.shape != (251,):
        raise InputError(f"{results.path}: histogram shapes {hist.shape}, {edges.shape} are not "
                         "[rows, 254] and [251]")
    Ps = sorted(frame.taylor_terms.unique())
    d_keys = sorted(frame.d_key.unique())
    fig, axes = new_figure(len(Ps), len(d_keys), panel=(3.0, 2.2), sharex=True, sharey=True)

    width = np.diff(edges)
    densities, totals = {}, {}
    for row in frame.itertuples():
        counts = hist[row.row].astype(float)
        totals[row.row] = counts.sum()
        densities[row.row] = counts[:250] / max(counts.sum(), 1) / width
    pooled = np.sum([d * width for d in densities.values()], axis=0)
    cdf = np.cumsum(pooled) / max(pooled.sum(), 1e-300)
    lo = edges[np.searchsorted(cdf, 0.001)] if pooled.sum() else -6
    hi = edges[min(np.searchsorted(cdf, 0.999) + 1, 250)] if pooled.sum() else 0
    lo, hi = np.floor(lo - 0.25), np.ceil(hi + 0.25)

    show_paper = args.error == "abs" and args.component == "total" and not args.no_paper
    for r, P in enumerate(Ps):
        for c, d_key in enumerate(d_keys):
            ax = axes[r, c]
            match = frame[(frame.taylor_terms == P) & (frame.d_key == d_key)]
            if match.empty:
                ax.text(0.5, 0.5, "no point", transform=ax.transAxes, ha="center", color="0.5")
                ax.set_title(f"d_key {d_key}, P = {P}", fontsize=8)
                continue
            row = match.iloc[0]
            color = d_key_color(d_key, c)
            ax.stairs(densities[row.row], edges, fill=True, color=color, alpha=0.35)
            median = log10_or_nan([row[median_column]])[0]
            ax.axvline(median, color=color, lw=1.5, label=f"median {median:.2f} ({10 ** median:.2g})")
            if show_paper and int(P) in PAPER_A3_LOG10_MEDIAN:
                ax.axvline(PAPER_A3_LOG10_MEDIAN[int(P)], color="0.35", lw=1, ls="--",
                           label=f"paper ≈ {PAPER_A3_LOG10_MEDIAN[int(P)]:.2f}")
            counts = hist[row.row]
            notes = [f"{name} {int(counts[i]):,}" for name, i in
                     (("zeros", 250), ("< 1e-20", 251), (">= 1e5", 252), ("NaN/Inf", 253)) if counts[i]]
            if notes:
                ax.text(0.02, 0.97, "\n".join(notes), transform=ax.transAxes, va="top", fontsize=6,
                        color="C3" if counts[253] else "0.3")
            ax.set_title(_panel_title(row), fontsize=8)
            ax.legend(fontsize=6, loc="upper right")
            ax.grid(True, axis="y", alpha=0.4)
            if r == len(Ps) - 1:
                ax.set_xlabel(r"$\log_{10}$ " + error_symbol(args.error), fontsize=8)
            if c == 0:
                ax.set_ylabel("density per decade", fontsize=8)
    axes[0, 0].set_xlim(lo, hi)
    axes[0, 0].xaxis.set_major_locator(mticker.MultipleLocator(1 if hi - lo <= 10 else 2))
    kind = "absolute" if args.error == "abs" else "relative"
    title = (f"Histograms of elementwise {kind} error {error_symbol(args.error)}, log10{_component_note(args)}\n"
             f"{describe_fixed(frame, skip=('d_key',))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)


def position_grid(results: Results, args) -> str:
    """A4: median and 5-95% band of log10 error per block of token positions."""
    needed_by = f"position-grid --error {args.error}"
    frame, prefix, _ = _select_grid(results, args, needed_by, ["d_key", "taylor_terms"])
    first = results.array(f"position/{prefix}first_token", needed_by)
    last = results.array(f"position/{prefix}last_token", needed_by)
    quantiles = {q: results.array(f"position/{prefix}{args.error}_err_{q}", needed_by)
                 for q in ("median", "p05", "p95")}
    Ps = sorted(frame.taylor_terms.unique())
    d_keys = sorted(frame.d_key.unique())
    fig, axes = new_figure(len(d_keys), len(Ps), panel=(3.0, 2.2), sharey=True)
    lows, highs = [], []
    for r, d_key in enumerate(d_keys):
        for c, P in enumerate(Ps):
            ax = axes[r, c]
            match = frame[(frame.taylor_terms == P) & (frame.d_key == d_key)]
            if match.empty:
                ax.text(0.5, 0.5, "no point", transform=ax.transAxes, ha="center", color="0.5")
                continue
            row = match.iloc[0]
            used = first[row.row] != UNUSED_BLOCK
            if not used.any():
                raise InputError(f"{results.path}: point {int(row.point_id)} has no position blocks")
            block_edges = np.append(first[row.row][used], last[row.row][used][-1] + 1).astype(float)
            median, p05, p95 = (log10_or_nan(quantiles[q][row.row][used]) for q in ("median", "p05", "p95"))
            color = d_key_color(d_key, r)
            ax.fill_between(block_edges, np.append(p05, p05[-1]), np.append(p95, p95[-1]), step="post",
                            color=color, alpha=0.3, lw=0, label="5% to 95%")
            ax.stairs(median, block_edges, color=color, lw=1.5, baseline=None, label="median")
            lows.append(np.nanmin(p05) if np.isfinite(p05).any() else np.nan)
            highs.append(np.nanmax(p95) if np.isfinite(p95).any() else np.nan)
            ax.set_title(_panel_title(row), fontsize=8)
            ax.legend(fontsize=6, loc="upper right")
            ax.grid(True, axis="y", alpha=0.4)
            ax.xaxis.set_major_formatter(mticker.FuncFormatter(
                lambda x, _: "0" if x == 0 else (f"{x / 1000:g}K" if x >= 1000 else f"{x:g}")))
            ax.xaxis.set_major_locator(mticker.MaxNLocator(4))
            if r == len(d_keys) - 1:
                ax.set_xlabel("token position", fontsize=8)
            if c == 0:
                ax.set_ylabel(r"$\log_{10}$ " + error_symbol(args.error), fontsize=8)
    finite_lows = [v for v in lows if np.isfinite(v)]
    finite_highs = [v for v in highs if np.isfinite(v)]
    if finite_lows and finite_highs:
        axes[0, 0].set_ylim(np.floor(min(finite_lows) - 0.25), np.ceil(max(finite_highs) + 0.75))
    blocks = int((first[frame.row.iloc[0]] != UNUSED_BLOCK).sum())
    kind = "absolute" if args.error == "abs" else "relative"
    title = (f"Elementwise {kind} error {error_symbol(args.error)} by token position, log10: median and 5% to 95% "
             f"per block ({blocks} blocks){_component_note(args)}\n{describe_fixed(frame, skip=('d_key',))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)
