"""`satalab-lm heads`: per-head logit statistics and per-head errors.

Logit statistics come from the capture files (computed here in float64 from
q and k, independent of the C++ core): with s_ij = softmax_scale * q_i . k_j
over the causal pairs j <= i of each head,
  logit_std            standard deviation of s (the head's logit spread)
  logit_max_abs        max |s_ij|
  qk_bound             max_i ||q_i|| * max_j ||k_j|| * softmax_scale (= / c),
                       the bound on |s| a Taylor series has to cover
  z_le0_P<P>           fraction of rows whose Taylor normaliser
                       z_i = sum_j T_P(s_ij) is <= 0, T_P(s) = sum_{p<P} s^p/p!
Per-head errors come from `satalab sweep` results over the captures run
with --save-outputs: satalab.error_metrics on each head's saved y and
y_truth (the statistics of the results table, restricted to one head).
"""

import os

import numpy as np
import pandas as pd

from .capture import read_capture
from .errors import LmError

P_RANGE = range(2, 11)


def taylor(s, terms):
    out = np.zeros_like(s)
    term = np.ones_like(s)
    for p in range(terms):
        out += term
        term = term * s / (p + 1)
    return out


def logit_statistics(q, k, softmax_scale, p_range=P_RANGE):
    """Statistics of one head's causal logits (q, k [n, d])."""
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    n = q.shape[0]
    s = softmax_scale * (q @ k.T)
    mask = np.tril(np.ones((n, n), dtype=bool))
    valid = s[mask]
    out = {"logit_std": float(valid.std()), "logit_max_abs": float(np.abs(valid).max()),
           "qk_bound": float(np.linalg.norm(q, axis=1).max() * np.linalg.norm(k, axis=1).max() * softmax_scale),
           "logit_mean": float(valid.mean()),
           "row_range_median": float(np.median(np.where(mask, s, -np.inf).max(1) - np.where(mask, s, np.inf).min(1)))}
    for p in p_range:
        z = np.where(mask, taylor(s, p), 0.0).sum(axis=1)
        out[f"z_le0_P{p}"] = float(np.mean(z <= 0))
    return out


def capture_files(directory):
    if not os.path.isdir(directory):
        raise LmError(f"capture directory '{directory}' not found (allowed: an --out-dir of satalab-lm capture)")
    names = sorted(n for n in os.listdir(directory) if n.startswith("layer") and n.endswith(".h5") and "_head" not in n)
    if not names:
        raise LmError(f"capture directory '{directory}' holds no layer<L>.h5 files (allowed: an --out-dir of "
                      f"satalab-lm capture)")
    return [os.path.join(directory, n) for n in names]


def head_statistics(directory, expected_hash=None):
    """(DataFrame of one row per layer and head, model hash)."""
    rows = []
    model = expected_hash
    for path in capture_files(directory):
        c = read_capture(path, model)
        model = c["attrs"]["model_hash"]
        scale = float(c["attrs"]["softmax_scale"])
        indices = c["attrs"].get("head_indices", range(c["q"].shape[0]))
        for i, h in enumerate(indices):
            rows.append({"layer": int(c["attrs"]["layer"]), "head": int(h),
                         **logit_statistics(c["q"][i], c["k"][i], scale)})
    return pd.DataFrame(rows).sort_values(["layer", "head"]).reset_index(drop=True), model


