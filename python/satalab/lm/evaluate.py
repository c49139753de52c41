"""`satalab-lm evaluate`: the model's validation loss with its attention
replaced through the satalab module.

Each method replaces the attention of every layer ("all") or of one layer
(its index) by ``satalab.attention`` on the post-RoPE q, k, v of each
sequence (all heads of one sequence in one call, so per-tensor KV-cache
scales are calibrated per layer and sequence as a cache would be). The same
validation windows are used for every method, so differences are paired.

Method specs: ``model`` (the model's own float32 attention), ``exact@<policy>``
(exact softmax attention at a precision policy: fp64, fp32, bf16, fp16,
fp16-acc32, bf16-acc32, e4m3-acc32, ...), ``sata-P<P>@<policy>`` (SATA with P
Taylor terms), ``kv-<scheme>@<policy>`` (exact attention over a KV cache
stored as <scheme>: int8, int4-g32, int2-g32, e4m3, e5m2, fp16, bf16, ...).

Memory per token, for the replaced layers, all heads (docs/results-schema.md,
"bytes_per_sequence"): the KV cache in the policy's input format for exact
attention and the model, the quantized cache with its scales and zero points
for kv-<scheme>, and SATA's state (heads x state_elements x bytes of the
accumulate format), which is fixed per sequence, divided by the context.
"""

import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from .capture import check_corpus
from .checkpoint import load_model
from .corpus import evaluation_windows, load_corpus
from .errors import LmError
from .model import replaced_attention

FORMAT_BYTES = {"fp64": 8, "fp32": 4, "bf16": 2, "fp16": 2, "e4m3": 1, "e4m3sat": 1, "e5m2": 1}

STANDARD_KV = ["fp16", "bf16", "int8", "e4m3", "e5m2", "int4-g32", "int2-g32"]
STANDARD_POLICIES = ["bf16", "fp16", "fp16-acc32", "bf16-acc32", "e4m3-acc32"]


class Method:
    def __init__(self, spec):
        self.spec = spec
        text, _, policy = spec.partition("@")
        self.policy = policy or "fp32"
        self.taylor_terms = 0
        self.kv_quant = "none"
        if text == "model":
            if policy:
                raise LmError(f"method '{spec}': 'model' takes no policy (allowed: model)")
            self.kind, self.policy = "model", "fp32"
        elif text == "exact":
            self.kind = "exact"
        elif re.fullmatch(r"sata-P\d+", text):
            self.kind, self.taylor_terms = "sata", int(text[6:])
            if not 1 <= self.taylor_terms <= 21:
                raise LmError(f"method '{spec}': P = {self.taylor_terms} is out of range (allowed: 1 .. 21)")
        elif text.startswith("kv-"):
            self.kind, self.kv_quant = "kv", text[3:]
        else:
            raise LmError(f"method '{spec}' is not known (allowed: model, exact@POLICY, sata-P<P>@POLICY, "
                          f"kv-SCHEME@POLICY)")

    def attention_function(self):
        import satalab

        if self.kind == "model":
            return None
        method = {"exact": "exact", "sata": "sata", "kv": "exact-kvquant"}[self.kind]
        options = dict(method=method, precision=self.policy, causal=True)
        if self.kind == "sata":
            options["taylor_terms"] = self.taylor_terms
        if self.kind == "kv":
            options["kv_quant"] = self.kv_quant

        def attend(q, k, v, scale):
            b, h, n, d = q.shape
            out = np.empty((b, h, n, v.shape[-1]), dtype=np.float32)
            for i in range(b):  # one sequence (all its heads) per call
                y, _ = satalab.attention(q[i].numpy(), k[i].numpy(), v[i].numpy(), softmax_scale=scale, **options)
                attend.nonfinite += int(np.count_nonzero(~np.isfinite(y)))
                out[i] = y
            return torch.from_numpy(out)

        attend.nonfinite = 0

        return attend

    def check(self):
        """Raises LmError (the module's one-line message) for a bad name."""
        if self.kind == "model":
            return self
        q = np.zeros((1, 4, 8), dtype=np.float32)
        try:
            self.attention_function()(torch.from_numpy(q[None]), torch.from_numpy(q[None]),
                                      torch.from_numpy(q[None]), 0.25)
        except ValueError as e:
            raise LmError(f"method '{self.spec}': {e}") from None
        return self

    def bytes_per_sequence(self, heads, n, d, layers):
        """Memory the replaced layers keep for one sequence of n tokens."""
        import satalab

        info = satalab.precision_info(self.policy)
        if self.kind == "sata":
            state = satalab.cost(d, d, self.taylor_terms, n)["state_elements"]
            return layers * heads * state * FORMAT_BYTES.get(info["accumulate"], 0)
        b_in = FORMAT_BYTES.get(info["input"], 0)
        if self.kind in ("model", "exact") or self.kv_quant == "none":
            return layers * heads * n * 2 * d * b_in
        return layers * kv_cache_bytes(self.kv_quant, heads, n, d, d, b_in)


