"""Long-context drift from files of `satalab drift` (docs/results-schema.md,
"Drift files"): relative error against position per state accumulation mode
and precision, with exact attention's own error at the policy."""
from __future__ import annotations

import os

import h5py
import numpy as np

from .figure import finish, new_figure
from .results import InputError, _attr_str

SUPPORTED_DRIFT_FORMAT_VERSIONS = ("1",)
NEEDED = ["positions", "sata_rel_error", "sata_rounding_rel_error", "baseline_rel_error", "truncation_rel_error",
          "sata_z_terms", "taylor_z_terms"]
MODE_COLORS = {"plain": "C3", "compensated": "C0", "blocked": "C2", "fp64": "C1"}
PRECISION_STYLES = ["-", "--", ":", "-."]


class Drift:
    """One or more `satalab drift` files (one per precision, typically)."""

    def __init__(self, paths):
        if isinstance(paths, str):
            paths = [paths]
        self.path = paths[0]
        self.files = []
        for path in paths:
            if not os.path.exists(path):
                raise InputError(f"{path}: no such file")
            try:
                with h5py.File(path, "r") as f:
                    attrs = {k: _attr_str(v) if isinstance(v, (str, bytes)) else v for k, v in f.attrs.items()}
                    if attrs.get("format") != "satalab drift":
                        raise InputError(f"{path}: not a file of `satalab drift` (format attribute "
                                         f"{attrs.get('format')!r})")
                    if str(attrs.get("format_version")) not in SUPPORTED_DRIFT_FORMAT_VERSIONS:
                        raise InputError(f"{path}: drift format_version {attrs.get('format_version')} is not "
                                         "supported (this plot.py reads 1)")
                    missing = [n for n in NEEDED if n not in f]
                    if missing:
                        raise InputError(f"{path}: dataset '/{missing[0]}' is missing")
                    data = {n: f[n][()] for n in NEEDED}
            except OSError as error:
                raise InputError(f"{path}: not a readable HDF5 file ({error})") from None
            data["modes"] = str(attrs["modes"]).split(",")
            data["precision"] = str(attrs["precision"])
            data["attrs"] = attrs
            data["name"] = os.path.basename(path)
            self.files.append(data)

    def caption(self) -> str:
        first = self.files[0]["attrs"]
        commit = str(first.get("git_commit", "unknown"))[:12]
        names = ", ".join(f["name"] for f in self.files)
        config = str(first.get("config", "")).replace("\n", " ")
        return f"drift: {names} | {config} | satalab {first.get('satalab_version', '?')} ({commit})"

    def close(self):
        pass


def _median_over_heads(values: np.ndarray) -> np.ndarray:
    # [..., heads, positions] -> [..., positions]; positions not reached are NaN.
    with np.errstate(all="ignore"):
        return np.nanmedian(values, axis=-2) if np.isfinite(values).any() else values[..., 0, :]


def error_vs_position(drift: Drift, args) -> str:
    fig, axes = new_figure(1, 3, panel=(3.6, 2.8))
    rounding_ax, total_ax, z0_ax = axes[0]
    for index, f in enumerate(drift.files):
        style = PRECISION_STYLES[index % len(PRECISION_STYLES)]
        positions = f["positions"]
        rounding = _median_over_heads(f["sata_rounding_rel_error"])
        total = _median_over_heads(f["sata_rel_error"])
        z_ratio = f["sata_z_terms"][..., 0] / f["taylor_z_terms"][None, ..., 0]  # [modes, heads, positions]
        for m, mode in enumerate(f["modes"]):
            label = f"{mode} ({f['precision']})"
            color = MODE_COLORS.get(mode, f"C{m + 4}")
            rounding_ax.plot(positions, rounding[m], style, marker="o", ms=3, color=color, label=label)
            total_ax.plot(positions, total[m], style, marker="o", ms=3, color=color, label=label)
            z0_ax.plot(positions, _median_over_heads(z_ratio)[m], style, marker="o", ms=3, color=color, label=label)
        baseline = _median_over_heads(f["baseline_rel_error"])
        rounding_ax.plot(positions, baseline, style, color="black", lw=1.2, label=f"exact attention ({f['precision']})")
        total_ax.plot(positions, baseline, style, color="black", lw=1.2, label=f"exact attention ({f['precision']})")
        if index == 0:
            total_ax.plot(positions, _median_over_heads(f["truncation_rel_error"]), color="0.6", lw=3, alpha=0.6,
                          label="truncation (Taylor fp64 vs exact)")
    for ax in (rounding_ax, total_ax, z0_ax):
        ax.set_xscale("log")
        if ax is not z0_ax:
            ax.set_yscale("log")
        ax.axvline(2.0 ** 24, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("position (tokens before the query)")
        ax.grid(True, which="major", alpha=0.3)
    rounding_ax.set_ylabel("relative error")
    rounding_ax.set_title("SATA vs its Taylor oracle (rounding);\nexact attention at the policy vs fp64", fontsize=8)
    total_ax.set_title("SATA vs exact attention (total)", fontsize=8)
    z0_ax.set_title("z_0 in the state / exact (n+1): degree-0 normaliser", fontsize=8)
    z0_ax.set_ylabel("ratio")
    z0_ax.text(2.0 ** 24, z0_ax.get_ylim()[0], " 2^24", fontsize=6, color="0.4", va="bottom")
    rounding_ax.legend(fontsize=5.5, loc="upper left")
    total_ax.legend(fontsize=5.5, loc="lower left")
    title = "Long-context drift: SATA's state summed over the context, per state accumulation mode"
    return finish(fig, title, drift.caption(), args.out, args.dpi, args.pdf)
