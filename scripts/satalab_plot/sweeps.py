"""Figures the paper left out (docs/architecture.md §1): error vs scale, truncation vs
rounding, non-positive normalisers, error vs context length, needle
retrieval, and the memory/error Pareto plot against quantized KV caches."""
from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.lines import Line2D

from .figure import d_key_color, error_label, finish, log10_or_nan, new_figure
from .results import (COMPONENT_FLAG, COMPONENT_PREFIX, InputError, Results, apply_where, describe_fixed,
                      drop_repeats_over_p, one_point_per_cell)

# Precision policies from most to least precise (unknown names go last, sorted).
PRECISION_ORDER = ["mp256", "mp128", "fp64", "fp32", "bf16-acc32", "fp16-acc32", "e5m2-acc32", "e4m3-acc32",
                   "e4m3sat-acc32", "fp16", "bf16"]


COMPONENT_LEGEND = {
    "total": "total: method vs exact (truth)",
    "truncation": "truncation: Taylor-quadratic vs exact, both at truth precision",
    "rounding": "rounding: method vs Taylor-quadratic at truth precision",
    "baseline": "baseline: exact attention at this precision vs truth",
}


def _precision_key(name: str):
    if name in PRECISION_ORDER:
        return (0, PRECISION_ORDER.index(name), name)
    return (1, 0, name)


def _select(results: Results, args, columns, cell, needed_by):
    results.require_columns(columns + cell, needed_by)
    frame = apply_where(results, results.points, args.where)
    return one_point_per_cell(results, frame, cell, needed_by)


def _p_colors(Ps):
    cmap = plt.get_cmap("viridis")
    n = max(len(Ps) - 1, 1)
    return {P: cmap(0.9 * i / n) for i, P in enumerate(Ps)}


def _mark_infinite(ax, x, values, color):
    """Errors that are +Inf (a NaN or Inf output) cannot sit on a log axis: draw
    them as triangles on the top edge."""
    values = np.asarray(values, dtype=float)
    bad = np.isinf(values)
    if bad.any():
        top = ax.get_ylim()[1]
        ax.plot(np.asarray(x, dtype=float)[bad], np.full(bad.sum(), top), "^", color=color, ms=6, clip_on=False)


def error_vs_scale(results: Results, args) -> str:
    needed_by = "scale"
    columns = [f"{k}_err_{q}" for k in ("abs", "rel") for q in ("median", "p99")] + ["n_tokens"]
    frame = _select(results, args, columns, ["d_key", "taylor_terms", "scale"], needed_by)
    d_keys = sorted(frame.d_key.unique())
    Ps = sorted(frame.taylor_terms.unique())
    colors = _p_colors(Ps)
    fig, axes = new_figure(2, len(d_keys), panel=(4.0, 3.0), sharex=True)
    for r, kind in enumerate(("abs", "rel")):
        for c, d_key in enumerate(d_keys):
            ax = axes[r, c]
            sub = frame[frame.d_key == d_key]
            for P in Ps:
                line = sub[sub.taylor_terms == P].sort_values("scale")
                if line.empty:
                    continue
                ax.plot(line.scale, log10_or_nan(line[f"{kind}_err_median"]), "o-", color=colors[P], ms=3, lw=1.5)
                ax.plot(line.scale, log10_or_nan(line[f"{kind}_err_p99"]), "--", color=colors[P], lw=1)
            for P in Ps:
                line = sub[sub.taylor_terms == P]
                _mark_infinite(ax, line.scale, line[f"{kind}_err_p99"], colors[P])
            n_tokens = int(sub.n_tokens.iloc[0])
            bound = np.sqrt(np.log(n_tokens))
            ax.axvline(bound, color="C3", lw=1, ls=":")
            ax.text(bound, 0.02, f" $\\sqrt{{\\ln n}}$ = {bound:.2f}\n (Alman & Song)", color="C3", fontsize=6,
                    transform=ax.get_xaxis_transform(), va="bottom")
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
            ax.set_xticks(sorted(sub.scale.unique()))
            ax.grid(True, alpha=0.4)
            ax.set_title(f"d_key {int(d_key)}, {'absolute' if kind == 'abs' else 'relative'} error", fontsize=9)
            if r == 1:
                ax.set_xlabel("input scale σ (q, k ~ N(0, σ²))", fontsize=8)
            if c == 0:
                ax.set_ylabel(error_label(kind), fontsize=8)
    handles = [Line2D([], [], color=colors[P], marker="o", ms=3, label=f"P = {P}") for P in Ps]
    handles += [Line2D([], [], color="0.2", ls="-", label="median"), Line2D([], [], color="0.2", ls="--", label="p99")]
    axes[0, -1].legend(handles=handles, fontsize=6, ncol=2, loc="upper left")
    title = ("Error vs input scale: the truncated series fails as logits grow\n"
             f"{describe_fixed(frame, skip=('scale', 'd_key'))}; triangles on the top edge: infinite error")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)


