"""The paper's cost figures (Heinsen & Kozachkov 2026, Figures 1, 3, 4, 5)
from the output of `satalab info --json`: every count comes from satalab's
cost formulas (lib/src/cost/cost.cpp); this module only takes ratios and
products of them."""
from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np

from .figure import d_key_color, finish, new_figure
from .results import Cost, InputError


def _d_keys(cost: Cost, requested, taylor_terms: int, needed_by: str, default=(8, 16, 32, 64)) -> list[int]:
    """Head sizes to draw: those asked for, else the paper's 8, 16, 32, 64 when the file has them, else all."""
    if requested:
        d_keys = sorted(set(requested))
    else:
        d_keys = sorted(int(d) for d in cost.models[cost.models.taylor_terms == taylor_terms].d_key.unique())
        if default and set(default) <= set(d_keys):
            d_keys = list(default)
        if not d_keys:
            raise InputError(f"{cost.path}: no model with taylor_terms={taylor_terms} (needed by {needed_by})")
    cost.require(d_keys, [taylor_terms], needed_by)
    return d_keys


def _compact(value: float) -> str:
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def cost_vs_context(cost: Cost, args) -> str:
    """Figure 1: SATA's state and FLOPs per token relative to a KV cache and to
    conventional attention, vs context length."""
    P = args.taylor_terms
    d_keys = _d_keys(cost, args.d_key, P, "cost-vs-context")
    n = np.logspace(np.log10(args.min_tokens), np.log10(args.max_tokens), 200)
    fig, axes = new_figure(1, 2, panel=(4.2, 3.4))
    panels = [
        ("state_elements", "kv_cache_elements_per_context_token",
         f"State size ({P} Taylor terms)\nrelative to the KV cache", "state elements / KV-cache elements"),
        ("flops_per_token", "conventional_flops_per_context_token",
         f"FLOPs per token ({P} Taylor terms)\nrelative to conventional attention", "SATA FLOPs / conventional FLOPs"),
    ]
    for ax, (sata_key, per_token_key, title, ylabel) in zip(axes[0], panels):
        for i, d_key in enumerate(d_keys):
            model = cost.model(d_key, P, "cost-vs-context")
            ratio = float(model[sata_key]) / (n * float(model[per_token_key]))
            even = float(model[sata_key]) / float(model[per_token_key])
            ax.loglog(n, ratio, color=d_key_color(d_key, i), lw=2, alpha=0.8,
                      label=f"{d_key} (break-even {_compact(even)} tokens)")
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set(title=title, xlabel="tokens in context n", ylabel=ylabel)
        ax.grid(True, which="major", alpha=0.4)
        ax.legend(title="head size d_key = d_value", fontsize=7, title_fontsize=7)
    return finish(fig, "SATA's fixed cost per token vs conventional attention, whose cost grows with n\n"
                  "(paper Figure 1; below the dashed line SATA is cheaper)",
                  cost.caption(), args.out, args.dpi, args.pdf)


def cost_packing(cost: Cost, args) -> str:
    """Figure 3: reduction from tight packing (C(d+p-1, p) features instead of
    d^p) per Taylor term, and for a whole model with P terms."""
    P_max = int(cost.models.taylor_terms.max())
    d_keys = _d_keys(cost, args.d_key, P_max, "cost-packing")
    fig, axes = new_figure(1, 2, panel=(4.2, 3.4))
    left, right = axes[0]
    for i, d_key in enumerate(d_keys):
        color = d_key_color(d_key, i)
        terms = cost.terms[(cost.terms.d_key == d_key) & (cost.terms.taylor_terms == P_max)].sort_values("degree")
        term_index = terms.degree.to_numpy() + 1
        left.semilogy(term_index, terms.basis_size / terms.unpacked_size, "o-", color=color, lw=2, alpha=0.8,
                      label=str(d_key))
        # A model with P terms keeps degrees 0..P-1: cumulative sums of the same per-term counts.
        unpacked_flops = terms.flops_per_token / terms.basis_size * terms.unpacked_size
        unpacked_state = terms.state_elements / terms.basis_size * terms.unpacked_size
        right.semilogy(term_index, np.cumsum(terms.state_elements) / np.cumsum(unpacked_state), "o-", color=color,
                       lw=2, alpha=0.8, label=f"{d_key} state")
        right.semilogy(term_index, np.cumsum(terms.flops_per_token) / np.cumsum(unpacked_flops), "s--",
                       color=color, lw=1, alpha=0.8, ms=4, label=f"{d_key} FLOPs")
    left.set(title="Per Taylor term (degree p = term - 1)\nstate and FLOPs ratios are equal: C(d+p-1, p) / d^p",
             xlabel="Taylor term", ylabel="ratio, tightly packed / unpacked", xticks=range(1, P_max + 1))
    right.set(title="Whole model with P Taylor terms\n(degrees 0..P-1)", xlabel="P (number of Taylor terms)",
              ylabel="ratio, tightly packed / unpacked", xticks=range(1, P_max + 1))
    for ax in (left, right):
        ax.grid(True, axis="y", alpha=0.4)
    left.legend(title="head size", fontsize=7, title_fontsize=7)
    right.legend(title="head size", fontsize=6, title_fontsize=7, ncol=2)
    return finish(fig, "Reduction in state size and FLOPs per token from tight packing of symmetric monomials "
                  "(paper Figure 3)", cost.caption(), args.out, args.dpi, args.pdf)