def kv_cache_bytes(scheme, heads, n, d_key, d_value, b_in):
    """Bytes of a quantized KV cache, all heads, n tokens (the formulas of
    docs/results-schema.md, table "kv_quant")."""
    m = re.fullmatch(r"(fp16|bf16|e4m3sat|e4m3|e5m2|int8|int4-g(\d+)|int2-g(\d+))(-head|-unscaled)?(-r(\d+))?", scheme)
    if not m:
        raise LmError(f"kv_quant '{scheme}' is not known to the memory model (allowed: fp16, bf16, e4m3, e4m3sat, "
                      f"e5m2, int8, int4-g<G>, int2-g<G>, with -head/-unscaled, -r<R>)")
    base, suffix = m.group(1), m.group(4)
    recent = int(m.group(6)) if m.group(6) else 0
    nq = n - min(recent, n)
    if base in ("fp16", "bf16", "e4m3", "e4m3sat", "e5m2"):
        per = 2 if base in ("fp16", "bf16") else 1
        scales = 0 if suffix == "-unscaled" else (2 * heads * 4 if suffix == "-head" else 2 * 4)
        total = heads * nq * (d_key + d_value) * per + scales
    elif base == "int8":
        total = heads * nq * (d_key + d_value + 4)
    else:
        bits = 4 if base.startswith("int4") else 2
        g = int(m.group(2) or m.group(3))
        total = heads * (math.ceil(nq * d_key * bits / 8) + math.ceil(nq * d_value * bits / 8)
                         + 4 * (d_key * math.ceil(nq / g) + nq * math.ceil(d_value / g)))
    return total + heads * min(recent, n) * (d_key + d_value) * b_in


def standard_methods(max_p=8):
    methods = ["model", "exact@fp64", "exact@fp32"]
    methods += [f"sata-P{p}@{policy}" for policy in ("fp32", "fp16-acc32") for p in range(2, max_p + 1)]
    methods += [f"kv-{s}@fp32" for s in STANDARD_KV]
    methods += [f"exact@{p}" for p in STANDARD_POLICIES]
    return methods


@torch.no_grad()
def sequence_losses(model, rows):
    """(nats summed, correct, count) of the model on rows [B, n + 1]."""
    logits = model(rows[:, :-1])
    targets = rows[:, 1:]
    nats = F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1), reduction="sum").item()
    return nats, (logits.argmax(-1) == targets).sum().item(), targets.numel()


def evaluate(model, data, windows, context, method, layers=None, batch_size=4, details=False):
    """(bits per byte, accuracy) with `method` replacing the attention of
    `layers` (None: the model as it is). details=True adds the number of
    non-finite attention outputs the method produced and a status: "ok", or
    "non-finite" when they reached the loss (bits per byte is then inf)."""
    rows_all = np.stack([data[s:s + context + 1] for s in windows]).astype(np.int64)
    total_nats, correct, count = 0.0, 0, 0
    function = method.attention_function()
    status = "ok"
    for i in range(0, len(rows_all), batch_size):
        rows = torch.from_numpy(rows_all[i:i + batch_size])
        try:
            if function is None or layers == []:
                nats, c, n = sequence_losses(model, rows)
            else:
                with replaced_attention(model, function, layers):
                    nats, c, n = sequence_losses(model, rows)
        except ValueError as e:
            if "NaN" not in str(e) and "Inf" not in str(e):
                raise
            status = "non-finite"  # a replaced layer's NaN/Inf output reached the next layer's q, k, v
            break
        if not math.isfinite(nats):
            status = "non-finite"
            break
        total_nats += nats
        correct += c
        count += n
    if status == "ok":
        bits, accuracy = total_nats / count / math.log(2.0), correct / count
    else:
        bits, accuracy = math.inf, math.nan
    if details:
        return bits, accuracy, (function.nonfinite if function is not None else 0), status
    return bits, accuracy