def decomposition(results: Results, args) -> str:
    needed_by = "decomposition"
    components = ["total", "truncation", "rounding", "baseline"]
    columns = [f"{COMPONENT_PREFIX[c]}{k}_err_{q}" for c in components for k in ("abs", "rel")
               for q in ("median", "p05", "p95")] + list(COMPONENT_FLAG.values())
    frame = _select(results, args, columns, ["taylor_terms", "precision"], needed_by)
    Ps = sorted(frame.taylor_terms.unique())
    precisions = sorted(frame.precision.unique(), key=_precision_key)
    style = {"total": ("black", "o"), "truncation": ("C0", "s"), "rounding": ("C1", "D"), "baseline": ("C2", "v")}
    fig, axes = new_figure(2, len(Ps), panel=(max(3.6, 0.8 * len(precisions) + 1.2), 3.0), sharey="row")
    x = np.arange(len(precisions))
    offsets = np.linspace(-0.24, 0.24, len(components))
    for r, kind in enumerate(("abs", "rel")):
        for c, P in enumerate(Ps):
            ax = axes[r, c]
            sub = frame[frame.taylor_terms == P].set_index("precision")
            for component, offset in zip(components, offsets):
                prefix = COMPONENT_PREFIX[component]
                rows = sub.reindex(precisions)
                if component != "total":
                    present = rows[COMPONENT_FLAG[component]].fillna(False).astype(bool).to_numpy()
                else:
                    present = np.ones(len(rows), dtype=bool)
                median = np.where(present, log10_or_nan(rows[f"{prefix}{kind}_err_median"]), np.nan)
                low = np.where(present, log10_or_nan(rows[f"{prefix}{kind}_err_p05"]), np.nan)
                high = np.where(present, log10_or_nan(rows[f"{prefix}{kind}_err_p95"]), np.nan)
                color, marker = style[component]
                ax.vlines(x + offset, low, high, color=color, lw=1, alpha=0.6)
                ax.plot(x + offset, median, marker, color=color, ms=4, ls="none", label=COMPONENT_LEGEND[component])
            ax.set_xticks(x, precisions, rotation=30, ha="right", fontsize=7)
            ax.grid(True, axis="y", alpha=0.4)
            ax.set_title(f"P = {P}, {'absolute' if kind == 'abs' else 'relative'} error", fontsize=9)
            if c == 0:
                ax.set_ylabel(error_label(kind), fontsize=8)
    axes[0, 0].legend(fontsize=5.5, loc="best")
    title = ("Truncation vs rounding per precision (marker: median, bar: 5% to 95%)\n"
             f"{describe_fixed(frame, skip=('precision',))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)


def normalisers(results: Results, args) -> str:
    needed_by = "normalisers"
    columns = ["normaliser_nonpositive_count", "normaliser_nonfinite_count", "heads", "n_tokens"]
    frame = _select(results, args, columns, ["d_key", "taylor_terms", "scale"], needed_by)
    d_keys = sorted(frame.d_key.unique())
    Ps = sorted(frame.taylor_terms.unique())
    scales = sorted(frame.scale.unique())
    frame = frame.assign(rate=frame.normaliser_nonpositive_count / (frame.heads * frame.n_tokens))
    positive = frame.rate[frame.rate > 0]
    norm = mcolors.LogNorm(vmin=max(positive.min(), 1e-7), vmax=max(positive.max(), 1e-6)) if len(positive) else None
    fig, axes = new_figure(1, len(d_keys), panel=(max(3.2, 0.55 * len(scales) + 1.6), max(2.6, 0.32 * len(Ps) + 1.2)))
    mesh = None
    for c, d_key in enumerate(d_keys):
        ax = axes[0, c]
        grid = np.full((len(Ps), len(scales)), np.nan)
        nonfinite = np.zeros_like(grid)
        for row in frame[frame.d_key == d_key].itertuples():
            i, j = Ps.index(row.taylor_terms), scales.index(row.scale)
            grid[i, j] = row.rate
            nonfinite[i, j] = row.normaliser_nonfinite_count
        shown = np.ma.masked_where(~(grid > 0), grid)
        ax.set_facecolor("0.93")
        if norm is not None:
            mesh = ax.pcolormesh(np.arange(len(scales) + 1), np.arange(len(Ps) + 1), shown, norm=norm,
                                 cmap="magma_r", edgecolors="white", linewidth=0.5)
        for i in range(len(Ps)):
            for j in range(len(scales)):
                value = grid[i, j]
                if np.isnan(value):
                    text = ""
                elif value == 0:
                    text = "0"
                else:
                    text = f"{100 * value:.2g}%"
                if nonfinite[i, j]:
                    text += f"\n{int(nonfinite[i, j])} non-finite"
                dark = norm is not None and value > 0 and norm(value) > 0.6
                ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=6,
                        color="white" if dark else "black")
        ax.set_xticks(np.arange(len(scales)) + 0.5, [f"{s:g}" for s in scales], fontsize=7)
        ax.set_yticks(np.arange(len(Ps)) + 0.5, [f"{P} ({'odd' if (P - 1) % 2 else 'even'} deg)" for P in Ps],
                      fontsize=7)
        ax.set_xlabel("input scale σ (q, k ~ N(0, σ²))", fontsize=8)
        ax.set_ylabel("P (series degree P - 1)", fontsize=8)
        ax.set_title(f"d_key {int(d_key)}", fontsize=9)
    if mesh is not None:
        fig.colorbar(mesh, ax=list(axes[0]), shrink=0.8, label="fraction of rows with z ≤ 0")
    title = ("Non-positive normalisers: fraction of query rows (all heads) whose denominator z = Σ_j T_P(s_ij) "
             "is ≤ 0; an odd degree P - 1 lets T_P go negative\n"
             f"{describe_fixed(frame, skip=('scale', 'd_key'))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)


def _tokens_text(value: float, _=None) -> str:
    for size, unit in ((2 ** 20, "M"), (2 ** 10, "K")):
        if value >= size and value % (size // 4) == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def error_vs_context(results: Results, args) -> str:
    needed_by = "context"
    columns = [f"{p}{k}_err_median" for p in ("", "round_") for k in ("abs", "rel")] + ["has_rounding"]
    frame = _select(results, args, columns, ["d_key", "precision", "n_tokens"], needed_by)
    d_keys = sorted(frame.d_key.unique())
    precisions = sorted(frame.precision.unique(), key=_precision_key)
    fig, axes = new_figure(2, len(d_keys), panel=(3.8, 2.8), sharex=True, sharey="row")
    for r, kind in enumerate(("abs", "rel")):
        for c, d_key in enumerate(d_keys):
            ax = axes[r, c]
            for i, precision in enumerate(precisions):
                line = frame[(frame.d_key == d_key) & (frame.precision == precision)].sort_values("n_tokens")
                if line.empty:
                    continue
                color = f"C{i}"
                ax.plot(line.n_tokens, log10_or_nan(line[f"{kind}_err_median"]), "o-", color=color, ms=3, lw=1.5)
                rounding = line[line.has_rounding]
                ax.plot(rounding.n_tokens, log10_or_nan(rounding[f"round_{kind}_err_median"]), "s--", color=color,
                        ms=3, lw=1)
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(frame.n_tokens.unique()))
            ax.xaxis.set_major_formatter(mticker.FuncFormatter(_tokens_text))
            ax.xaxis.set_minor_locator(mticker.NullLocator())
            ax.grid(True, alpha=0.4)
            ax.set_title(f"d_key {int(d_key)}, {'absolute' if kind == 'abs' else 'relative'} error (median)",
                         fontsize=9)
            if r == 1:
                ax.set_xlabel("context length n (tokens)", fontsize=8)
            if c == 0:
                ax.set_ylabel(error_label(kind), fontsize=8)
    handles = [Line2D([], [], color=f"C{i}", marker="o", ms=3, label=p) for i, p in enumerate(precisions)]
    handles += [Line2D([], [], color="0.2", ls="-", label="total (vs exact)"),
                Line2D([], [], color="0.2", ls="--", label="rounding (vs Taylor-quadratic)")]
    axes[0, -1].legend(handles=handles, fontsize=6, loc="best")
    title = ("Error vs context length per precision: total error (solid) and its rounding part (dashed), medians\n"
             f"{describe_fixed(frame, skip=('n_tokens', 'precision', 'd_key'))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)


def needle(results: Results, args) -> str:
    needed_by = "needle"
    results.require_columns(["needle_hit_rate", "rel_err_median", "method", "taylor_terms", "needle_logit"], needed_by)
    frame = drop_repeats_over_p(apply_where(results, results.points, args.where))
    frame = one_point_per_cell(results, frame, ["method", "taylor_terms", "needle_logit"], needed_by)
    if frame.needle_hit_rate.isna().all():
        raise InputError(f"{results.path}: needle_hit_rate is NaN for every selected point "
                         "(needs the needle workload: experiments/configs/needle.toml)")
    fig, axes = new_figure(1, 2, panel=(4.2, 3.2), sharex=True)
    hit_ax, err_ax = axes[0]
    taylor = frame[frame.method != "exact"]
    Ps = sorted(taylor.taylor_terms.unique())
    colors = _p_colors(Ps)
    for (method, P), line in taylor.groupby(["method", "taylor_terms"]):
        line = line.sort_values("needle_logit")
        label = f"P = {P}" + ("" if method == "sata" else f" ({method})")
        hit_ax.plot(line.needle_logit, line.needle_hit_rate, "o-", color=colors[P], ms=3, label=label)
        err_ax.plot(line.needle_logit, log10_or_nan(line.rel_err_median), "o-", color=colors[P], ms=3, label=label)
    exact = frame[frame.method == "exact"].sort_values("needle_logit")
    if not exact.empty:
        hit_ax.plot(exact.needle_logit, exact.needle_hit_rate, "k--", lw=1.5, label="exact")
        err_ax.plot(exact.needle_logit, log10_or_nan(exact.rel_err_median), "k--", lw=1.5, label="exact")
    hit_ax.set(xlabel="needle logit s = q·k / c", ylabel="fraction of needles retrieved",
               title="Retrieval: needle's value dominates the output", ylim=(-0.03, 1.03))
    err_ax.set(xlabel="needle logit s = q·k / c", ylabel=error_label("rel"), title="Median relative error")
    for ax in (hit_ax, err_ax):
        ax.grid(True, alpha=0.4)
    hit_ax.legend(fontsize=7)
    title = ("Needle in a haystack: does the truncated series still single out the key that matches the query?\n"
             f"{describe_fixed(frame, skip=('needle_logit', 'method'))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)


def _bytes_text(value: float, _=None) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value:g} B"


def pareto(results: Results, args) -> str:
    needed_by = "pareto"
    if "bytes_per_sequence" not in results.all_points.columns:
        raise InputError(f"{results.path}: /points has no column 'bytes_per_sequence' (schema_version "
                         f"{results.schema_version}); the Pareto plot needs a sweep with method exact-kvquant, "
                         "e.g. experiments/configs/taylor_vs_quantized.toml")
    error_column = f"{args.error}_err_{args.stat}"
    results.require_columns([error_column, "method"], needed_by)
    frame = apply_where(results, results.points, args.where)
    frame = drop_repeats_over_p(frame[frame.method.isin(["sata", "exact-kvquant", "exact"])])
    sata = frame[frame.method == "sata"]
    cache = frame[frame.method != "sata"]
    if sata.empty or cache.empty:
        raise InputError(f"{results.path}: the Pareto plot needs both sata and exact-kvquant points "
                         f"(selected: {len(sata)} sata, {len(cache)} exact/exact-kvquant)")
    scheme = "kv_quant" if "kv_quant" in frame.columns else "method"
    one_point_per_cell(results, sata, ["taylor_terms"], needed_by)
    one_point_per_cell(results, cache, ["method", scheme], needed_by)
    one_point_per_cell(results, frame, ["method", "taylor_terms", scheme], needed_by)
    fig, axes = new_figure(1, 1, panel=(6.4, 4.4))
    ax = axes[0, 0]
    sata = sata.sort_values("taylor_terms")
    ax.plot(sata.bytes_per_sequence, sata[error_column], "o-", color="C0", ms=6, label="SATA (per P)")
    for row in sata.itertuples():
        ax.annotate(f"P={int(row.taylor_terms)}", (row.bytes_per_sequence, getattr(row, error_column)),
                    textcoords="offset points", xytext=(5, 4), fontsize=7, color="C0")
    quant = cache[cache.method == "exact-kvquant"]
    ax.plot(quant.bytes_per_sequence, quant[error_column], "s", color="C3", ms=6,
            label="exact attention, quantized KV cache (per scheme)")
    for row in quant.itertuples():
        ax.annotate(str(getattr(row, scheme)), (row.bytes_per_sequence, getattr(row, error_column)),
                    textcoords="offset points", xytext=(5, -9), fontsize=7, color="C3")
    plain = cache[cache.method == "exact"]
    if not plain.empty:
        ax.plot(plain.bytes_per_sequence, plain[error_column], "D", color="0.2", ms=6,
                label="exact attention, unquantized cache")
    # The lower-left envelope: no other point has both less memory and less error.
    points = frame[np.isfinite(frame[error_column]) & (frame[error_column] > 0)].sort_values(
        ["bytes_per_sequence", error_column])
    front_x, front_y, best = [], [], np.inf
    for row in points.itertuples():
        value = getattr(row, error_column)
        if value < best:
            front_x.append(row.bytes_per_sequence)
            front_y.append(value)
            best = value
    ax.step(front_x, front_y, where="post", color="0.5", lw=1, ls=":", label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Ticks at powers of 4 bytes (1 KiB, 4 KiB, 16 KiB, ...), named in binary units.
    ax.xaxis.set_major_locator(mticker.LogLocator(base=4))
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(_bytes_text))
    ax.set(xlabel="memory per sequence (KV cache or SATA state, all heads)",
           ylabel=f"{args.stat} {'relative' if args.error == 'rel' else 'absolute'} error "
                  + (r"$|Y-\hat{Y}|/|Y|$" if args.error == "rel" else r"$|Y-\hat{Y}|$"))
    ax.grid(True, which="major", alpha=0.4)
    ax.margins(x=0.12, y=0.08)
    ax.legend(fontsize=7)
    title = (f"Error vs memory per sequence: SATA per P, exact attention over a quantized KV cache per scheme\n"
             f"{describe_fixed(frame, skip=('method',))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)


def _cache_label(row, recipe_column) -> str:
    """The name of an exact-attention point in the Pareto grid: its KV-cache
    scheme, or its kernel recipe, or (plain exact) its precision."""
    if row.method == "exact-kvquant":
        return str(row.kv_quant)
    recipe = str(getattr(row, recipe_column, "") or "") if recipe_column else ""
    if recipe and recipe != "none":
        return recipe
    return f"exact {row.precision}"


def pareto_grid(results: Results, args) -> str:
    """Error vs bytes per token, one panel per workload (rows) and d_key
    (columns): SATA per P, exact attention over each quantized KV cache, and
    exact attention per kernel recipe where the results carry a `recipe`
    column, with each panel's lower-left envelope."""
    needed_by = "pareto-grid"
    error_column = f"{args.error}_err_{args.stat}"
    results.require_columns([error_column, "method", "bytes_per_sequence", "n_tokens", "d_key", "workload"],
                            needed_by)
    frame = apply_where(results, results.points, args.where)
    frame = drop_repeats_over_p(frame[frame.method.isin(["sata", "exact-kvquant", "exact"])]).copy()
    if frame.empty:
        raise InputError(f"{results.path}: no sata, exact or exact-kvquant points to plot for {needed_by}")
    modifiers = frame["modifiers"] if "modifiers" in frame.columns else [""] * len(frame)
    frame["workload_label"] = [str(w) + (f"+{m}" if isinstance(m, str) and m else "")
                               for w, m in zip(frame.workload, modifiers)]
    frame["bytes_per_token"] = frame.bytes_per_sequence / frame.n_tokens
    recipe_column = "recipe" if "recipe" in frame.columns else None
    frame["scheme_label"] = [_cache_label(row, recipe_column) if row.method != "sata" else ""
                             for row in frame.itertuples()]
    one_point_per_cell(results, frame, ["workload_label", "d_key", "method", "taylor_terms", "scheme_label"],
                       needed_by)
    labels = sorted(frame.workload_label.unique(), key=lambda w: (w != "gaussian", w))
    d_keys = sorted(frame.d_key.unique())
    fig, axes = new_figure(len(labels), len(d_keys), panel=(5.0, 3.8))
    for r, label in enumerate(labels):
        for c, d_key in enumerate(d_keys):
            ax = axes[r, c]
            panel = frame[(frame.workload_label == label) & (frame.d_key == d_key)]
            sata = panel[panel.method == "sata"].sort_values("taylor_terms")
            if not sata.empty:
                ax.plot(sata.bytes_per_token, sata[error_column], "o-", color="C0", ms=4, label="SATA (per P)")
                for row in sata.itertuples():
                    ax.annotate(f"P={int(row.taylor_terms)}", (row.bytes_per_token, getattr(row, error_column)),
                                textcoords="offset points", xytext=(4, 3), fontsize=6, color="C0")
            for method, marker, color, legend in (("exact-kvquant", "s", "C3", "exact, quantized KV cache"),
                                                  ("exact", "D", "C2", "exact, kernel recipe / precision")):
                part = panel[panel.method == method]
                if part.empty:
                    continue
                ax.plot(part.bytes_per_token, part[error_column], marker, color=color, ms=4, label=legend)
                for row in part.itertuples():
                    ax.annotate(row.scheme_label, (row.bytes_per_token, getattr(row, error_column)),
                                textcoords="offset points", xytext=(4, -6), fontsize=5, color=color)
            points = panel[np.isfinite(panel[error_column]) & (panel[error_column] > 0)].sort_values(
                ["bytes_per_token", error_column])
            front_x, front_y, best = [], [], np.inf
            for row in points.itertuples():
                value = getattr(row, error_column)
                if value < best:
                    front_x.append(row.bytes_per_token)
                    front_y.append(value)
                    best = value
            ax.step(front_x, front_y, where="post", color="0.5", lw=1, ls=":", label="Pareto front")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _=None: f"{v:g}"))
            ax.grid(True, which="major", alpha=0.4)
            ax.margins(x=0.15, y=0.1)
            ax.set_title(f"{label}, d_key = {int(d_key)}", fontsize=9)
            if r == len(labels) - 1:
                ax.set_xlabel("bytes per token (KV cache or SATA state, all heads)")
            if c == 0:
                ax.set_ylabel(f"{args.stat} {'relative' if args.error == 'rel' else 'absolute'} error")
            if r == 0 and c == 0:
                ax.legend(fontsize=6)
    title = (f"Error vs bytes per token: SATA per P, exact attention per KV-cache scheme and kernel recipe\n"
             f"{describe_fixed(frame, skip=('method', 'workload', 'modifiers', 'd_key', 'workload_label'))}")
    return finish(fig, title, results.caption(args.where), args.out, args.dpi, args.pdf)