def head_errors(sweep_paths, model_hash):
    """Long table: layer, head, method, precision, taylor_terms, kv_quant,
    rel_err_median, normwise_rel_err_median, bytes_per_sequence."""
    import satalab

    rows = []
    for path in sweep_paths:
        if not os.path.isfile(path):
            raise LmError(f"sweep results '{path}' not found (allowed: files written by satalab sweep)")
        table = satalab.read_results(path)
        for _, point in table.iterrows():
            if point["status"] != "ok":
                continue
            capture = read_capture(point["input_file"], model_hash)
            data = satalab.read_point(path, int(point["point_id"]))
            if data["y"] is None:
                raise LmError(f"sweep results '{path}' have no saved outputs (allowed: a sweep run with --save-outputs)")
            heads = [int(capture["attrs"]["head"])] if "head" in capture["attrs"] else \
                [int(h) for h in capture["attrs"].get("head_indices", range(data["y"].shape[0]))]
            for i, head in enumerate(heads):
                m = satalab.error_metrics(data["y"][i], data["y_truth"][i])
                rows.append({"layer": int(capture["attrs"]["layer"]), "head": head, "method": point["method"],
                             "precision": point["precision"], "taylor_terms": int(point["taylor_terms"]),
                             "kv_quant": point["kv_quant"], "rel_err_median": m["rel_err_median"],
                             "normwise_rel_err_median": m["normwise_rel_err_median"],
                             "abs_err_median": m["abs_err_median"],
                             "bytes_per_sequence_file": int(point["bytes_per_sequence"])})
    return pd.DataFrame(rows)


def smallest_p(errors, threshold, precision):
    """Per (layer, head): the smallest P of SATA at `precision` whose median
    relative error is <= threshold (None when no P in the sweep reaches it)."""
    sata = errors[(errors["method"] == "sata") & (errors["precision"] == precision)]
    out = {}
    for (layer, head), g in sata.groupby(["layer", "head"]):
        ok = g[g["rel_err_median"] <= threshold]
        out[(layer, head)] = int(ok["taylor_terms"].min()) if len(ok) else None
    return out


def heads_command(args):
    for path in [args.out] + ([os.path.join(args.figures, "lm_heads_error_vs_p.png")] if args.figures else []):
        if os.path.exists(path) and not args.force:
            raise LmError(f"'{path}' exists (allowed: --force to replace it, or another path)")
    expected = None
    if getattr(args, "checkpoint", None):
        from .checkpoint import load

        expected = load(args.checkpoint)["model_hash"]
    stats, model_hash = head_statistics(args.capture_dir, expected)
    errors = head_errors(args.sweeps, model_hash) if args.sweeps else pd.DataFrame()
    table = stats.copy()
    if len(errors):
        for precision in sorted(errors[errors["method"] == "sata"]["precision"].unique()):
            for threshold, label in ((0.01, "1pct"), (0.10, "10pct")):
                best = smallest_p(errors, threshold, precision)
                table[f"smallest_p_{label}_{precision}"] = [best.get((l, h)) for l, h in zip(table["layer"], table["head"])]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    table.to_csv(args.out, index=False)
    if len(errors):
        errors.to_csv(os.path.splitext(args.out)[0] + "_errors.csv", index=False)
    spread = table["logit_std"]
    print(f"{len(table)} heads of model {model_hash}: logit std {spread.min():.2f} .. {spread.max():.2f}, "
          f"max |s| {table['logit_max_abs'].min():.1f} .. {table['logit_max_abs'].max():.1f}; table '{args.out}'")
    if len(errors):
        for column in [c for c in table.columns if c.startswith("smallest_p_")]:
            values = table[column]
            none = int(values.isna().sum())
            reached = values.dropna()
            precision = column.split("_", 3)[3]
            top = int(errors[(errors["method"] == "sata") & (errors["precision"] == precision)]["taylor_terms"].max())
            print(f"  {column}: " + (f"P {int(reached.min())} .. {int(reached.max())}, " if len(reached) else "")
                  + f"{none} of {len(values)} heads with none <= {top}")
    if args.figures:
        from .figures import error_vs_p, smallest_p_figure

        os.makedirs(args.figures, exist_ok=True)
        if len(errors):
            error_vs_p(table, errors, os.path.join(args.figures, "lm_heads_error_vs_p.png"))
            smallest_p_figure(table, os.path.join(args.figures, "lm_heads_smallest_p.png"))
    return table, errors
