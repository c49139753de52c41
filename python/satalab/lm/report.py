"""`satalab-lm report`: Markdown tables of a downstream run (the README's)."""

import json
import os

import pandas as pd

from .errors import LmError


def _read(path):
    if not os.path.isfile(path):
        raise LmError(f"'{path}' not found (allowed: an output of satalab-lm heads / evaluate)")
    return pd.read_csv(path)


def _fmt_bytes(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def heads_tables(path):
    t = _read(path)
    lines = ["| layer | logit std (min .. max over heads) | max \\|s\\| | max‖q‖·max‖k‖/c | rows z ≤ 0 at P = 4 (max over heads) |",
             "|---|---|---|---|---|"]
    for layer, g in t.groupby("layer"):
        lines.append(f"| {layer} | {g.logit_std.min():.2f} .. {g.logit_std.max():.2f} | "
                     f"{g.logit_max_abs.min():.1f} .. {g.logit_max_abs.max():.1f} | "
                     f"{g.qk_bound.min():.1f} .. {g.qk_bound.max():.1f} | {100 * g.z_le0_P4.max():.1f}% |")
    out = ["\n".join(lines)]
    columns = [c for c in t.columns if c.startswith("smallest_p_")]
    if columns:
        heads = sorted(t["head"].unique())
        for column in columns:
            label = column.replace("smallest_p_", "").replace("1pct", "1%").replace("10pct", "10%")
            target, precision = label.split("_", 1)
            rows = [f"Smallest P with median relative error ≤ {target} (SATA at {precision}; –: no P of the sweep reaches it)", "",
                    "| layer | " + " | ".join(f"head {h}" for h in heads) + " |",
                    "|---|" + "---|" * len(heads)]
            for layer, g in t.groupby("layer"):
                values = g.set_index("head")[column]
                rows.append(f"| {layer} | " + " | ".join("–" if pd.isna(values.get(h)) else str(int(values.get(h)))
                                                      for h in heads) + " |")
            out.append("\n".join(rows))
    return "\n\n".join(out)


def evaluate_table(path):
    t = _read(path)
    summary_path = os.path.splitext(path)[0] + ".json"
    header = ""
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            s = json.load(f)
        header = (f"Context {s['context']}, {s['sequences']} validation windows ({s['bytes_evaluated']:,} bytes); "
                  f"the model: {s['model_bits_per_byte']:.4f} bits per byte.\n\n")
    layers = sorted(x for x in t["layers_replaced"].unique() if x not in ("all", "none"))
    lines = ["| method | memory per token, all layers (bytes) | Δ bits/byte, all layers | accuracy | "
             + " | ".join(f"Δ layer {layer} only" for layer in layers) + " |",
             "|---|---|---|---|" + "---|" * len(layers)]

    def delta(row):
        if row is None or len(row) == 0:
            return ""
        r = row.iloc[0]
        return "non-finite" if r.status != "ok" else f"{r.delta_bits_per_byte:+.4f}"

    for method, g in t.groupby("method", sort=False):
        if method == "model":
            r = g.iloc[0]
            lines.append(f"| model (fp32, its own attention) | {_fmt_bytes(r.bytes_per_token)} | 0 | {r.accuracy:.3f} |"
                         + " |" * len(layers))
            continue
        a = g[g["layers_replaced"] == "all"]
        if not len(a):
            continue
        r = a.iloc[0]
        acc = "–" if r.status != "ok" else f"{r.accuracy:.3f}"
        lines.append(f"| {method} | {_fmt_bytes(r.bytes_per_token)} | {delta(a)} | {acc} | "
                     + " | ".join(delta(g[g["layers_replaced"] == str(layer)]) for layer in layers) + " |")
    return header + "\n".join(lines)


def report_command(args):
    parts = []
    if args.heads:
        parts.append(heads_tables(args.heads))
    for path in args.evaluate or []:
        parts.append(evaluate_table(path))
    print("\n\n".join(parts))