def cost_heads(cost: Cost, args) -> str:
    """Figure 4: combined state size and FLOPs per token over all heads, for
    embedding size x head size (heads = embedding / head size)."""
    P = args.taylor_terms
    d_keys = _d_keys(cost, args.d_key, P, "cost-heads", default=None)
    embeddings = list(range(args.embedding_step, args.embedding_max + 1, args.embedding_step))
    # heads = floor(embedding / head size), as the paper's Figure 4.
    fig, axes = new_figure(1, 2, panel=(4.4, 4.0))
    for ax, key, title, label in zip(axes[0], ("state_elements", "flops_per_token"),
                                     ("Combined state size", "Combined FLOPs per token"),
                                     ("state elements, all heads", "FLOPs per token, all heads")):
        grid = np.array([[float(cost.model(d, P, "cost-heads")[key]) * (e // d) for d in d_keys]
                         for e in embeddings])
        mesh = ax.pcolormesh(np.arange(len(d_keys) + 1), np.arange(len(embeddings) + 1), grid,
                             norm=mcolors.LogNorm(), edgecolors="white", linewidth=0.5)
        fig.colorbar(mesh, ax=ax, shrink=0.8, label=label)
        for r, e in enumerate(embeddings):
            for c, d in enumerate(d_keys):
                ax.text(c + 0.5, r + 0.5, _compact(grid[r, c]), ha="center", va="center", fontsize=5.5,
                        color="white" if grid[r, c] < np.sqrt(grid.min() * grid.max()) else "black")
        ax.set(xticks=np.arange(len(d_keys)) + 0.5, xticklabels=d_keys, yticks=np.arange(len(embeddings)) + 0.5,
               yticklabels=embeddings, xlabel="head size d_key = d_value", ylabel="embedding size (heads = ⌊embedding / head size⌋)",
               title=title)
    return finish(fig, f"State size and FLOPs per token of multi-head SATA ({P} Taylor terms): smaller heads are "
                  "cheaper at equal embedding size\n(paper Figure 4; a conventional KV cache is n x embedding x 2 "
                  "elements per layer at any head size)", cost.caption(), args.out, args.dpi, args.pdf)


def cost_alpha(cost: Cost, args) -> str:
    """Figure 5: alpha_p = 1/(p! c^p) per Taylor term vs the resolution of
    floating-point formats."""
    P_max = int(cost.models.taylor_terms.max())
    d_keys = _d_keys(cost, args.d_key, P_max, "cost-alpha")
    fig, axes = new_figure(1, 2, panel=(4.2, 3.4))
    left, right = axes[0]
    formats = cost.formats[cost.formats.name.isin(args.formats)]
    formats = formats.set_index("name").loc[[f for f in args.formats if f in set(formats.name)]].reset_index()
    if formats.empty:
        raise InputError(f"{cost.path}: none of the formats {', '.join(args.formats)} is listed")
    for i, d_key in enumerate(d_keys):
        terms = cost.terms[(cost.terms.d_key == d_key) & (cost.terms.taylor_terms == P_max)].sort_values("degree")
        left.semilogy(terms.degree + 1, terms.alpha, "o-", color=d_key_color(d_key, i), lw=2, alpha=0.8,
                      label=str(d_key))
    for _, fmt in formats.iterrows():
        if fmt["name"] in ("fp16", "bf16"):
            left.axhline(fmt.unit_roundoff, color="0.4", lw=0.8, ls=":")
            left.text(P_max, fmt.unit_roundoff, f" {fmt['name']} u", va="bottom", ha="right", fontsize=7, color="0.3")
    left.set(title=r"Scaling constant $\alpha_p = 1/(p!\,c^p)$, $c=\sqrt{d_k}$, by Taylor term",
             xlabel="Taylor term (degree p = term - 1)", ylabel="scalar value", xticks=range(1, P_max + 1))
    left.legend(title="head size", fontsize=7, title_fontsize=7, loc="lower left")
    x = np.arange(len(formats))
    right.semilogy(x, formats.decimal_resolution, "o-", color="black", lw=2, alpha=0.8,
                   label="decimal resolution $10^{-\\lfloor (p-1)\\log_{10}2 \\rfloor}$ (paper)")
    right.semilogy(x, formats.unit_roundoff, "s--", color="C4", lw=1.5, alpha=0.8,
                   label="unit roundoff $u = 2^{-p}$")
    right.set(title="Resolution of floating-point formats", xticks=x,
              xticklabels=[f"{n}\n(p={b})" for n, b in zip(formats.name, formats.precision_bits)],
              xlabel="format (p = significand bits)", ylabel="resolution", xlim=(-0.5, len(formats) - 0.5))
    right.legend(fontsize=7)
    low = min(left.get_ylim()[0], right.get_ylim()[0])
    high = max(left.get_ylim()[1], right.get_ylim()[1])
    for ax in (left, right):
        ax.set_ylim(low, high)
        ax.grid(True, axis="y", alpha=0.4)
    return finish(fig, "Size of each Taylor term's scaling constant vs the resolution of floating-point formats "
                  "(paper Figure 5)", cost.caption(), args.out, args.dpi, args.pdf)
