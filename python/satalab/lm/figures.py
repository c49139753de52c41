"""Figures of satalab-lm (matplotlib, Agg backend): per-head error vs P,
smallest P per head, and delta bits per byte vs memory per token."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def error_vs_p(stats, errors, path):
    """Median relative error vs P, one line per head, coloured by the head's
    logit spread (std of s); one panel per precision policy."""
    sata = errors[errors["method"] == "sata"]
    precisions = sorted(sata["precision"].unique())
    fig, axes = plt.subplots(1, len(precisions), figsize=(5.2 * len(precisions), 4.2), sharey=True, squeeze=False)
    spread = stats.set_index(["layer", "head"])["logit_std"]
    norm = matplotlib.colors.Normalize(vmin=spread.min(), vmax=spread.max())
    cmap = plt.get_cmap("viridis")
    for ax, precision in zip(axes[0], precisions):
        g = sata[sata["precision"] == precision]
        for (layer, head), h in g.groupby(["layer", "head"]):
            h = h.sort_values("taylor_terms")
            ax.plot(h["taylor_terms"], h["rel_err_median"], "-o", ms=2.5, lw=1,
                    color=cmap(norm(spread[(layer, head)])), alpha=0.85)
        for y in (0.01, 0.1):
            ax.axhline(y, color="grey", lw=0.7, ls="--")
        ax.set_yscale("log")
        ax.set_xlabel("Taylor terms P")
        ax.set_title(f"SATA at {precision}")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("median relative error of the head's output")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[0].tolist(),
                 label="logit spread (std of s)")
    _save(fig, path)


def smallest_p_figure(table, path):
    """Heat maps layer x head of the smallest P reaching 1% and 10% median
    relative error ("-" when no P in the sweep does)."""
    columns = [c for c in table.columns if c.startswith("smallest_p_")]
    if not columns:
        return
    layers, heads = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    fig, axes = plt.subplots(1, len(columns), figsize=(0.55 * heads * len(columns) + 2, 0.5 * layers + 1.6),
                             squeeze=False)
    for ax, column in zip(axes[0], columns):
        grid = np.full((layers, heads), np.nan)
        for _, r in table.iterrows():
            if r[column] == r[column] and r[column] is not None:
                grid[int(r["layer"]), int(r["head"])] = r[column]
        ax.imshow(grid, cmap="magma_r", vmin=2, vmax=11, aspect="auto")
        for i in range(layers):
            for j in range(heads):
                ax.text(j, i, "-" if np.isnan(grid[i, j]) else f"{int(grid[i, j])}", ha="center", va="center",
                        fontsize=8, color="black" if np.isnan(grid[i, j]) or grid[i, j] < 7 else "white")
        ax.set_xticks(range(heads))
        ax.set_yticks(range(layers))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        label = column.replace("smallest_p_", "").replace("1pct", "1%").replace("10pct", "10%").replace("_", " @ ")
        ax.set_title(f"smallest P: median rel. error <= {label}", fontsize=9)
    _save(fig, path)


def delta_vs_memory(frame, path):
    """Delta bits per byte (method - model) vs memory per token, every layer
    replaced; one marker family per method kind."""
    rows = frame[frame["layers_replaced"] == "all"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"sata": ("o", "C0"), "kv": ("s", "C1"), "exact": ("^", "C2")}
    for kind, (marker, color) in styles.items():
        for precision, g in rows[rows["kind"] == kind].groupby("precision"):
            hollow = precision not in ("fp32",)
            ax.scatter(g["bytes_per_token"], g["delta_bits_per_byte"].clip(lower=1e-6), marker=marker,
                       facecolors="none" if hollow else color, edgecolors=color,
                       label=f"{'SATA' if kind == 'sata' else 'KV cache' if kind == 'kv' else 'exact'} @ {precision}"
                       if kind != "exact" else "exact @ low precision" if precision != "fp32" else "exact @ fp32")
            for _, r in g.iterrows():
                text = f"P{r['taylor_terms']}" if kind == "sata" else r["kv_quant"] if kind == "kv" else r["precision"]
                ax.annotate(text, (r["bytes_per_token"], max(r["delta_bits_per_byte"], 1e-6)), fontsize=6,
                            xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("memory per token, all layers (bytes; SATA: state / context)")
    ax.set_ylabel("Δ bits per byte vs the model (clipped at 1e-6)")
    context = int(rows["context"].iloc[0]) if len(rows) else 0
    ax.set_title(f"validation loss with every layer's attention replaced (context {context})")
    ax.grid(alpha=0.3, which="both")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best")
    _save(fig, path)
