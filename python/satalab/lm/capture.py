"""Recording q, k, v from a model, and `satalab-lm capture`.

``record_attention`` records every call of a scaled-dot-product-attention
function while a block runs. For any PyTorch >= 2 model that calls
``torch.nn.functional.scaled_dot_product_attention`` (as most transformer
implementations do)::

    from satalab.lm.capture import record_attention
    with record_attention() as calls:          # patches torch.nn.functional
        model(tokens)
    q, k, v = calls[0]["q"], calls[0]["k"], calls[0]["v"]   # [batch, heads, n, d], layer 0
    write_capture("layer0.h5", q[0], k[0], v[0])            # input of `satalab run --input`

Calls are recorded in order (one per layer and forward pass); each record
holds the detached tensors "q", "k", "v", the output "y" and the keyword
arguments (is_causal, scale, attn_mask). Only calls made through the module
attribute are seen: code that did ``from torch.nn.functional import
scaled_dot_product_attention`` holds its own reference and must be patched
where it looks the name up (``owner=that_module``). PyTorch 1.13 has no such
function; satalab-lm's own model calls ``satalab.lm.model.scaled_dot_product_attention``
(same signature), which is what the tests record (owner=satalab.lm.model).

Capture files (one per layer; HDF5, written atomically) are the input
format of ``satalab run --input`` and of sweeps with ``workload = "file"``:
datasets q, k, v float32 [heads, n_tokens, head_dim] (after RoPE, the
tensors the attention function received), and also y (the model's attention
output, float32 [heads, n_tokens, head_dim]), tokens (uint8 [n_tokens], the
input bytes), and with RoPE q_pre_rope, k_pre_rope. Attributes: layer,
layers, heads, head_dim, model_hash, model_config (JSON), context (the
model's training context), n_tokens, split, split_sha256, window_start,
sequence, rope, softmax_scale (1/sqrt(head_dim): satalab run's default
denominator c = sqrt(head_dim)), causal, head (per-head files only),
head_indices (layer files holding a subset of the heads, --heads).
"""

import contextlib
import json
import os

import h5py
import numpy as np
import torch

from . import model as model_module
from .checkpoint import load_model
from .corpus import evaluation_windows, load_corpus
from .errors import LmError

CAPTURE_FORMAT = "satalab-lm capture 1"


@contextlib.contextmanager
def record_attention(owner=None, name="scaled_dot_product_attention"):
    """Records every call of owner.<name> (default torch.nn.functional's
    scaled_dot_product_attention, PyTorch >= 2) inside the block; yields the
    list of records {"q", "k", "v", "y", "kwargs"} in call order."""
    owner = torch.nn.functional if owner is None else owner
    original = getattr(owner, name, None)
    if original is None:
        raise LmError(f"{getattr(owner, '__name__', owner)} has no '{name}' (torch.nn.functional has it from "
                      f"PyTorch 2.0; this is {torch.__version__}; pass owner= the module whose function the model calls)")
    calls = []

    def recording(query, key, value, *args, **kwargs):
        out = original(query, key, value, *args, **kwargs)
        calls.append({"q": query.detach().clone(), "k": key.detach().clone(), "v": value.detach().clone(),
                      "y": out.detach().clone(),
                      "kwargs": {k: v for k, v in kwargs.items() if not torch.is_tensor(v)},
                      "positional": len(args)})
        return out

    setattr(owner, name, recording)
    try:
        yield calls
    finally:
        setattr(owner, name, original)


def _atomic_h5(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_capture(path, q, k, v, attrs=None, extra=None):
    """Writes q, k, v ([heads, n, d] arrays or tensors) in the input format of
    `satalab run --input`, plus optional extra datasets and attributes."""
    def as_array(x):
        return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)

    def write(f):
        for key, value in (("q", q), ("k", k), ("v", v), *(extra or {}).items()):
            f.create_dataset(key, data=as_array(value))
        for key, value in (attrs or {}).items():
            f.attrs[key] = value

    _atomic_h5(path, write)


def read_capture(path, expected_hash=None):
    """dict of the datasets and "attrs" of a capture file; LmError when it is
    not one, or (expected_hash) when it is of another model."""
    if not os.path.isfile(path):
        raise LmError(f"capture file '{path}' not found (allowed: a file written by satalab-lm capture)")
    try:
        with h5py.File(path, "r") as f:
            out = {key: f[key][()] for key in f.keys()}
            out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    except OSError as e:
        raise LmError(f"capture file '{path}' cannot be read as HDF5 ({e}) "
                      f"(allowed: a file written by satalab-lm capture)") from None
    if out["attrs"].get("format") != CAPTURE_FORMAT or not all(k in out for k in ("q", "k", "v")):
        raise LmError(f"'{path}' is not a satalab-lm capture file (allowed: a file written by satalab-lm capture)")
    if expected_hash is not None and out["attrs"]["model_hash"] != expected_hash:
        raise LmError(f"capture file '{path}' is of model {out['attrs']['model_hash']}, not of this checkpoint's "
                      f"model {expected_hash} (allowed: captures of the same checkpoint)")
    return out