def parse_replace(text, layers):
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if part == "all":
            out.append(("all", list(range(layers))))
        elif part == "each":
            out.extend((str(i), [i]) for i in range(layers))
        else:
            try:
                index = int(part)
            except ValueError:
                raise LmError(f"--replace '{part}' is invalid (allowed: all, each, or layer indices 0 .. {layers - 1})") from None
            if not 0 <= index < layers:
                raise LmError(f"layer {index} is out of range (allowed: 0 .. {layers - 1})")
            out.append((str(index), [index]))
    return out


def evaluate_command(args):
    model, payload = load_model(args.checkpoint)
    config = model.config
    context = args.context or config.context
    if context < 1 or (not config.rope and context > config.context):
        raise LmError(f"--context {context} is invalid (allowed: 1 .. {config.context}"
                      f"{'' if not config.rope else ', or longer with RoPE'})")
    if args.sequences < 1:
        raise LmError(f"--sequences {args.sequences} is invalid (allowed: >= 1)")
    specs = standard_methods(args.sata_max_p) if args.methods == "standard" else \
        [s.strip() for s in args.methods.split(",") if s.strip()]
    methods = [Method(s).check() for s in specs]
    replacements = parse_replace(args.replace, config.layers)
    summary_path = os.path.splitext(args.out)[0] + ".json"
    for path in (args.out, summary_path):
        if os.path.exists(path) and not args.force:
            raise LmError(f"'{path}' exists (allowed: --force to replace it, or another --out)")
    if args.figures and os.path.exists(os.path.join(args.figures, "lm_delta_vs_memory.png")) and not args.force:
        raise LmError(f"'{os.path.join(args.figures, 'lm_delta_vs_memory.png')}' exists (allowed: --force)")
    corpus = load_corpus(args.corpus or payload["corpus"]["roots"])
    check_corpus(payload, corpus, "validation")
    windows = evaluation_windows(corpus.validation, context, args.sequences)

    import pandas as pd
    from tqdm import tqdm

    jobs = [(m, "none", []) if m.kind == "model" else (m, name, layers) for m in methods
            for name, layers in ([("none", [])] if m.kind == "model" else replacements)
            if not (m.kind == "sata" and args.each_max_p is not None and m.taylor_terms > args.each_max_p
                    and name != "all")]
    rows = []
    reference = None
    bar = tqdm(jobs, disable=args.no_progress, unit="run", file=sys.stderr,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)
    for method, name, layers in bar:
        bar.set_postfix_str(f"{method.spec} layers {name}", refresh=False)
        started = time.monotonic()
        bits, accuracy, nonfinite, status = evaluate(model, corpus.validation, windows, context, method, layers,
                                                     details=True)
        if method.kind == "model":
            reference = bits
        n_layers = config.layers if method.kind == "model" else len(layers)
        per_sequence = method.bytes_per_sequence(config.heads, context, config.head_dim, n_layers)
        rows.append({"method": method.spec, "kind": method.kind, "precision": method.policy,
                     "taylor_terms": method.taylor_terms, "kv_quant": method.kv_quant, "layers_replaced": name,
                     "context": context, "sequences": len(windows), "bits_per_byte": bits,
                     "accuracy": accuracy, "nonfinite_outputs": nonfinite, "status": status,
                     "bytes_per_sequence": per_sequence,
                     "bytes_per_token": per_sequence / context, "seconds": time.monotonic() - started})
    bar.close()
    frame = pd.DataFrame(rows)
    if reference is None:
        reference = evaluate(model, corpus.validation, windows, context, Method("model"))[0]
    frame["delta_bits_per_byte"] = frame["bits_per_byte"] - reference
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    frame.to_csv(args.out, index=False)
    summary = {"checkpoint_model_hash": payload["model_hash"], "model_config": config.to_dict(),
               "context": context, "training_context": config.context, "sequences": int(len(windows)),
               "bytes_evaluated": int(len(windows) * context), "model_bits_per_byte": reference,
               "baselines": payload["baselines"], "corpus": payload["corpus"], "results": args.out}
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"model: {reference:.4f} bits per byte on {len(windows)} validation windows of {context} bytes "
          f"(bigram {payload['baselines']['bigram_bits_per_byte']:.3f}); {len(frame)} rows in '{args.out}'")
    if args.figures:
        from .figures import delta_vs_memory

        delta_vs_memory(frame, os.path.join(args.figures, "lm_delta_vs_memory.png"))
    return frame
