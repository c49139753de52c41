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
    relative error, one row of panels per precision ("-": no P in the sweep)."""
    columns = [c for c in table.columns if c.startswith("smallest_p_")]
    if not columns:
        return
    precisions = sorted({c.split("_", 3)[3] for c in columns})
    targets = [("1pct", "1%"), ("10pct", "10%")]
    layers, heads = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    fig, axes = plt.subplots(len(precisions), 2, figsize=(0.5 * heads * 2 + 2.5, (0.45 * layers + 1.2) * len(precisions)),
                             squeeze=False)
    for row, precision in enumerate(precisions):
        for col, (key, label) in enumerate(targets):
            ax = axes[row][col]
            column = f"smallest_p_{key}_{precision}"
            grid = np.full((layers, heads), np.nan)
            for _, r in table.iterrows():
                value = r.get(column)
                if value is not None and value == value:
                    grid[int(r["layer"]), int(r["head"])] = value
            ax.imshow(grid, cmap="magma_r", vmin=1, vmax=12, aspect="auto")
            for i in range(layers):
                for j in range(heads):
                    ax.text(j, i, "-" if np.isnan(grid[i, j]) else f"{int(grid[i, j])}", ha="center", va="center",
                            fontsize=8, color="black" if np.isnan(grid[i, j]) or grid[i, j] < 7 else "white")
            ax.set_xticks(range(heads))
            ax.set_yticks(range(layers))
            ax.set_xlabel("head", fontsize=8)
            ax.set_ylabel("layer", fontsize=8)
            ax.set_title(f"smallest P, median rel. error <= {label}, {precision}", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def delta_vs_memory(frame, path):
    """Delta bits per byte (method - model) vs memory per token, every layer
    replaced; one marker family per method kind (non-finite losses left out)."""
    rows = frame[(frame["layers_replaced"] == "all") & np.isfinite(frame["delta_bits_per_byte"])]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"sata": ("o", "C0"), "kv": ("s", "C1"), "exact": ("^", "C2")}
    for kind, (marker, color) in styles.items():
        for precision, g in rows[rows["kind"] == kind].groupby("precision"):
            hollow = precision not in ("fp32",)
            ax.scatter(g["bytes_per_token"], g["delta_bits_per_byte"], marker=marker,
                       facecolors="none" if hollow else color, edgecolors=color,
                       label=f"{'SATA' if kind == 'sata' else 'KV cache' if kind == 'kv' else 'exact'} @ {precision}"
                       if kind != "exact" else "exact @ low precision" if precision != "fp32" else "exact @ fp32")
            for _, r in g.iterrows():
                text = f"P{r['taylor_terms']}" if kind == "sata" else r["kv_quant"] if kind == "kv" else r["precision"]
                ax.annotate(text, (r["bytes_per_token"], r["delta_bits_per_byte"]), fontsize=6,
                            xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.axhline(0, color="grey", lw=0.7)
    ax.set_xlabel("memory per token, all layers (bytes; SATA: state / context)")
    ax.set_ylabel("Δ bits per byte vs the model (symlog, linear below 1e-3)")
    context = int(rows["context"].iloc[0]) if len(rows) else 0
    ax.set_title(f"validation loss with every layer's attention replaced (context {context})")
    ax.grid(alpha=0.3, which="both")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best")
    _save(fig, path)
