#!/usr/bin/python3
"""Read-out polynomials compared at equal state (docs/architecture.md,
"Read-out polynomials"), from results files of sweeps with a `polynomial`
axis: markdown tables for the README.

For every group of SATA points that differ only in P and the family (e.g. one
head size and input scale):
  - median absolute and relative error per (P, family);
  - per family and P: the (fractional) P at which taylor's median relative
    error equals the family's at P, log-linear between taylor's points, and
    the state bytes that saves (taylor's bytes_per_sequence there, geometric
    between its points, minus the family's at P; the state depends on P only).

  scripts/readout_polynomials.py results/scale_polynomials.h5 [more.h5 ...]

Run under Debian's /usr/bin/python3 (h5py, numpy, pandas). A file without
the polynomial column (schema version < 5) or without SATA points: one line
on stderr, exit code 2.
"""
from __future__ import annotations

import sys

import h5py
import numpy as np
import pandas as pd

FAMILIES = ["taylor", "taylor-shift", "moment-fit", "chebyshev", "positive"]
GROUP_KEYS = ["d_key", "heads", "n_tokens", "scale", "precision", "workload", "modifiers", "causal", "chebyshev_width"]


def read_points(path: str) -> pd.DataFrame:
    with h5py.File(path, "r") as f:
        if "points" not in f:
            raise ValueError(f"{path}: no /points table (not a satalab results file)")
        table = f["points"][()]
    frame = pd.DataFrame({name: table[name] for name in table.dtype.names})
    for column in frame.columns:
        if len(frame) and isinstance(frame[column].iloc[0], bytes):
            frame[column] = frame[column].str.decode("utf-8")
    if "polynomial" not in frame.columns:
        raise ValueError(f"{path}: no 'polynomial' column (schema version 5 or later needed)")
    frame = frame[(frame.method == "sata") & (frame.status == "ok")]
    if frame.empty:
        raise ValueError(f"{path}: no finished sata points")
    return frame


def fmt(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:.2e}"


def equivalent_taylor(taylor: pd.DataFrame, error: float):
    """The fractional P at which taylor's median relative error equals
    `error` (log-linear between consecutive P where the error falls through
    it) and the state bytes there (geometric between the two): (None, None)
    outside taylor's range."""
    Ps = list(taylor.index)
    for a, b in zip(Ps, Ps[1:]):
        ea, eb = float(taylor.loc[a].rel_err_median), float(taylor.loc[b].rel_err_median)
        if b == a + 1 and ea >= error >= eb and ea > eb > 0:
            t = (np.log(ea) - np.log(error)) / (np.log(ea) - np.log(eb))
            ba, bb = float(taylor.loc[a].bytes_per_sequence), float(taylor.loc[b].bytes_per_sequence)
            return a + t, float(np.exp(np.log(ba) + t * (np.log(bb) - np.log(ba))))
    return None, None


def group_tables(group: pd.DataFrame, title: str) -> str:
    families = [f for f in FAMILIES if f in set(group.polynomial)]
    out = [f"#### {title}", ""]
    out.append("| P | " + " | ".join(f"{f} abs / rel" for f in families) + " |")
    out.append("|---|" + "---|" * len(families))
    by = group.set_index(["polynomial", "taylor_terms"])
    for P in sorted(group.taylor_terms.unique()):
        cells = []
        for f in families:
            if (f, P) in by.index:
                row = by.loc[(f, P)]
                cells.append(f"{fmt(row.abs_err_median)} / {fmt(row.rel_err_median)}")
            else:
                cells.append("—")
        out.append(f"| {P} | " + " | ".join(cells) + " |")
    out.append("")
    taylor = group[group.polynomial == "taylor"].set_index("taylor_terms").sort_index()
    out.append("Taylor's equivalent P at the family's median relative error (log-linear between taylor's P;")
    out.append("state bytes saved, interpolated the same way; **bold**: at or beyond taylor's P + 1; > P': below taylor's")
    out.append("error at every P of the grid, the best at P'; —: not between two of taylor's points):")
    out.append("")
    out.append("| family | " + " | ".join(f"P={P}" for P in sorted(group.taylor_terms.unique())) + " |")
    out.append("|---|" + "---|" * group.taylor_terms.nunique())
    for f in families:
        if f == "taylor":
            continue
        cells = []
        for P in sorted(group.taylor_terms.unique()):
            if (f, P) not in by.index:
                cells.append("—")
                continue
            row = by.loc[(f, P)]
            P_eq, bytes_eq = equivalent_taylor(taylor, float(row.rel_err_median))
            if P_eq is None:
                best = int(taylor.rel_err_median.idxmin())
                if row.rel_err_median < taylor.rel_err_median.min():
                    text = f"> {best}"  # better than taylor's best P of the grid
                    cells.append(f"**{text}**" if best >= P + 1 else text)
                else:
                    cells.append("—")  # not between two of taylor's points
                continue
            text = f"{P_eq:.1f} ({bytes_eq - float(row.bytes_per_sequence):+,.0f} B)"
            cells.append(f"**{text}**" if P_eq >= P + 1 - 1e-9 else text)
        out.append(f"| {f} | " + " | ".join(cells) + " |")
    nonpositive = group.groupby("polynomial").normaliser_nonpositive_count.sum()
    out.append("")
    out.append("Rows with a normaliser <= 0, summed over P: " +
               ", ".join(f"{f} {int(nonpositive.get(f, 0))}" for f in families))
    out.append("")
    return "\n".join(out)


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        frames = [read_points(p) for p in paths]
    except (OSError, ValueError) as error:
        print(f"readout_polynomials.py: {error}", file=sys.stderr)
        return 2
    frame = pd.concat(frames, ignore_index=True)
    keys = [k for k in GROUP_KEYS if k in frame.columns and frame[k].nunique() > 0]
    for values, group in frame.groupby(keys, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        title = ", ".join(f"{k} {v}" for k, v in zip(keys, values))
        print(group_tables(group, title))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
