"""A small byte-level GPT: causal, pre-norm, rotary positions optional.

Every layer's attention goes through one function, ``scaled_dot_product_attention``
of this module (the signature of PyTorch 2's
``torch.nn.functional.scaled_dot_product_attention``), looked up at call time,
so it can be recorded (``satalab.lm.capture.record_attention``) or replaced
(``replaced_attention``) without touching the model. The model computes in
float32 on the CPU and is deterministic for a given seed and thread count.
"""

import contextlib
import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn

from .errors import LmError

HEAD_DIMS = (8, 16, 32, 64)


@dataclass(frozen=True)
class ModelConfig:
    layers: int = 4
    heads: int = 8
    head_dim: int = 16
    context: int = 512
    rope: bool = True
    mlp_ratio: int = 4
    vocab: int = 256
    rope_base: float = 10000.0

    @property
    def d_model(self):
        return self.heads * self.head_dim

    def check(self):
        for name in ("layers", "heads", "context", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise LmError(f"{name} = {value} is invalid (allowed: an integer >= 1)")
        if self.head_dim not in HEAD_DIMS:
            raise LmError(f"head_dim = {self.head_dim} is invalid (allowed: {', '.join(map(str, HEAD_DIMS))})")
        if self.vocab != 256:
            raise LmError(f"vocab = {self.vocab} is invalid (allowed: 256, bytes)")
        return self

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self):
        return (f"layers={self.layers} heads={self.heads} head_dim={self.head_dim} context={self.context} "
                f"rope={'on' if self.rope else 'off'}")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """Softmax attention as PyTorch 2's function of the same name computes it
    (query, key, value [..., n, d]; scale None = 1/sqrt(d)); float32 here.
    The model calls it through this module's attribute, so patching the
    attribute records or replaces every layer's attention."""
    if dropout_p:
        raise ValueError("dropout_p must be 0 (this model does not use attention dropout)")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    s = torch.matmul(query, key.transpose(-2, -1)) * scale
    if is_causal:
        n, m = s.shape[-2], s.shape[-1]
        mask = torch.ones(n, m, dtype=torch.bool, device=s.device).tril(diagonal=m - n)
        s = s.masked_fill(~mask, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            s = s.masked_fill(~attn_mask, float("-inf"))
        else:
            s = s + attn_mask
    return torch.matmul(torch.softmax(s, dim=-1), value)


def rope_tables(n, head_dim, base, offset=0):
    half = head_dim // 2
    inv = 1.0 / (base ** (torch.arange(0, half, dtype=torch.float64) / half))
    angles = torch.arange(offset, offset + n, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x, cos, sin):
    """Rotary positions (rotate-half layout) on x [..., n, d]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.config = config
        self.layer = layer
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.override = None  # fn(q, k, v, scale) -> y, [B, H, n, d] tensors (replaced_attention)
        self.record = None  # a dict: the forward stores q_pre_rope, k_pre_rope, q, k, v, y there

    def forward(self, x):
        b, n, _ = x.shape
        h, d = self.config.heads, self.config.head_dim
        q, k, v = self.qkv(x).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4)  # each [B, H, n, d]
        q_pre, k_pre = q, k
        if self.config.rope:
            cos, sin = rope_tables(n, d, self.config.rope_base)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        scale = 1.0 / math.sqrt(d)
        if self.override is not None:
            y = self.override(q, k, v, scale)
        else:
            # Looked up at call time: patching the module attribute reaches every layer.
            y = sys.modules[__name__].scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        if self.record is not None:
            self.record.update(q_pre_rope=q_pre.detach(), k_pre_rope=k_pre.detach(), q=q.detach(),
                               k=k.detach(), v=v.detach(), y=y.detach())
        return self.proj(y.transpose(1, 2).reshape(b, n, h * d))


class Block(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config, layer)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, config.mlp_ratio * config.d_model),
                                 nn.GELU(), nn.Linear(config.mlp_ratio * config.d_model, config.d_model))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ByteGPT(nn.Module):
    """Byte-level causal transformer. forward(tokens [B, n] int64) -> logits [B, n, 256]."""

    def __init__(self, config):
        super().__init__()
        self.config = config.check()
        self.embed = nn.Embedding(config.vocab, config.d_model)
        self.position = None if config.rope else nn.Embedding(config.context, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.apply(self._init)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, std=0.02 / math.sqrt(2 * config.layers))
            nn.init.normal_(block.mlp[2].weight, std=0.02 / math.sqrt(2 * config.layers))

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, tokens):
        n = tokens.shape[1]
        x = self.embed(tokens)
        if self.position is not None:
            if n > self.config.context:
                raise LmError(f"sequence of {n} tokens is longer than the context {self.config.context} of a "
                              f"model without RoPE (allowed: <= {self.config.context})")
            x = x + self.position(torch.arange(n))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def model_hash(model):
    """16 hex digits of sha256 over the configuration and every parameter's bytes."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def replaced_attention(model, function, layers=None):
    """Within the block, the attention of `layers` (default all) is
    function(q, k, v, scale) -> y on [B, heads, n, d] float32 tensors (post-RoPE)."""
    layers = range(model.config.layers) if layers is None else list(layers)
    for layer in layers:
        if not 0 <= layer < model.config.layers:
            raise LmError(f"layer {layer} is out of range (allowed: 0 .. {model.config.layers - 1})")
    saved = [(block.attn, block.attn.override) for block in model.blocks]
    try:
        for layer in layers:
            model.blocks[layer].attn.override = function
        yield model
    finally:
        for attn, override in saved:
            attn.override = override