def parse_layers(text, layers, what="layer"):
    if text is None or text == "all":
        return list(range(layers))
    out = []
    for part in str(text).split(","):
        try:
            index = int(part)
        except ValueError:
            raise LmError(f"{what} '{part}' is not an integer (allowed: 0 .. {layers - 1}, comma-separated, or all)") from None
        if not 0 <= index < layers:
            raise LmError(f"{what} {index} is out of range (allowed: 0 .. {layers - 1})")
        out.append(index)
    return out


def check_corpus(payload, corpus, split):
    key = f"{split}_sha256"
    if payload["corpus"][key] != corpus.info[key]:
        raise LmError(f"the {split} split of this corpus (sha256 {corpus.info[key][:16]}...) is not the one the "
                      f"checkpoint was trained with ({payload['corpus'][key][:16]}...) "
                      f"(allowed: the checkpoint's corpus, --corpus {payload['corpus']['roots']})")


@torch.no_grad()
def capture(model, tokens):
    """Runs the model on one sequence (uint8/int array [n]); returns per layer
    a dict of [heads, n, d] float32 tensors q, k, v, y, q_pre_rope, k_pre_rope,
    recorded through record_attention on the model's attention function
    (q, k, v, y) and the layers' own record (pre-RoPE)."""
    x = torch.as_tensor(np.asarray(tokens, dtype=np.int64))[None, :]
    records = [dict() for _ in model.blocks]
    for block, record in zip(model.blocks, records):
        block.attn.record = record
    try:
        with record_attention(owner=model_module) as calls:
            model(x)
    finally:
        for block in model.blocks:
            block.attn.record = None
    if len(calls) != len(model.blocks):
        raise RuntimeError(f"recorded {len(calls)} attention calls for {len(model.blocks)} layers")
    out = []
    for call, record in zip(calls, records):
        layer = {name: call[name][0] for name in ("q", "k", "v", "y")}
        layer["q_pre_rope"], layer["k_pre_rope"] = record["q_pre_rope"][0], record["k_pre_rope"][0]
        out.append(layer)
    return out


def capture_command(args):
    model, payload = load_model(args.checkpoint)
    config = model.config
    layers = parse_layers(args.layers, config.layers)
    keep = parse_layers(args.heads, config.heads, "head")
    context = args.context or config.context
    if context < 1 or (not config.rope and context > config.context):
        raise LmError(f"--context {context} is invalid (allowed: 1 .. {config.context}"
                      f"{'' if not config.rope else ', or longer with RoPE'})")
    if args.windows < 1:
        raise LmError(f"--windows {args.windows} is invalid (allowed: >= 1)")
    corpus = load_corpus(args.corpus or payload["corpus"]["roots"])
    check_corpus(payload, corpus, args.split)
    data = corpus.split(args.split)
    windows = evaluation_windows(data, context, args.windows)
    if not 0 <= args.sequence < len(windows):
        raise LmError(f"--sequence {args.sequence} is out of range (allowed: 0 .. {len(windows) - 1})")
    start = int(windows[args.sequence])
    tokens = data[start:start + context]

    os.makedirs(args.out_dir, exist_ok=True)
    paths = {}
    for layer in layers:
        paths[(layer, None)] = os.path.join(args.out_dir, f"layer{layer}.h5")
        if args.per_head:
            for head in range(config.heads):
                paths[(layer, head)] = os.path.join(args.out_dir, f"layer{layer}_head{head}.h5")
    if not args.force:
        for path in paths.values():
            if os.path.exists(path):
                raise LmError(f"'{path}' exists (allowed: --force to replace it, or another --out-dir)")

    captured = capture(model, tokens)
    base_attrs = {"format": CAPTURE_FORMAT, "layers": config.layers, "heads": config.heads,
                  "head_dim": config.head_dim, "model_hash": payload["model_hash"],
                  "model_config": json.dumps(config.to_dict(), sort_keys=True), "context": config.context,
                  "n_tokens": context, "split": args.split, "split_sha256": corpus.info[f"{args.split}_sha256"],
                  "window_start": start, "sequence": args.sequence, "rope": config.rope,
                  "softmax_scale": 1.0 / config.head_dim ** 0.5, "causal": True}
    for (layer, head), path in paths.items():
        t = captured[layer]
        select = (lambda a: a[keep]) if head is None else (lambda a: a[head:head + 1])
        extra = {"y": select(t["y"]), "tokens": np.asarray(tokens, dtype=np.uint8)}
        if config.rope:
            extra.update(q_pre_rope=select(t["q_pre_rope"]), k_pre_rope=select(t["k_pre_rope"]))
        if args.minimal:
            extra = {}
        attrs = dict(base_attrs, layer=layer)
        if head is not None:
            attrs["head"] = head
        elif len(keep) != config.heads:
            attrs["head_indices"] = np.asarray(keep, dtype=np.int64)
        write_capture(path, select(t["q"]), select(t["k"]), select(t["v"]), attrs=attrs, extra=extra)
    print(f"captured {len(layers)} layers x {len(keep)} heads x {context} tokens (split {args.split}, window "
          f"{args.sequence} at byte {start}) into {len(paths)} files in '{args.out_dir}' (model {payload['model_hash']})")
