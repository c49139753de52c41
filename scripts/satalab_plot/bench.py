"""The paper's Figure 6 from a `satalab bench` file (docs/bench-schema.md):
decode time per token and memory of SATA vs exact attention over a KV cache,
against context length."""
from __future__ import annotations

import os

import h5py
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .figure import d_key_color, finish, new_figure
from .results import InputError, _attr_str

SUPPORTED_BENCH_SCHEMA_VERSIONS = (1,)
NEEDED_COLUMNS = ["kind", "method", "precision", "d_key", "taylor_terms", "heads", "context_tokens",
                  "tokens_processed", "status", "seconds_per_token_head", "memory_bytes", "memory_bytes_format"]


class Bench:
    """One `satalab bench` file: the /bench table as a DataFrame."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path)
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        try:
            with h5py.File(path, "r") as f:
                attrs = {k: _attr_str(v) if isinstance(v, (str, bytes)) else v for k, v in f.attrs.items()}
                if "bench_schema_version" not in attrs:
                    raise InputError(f"{path}: root attribute 'bench_schema_version' is missing "
                                     "(not a file of `satalab bench --out`)")
                version = int(attrs["bench_schema_version"])
                if version not in SUPPORTED_BENCH_SCHEMA_VERSIONS:
                    raise InputError(f"{path}: bench_schema_version {version} is not supported (this plot.py "
                                     f"reads {', '.join(map(str, SUPPORTED_BENCH_SCHEMA_VERSIONS))})")
                if "bench" not in f:
                    raise InputError(f"{path}: dataset '/bench' is missing")
                table = f["bench"][()]
        except OSError as error:
            raise InputError(f"{path}: not a readable HDF5 file ({error})") from None
        frame = pd.DataFrame(table)
        for column in frame.select_dtypes(object):
            frame[column] = frame[column].str.decode("utf-8")
        missing = [c for c in NEEDED_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(f"{path}: /bench has no column '{missing[0]}'")
        self.attrs = attrs
        self.rows = frame

    def caption(self) -> str:
        commit = str(self.attrs.get("git_commit", "unknown"))[:12]
        return (f"bench: {self.name} | {self.attrs.get('command_line', 'satalab bench')} | "
                f"{self.attrs.get('cpu_model', '?')} | satalab {self.attrs.get('satalab_version', '?')} ({commit})")

    def close(self):
        pass


def _tokens_text(value: float, _=None) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def decode_vs_context(bench: Bench, args) -> str:
    rows = bench.rows[bench.rows.kind == "decode"]
    precisions = sorted(rows.precision.unique())
    if rows.empty:
        raise InputError(f"{bench.path}: no decode rows (run satalab bench with --sections decode)")
    precision = args.precision or ("fp32" if "fp32" in precisions else precisions[0])
    if precision not in precisions:
        raise InputError(f"{bench.path}: no decode rows at precision {precision} (present: {', '.join(precisions)})")
    rows = rows[rows.precision == precision]
    sata_Ps = sorted(rows[rows.method == "sata"].taylor_terms.unique())
    if not sata_Ps:
        raise InputError(f"{bench.path}: no SATA decode rows at precision {precision}")
    P = args.taylor_terms if args.taylor_terms is not None else (4 if 4 in sata_Ps else sata_Ps[0])
    if P not in sata_Ps:
        raise InputError(f"{bench.path}: no SATA decode rows with taylor_terms={P} "
                         f"(present: {', '.join(map(str, sata_Ps))})")
    rows = rows[(rows.method == "exact") | (rows.taylor_terms == P)]
    d_keys = sorted(rows.d_key.unique())
    fig, axes = new_figure(1, 2, panel=(4.4, 3.4))
    time_ax, ratio_ax = axes[0]
    stopped = []
    for i, d_key in enumerate(d_keys):
        color = d_key_color(d_key, i)
        sub = rows[rows.d_key == d_key]
        ok = sub[sub.status == "ok"]
        sata = ok[ok.method == "sata"].groupby("context_tokens").seconds_per_token_head.median()
        exact = ok[ok.method == "exact"].groupby("context_tokens").seconds_per_token_head.median()
        time_ax.plot(sata.index, sata.values, "o-", color=color, ms=3, lw=1.5)
        time_ax.plot(exact.index, exact.values, "s--", color=color, ms=3, lw=1.2)
        sata_memory = ok[ok.method == "sata"].groupby("context_tokens").memory_bytes_format.max()
        exact_memory = ok[ok.method == "exact"].groupby("context_tokens").memory_bytes_format.max()
        both = sata.index.intersection(exact.index)
        ratio_ax.plot(both, (sata[both] / exact[both]).values, "o-", color=color, ms=3, lw=1.5)
        ratio_ax.plot(both, (sata_memory[both] / exact_memory[both]).values, "^:", color=color, ms=3, lw=1.2)
        skipped = sub[(sub.method == "exact") & (sub.status != "ok")]
        if not skipped.empty:
            stopped.append(f"d={int(d_key)} from {_tokens_text(skipped.context_tokens.min())}")
    for ax in (time_ax, ratio_ax):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(_tokens_text))
        ax.grid(True, which="major", alpha=0.4)
        ax.set_xlabel("tokens in context n", fontsize=8)
    ratio_ax.axhline(1.0, color="0.4", lw=1, ls="--")
    time_ax.set_ylabel("seconds per token per head (decode step)", fontsize=8)
    time_ax.set_title("Time per token: SATA (solid) is flat,\nexact attention (dashed) grows with n", fontsize=9)
    ratio_ax.set_ylabel("SATA / exact attention", fontsize=8)
    ratio_ax.set_title("Relative time per token (solid)\nand memory (dotted)", fontsize=9)
    handles = [Line2D([], [], color=d_key_color(d, i), lw=2, label=f"d_key = d_value = {int(d)}")
               for i, d in enumerate(d_keys)]
    handles += [Line2D([], [], color="0.2", ls="-", marker="o", ms=3, label=f"SATA, P = {P}"),
                Line2D([], [], color="0.2", ls="--", marker="s", ms=3, label="exact attention, KV cache")]
    time_ax.legend(handles=handles, fontsize=6, loc="upper left")
    ratio_handles = [Line2D([], [], color="0.2", ls="-", marker="o", ms=3, label="time per token"),
                     Line2D([], [], color="0.2", ls=":", marker="^", ms=3, label="memory (state vs cache)")]
    ratio_ax.legend(handles=ratio_handles, fontsize=6, loc="upper right")
    heads = sorted(rows.heads.unique())
    title = (f"Decode cost vs context length, measured (paper Figure 6): {precision}, "
             f"{'/'.join(map(str, heads))} heads decoded together")
    if stopped:
        title += "\nexact attention stops where its cache exceeds the memory limit: " + ", ".join(stopped)
    return finish(fig, title, bench.caption(), args.out, args.dpi, args.pdf)
