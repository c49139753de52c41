"""Figure layout shared by every plot: a grid of panels of fixed size, a title,
and a caption line at the bottom naming the result file and config.

The pixel size of a figure is a function of its grid only:
width = (MARGIN_W + cols * panel_w) * dpi, height = (MARGIN_H + rows * panel_h) * dpi
(sizes in inches; tests check PNG sizes against this).
"""
from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MARGIN_W = 0.8   # inches: room for the outer y labels
MARGIN_H = 1.2   # inches: title (two lines) and caption
CAPTION_H = 0.3  # inches at the bottom reserved for the caption

# One color per head size, as in the paper's figures (C0..C3 for 8..64).
D_KEY_COLORS = {8: "C0", 16: "C1", 32: "C2", 64: "C3"}


def d_key_color(d_key: int, index: int) -> str:
    return D_KEY_COLORS.get(int(d_key), f"C{(index + 4) % 10}")


def figure_size(rows: int, cols: int, panel=(3.2, 2.4)) -> tuple[float, float]:
    return (MARGIN_W + cols * panel[0], MARGIN_H + rows * panel[1])


def new_figure(rows: int, cols: int, panel=(3.2, 2.4), **subplot_kw):
    width, height = figure_size(rows, cols, panel)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), layout="constrained", squeeze=False,
                             **subplot_kw)
    fig.get_layout_engine().set(rect=(0, CAPTION_H / height, 1, 1 - CAPTION_H / height))
    return fig, axes


def _wrap(text: str, chars: int, max_lines: int | None = None) -> str:
    lines = [wrapped for line in text.split("\n") for wrapped in (textwrap.wrap(line, chars) or [""])]
    if max_lines and len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    return "\n".join(lines)


def finish(fig, title: str, caption: str, out: str, dpi: int, pdf: bool) -> str:
    width, height = fig.get_figwidth(), fig.get_figheight()
    # About 12.5 characters per inch at 10 pt, 19 at 6.5 pt (DejaVu Sans).
    fig.suptitle(_wrap(title, int(12.5 * width)), fontsize=10)
    caption = _wrap(caption, int(19 * width), max_lines=2)
    fig.text(0.005, 0.45 * CAPTION_H / height, caption, fontsize=6.5 if "\n" not in caption else 5.5,
             color="0.3", ha="left", va="center", linespacing=1.1)
    directory = os.path.dirname(out)
    if directory:
        os.makedirs(directory, exist_ok=True)
    # matplotlib truncates width x dpi to whole pixels: 4.6 in at 50 dpi would
    # give 229 px. Nudge the size so the PNG has round(inches x dpi) pixels.
    fig.set_size_inches((round(width * dpi) + 1e-3) / dpi, (round(height * dpi) + 1e-3) / dpi)
    fig.savefig(out, dpi=dpi)
    if pdf:
        fig.savefig(os.path.splitext(out)[0] + ".pdf")
    plt.close(fig)
    return out


def log10_or_nan(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(values)
    out[~np.isfinite(out)] = np.nan
    return out


def error_symbol(kind: str) -> str:
    return r"$|Y-\hat{Y}|$" if kind == "abs" else r"$|Y-\hat{Y}|\,/\,|Y|$"


def error_label(kind: str) -> str:
    return r"$\log_{10}$ " + error_symbol(kind) + (" (absolute)" if kind == "abs" else " (relative)")
