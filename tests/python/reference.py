"""Independent numpy references (float64) for the attention methods."""

import math

import numpy as np


def scores(q, k, softmax_scale=None):
    """s_ij = softmax_scale * q_i . k_j, default 1/sqrt(d_key); q, k [..., n, d]."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if softmax_scale is None else softmax_scale
    return scale * np.einsum("...id,...jd->...ij", q, k)


def causal_mask(n):
    return np.tril(np.ones((n, n), dtype=bool))


def softmax_attention(q, k, v, causal=True, softmax_scale=None):
    """Exact attention in float64: y [..., n, d_value], z = sum_j exp(s_ij - max_j s_ij)."""
    s = scores(q, k, softmax_scale)
    if causal:
        s = np.where(causal_mask(s.shape[-1]), s, -np.inf)
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    z = w.sum(axis=-1)
    return np.einsum("...ij,...jd->...id", w, v) / z[..., None], z


def taylor_exp(s, taylor_terms):
    """T_P(s) = sum_{p<P} s^p / p!."""
    return sum(s ** p / math.factorial(p) for p in range(taylor_terms))


def taylor_attention(q, k, v, taylor_terms, causal=True, softmax_scale=None):
    """Exact attention with exp replaced by T_P, O(n^2), float64: SATA's mathematical target."""
    w = taylor_exp(scores(q, k, softmax_scale), taylor_terms)
    if causal:
        w = np.where(causal_mask(w.shape[-1]), w, 0.0)
    z = w.sum(axis=-1)
    return np.einsum("...ij,...jd->...id", w, v) / z[..., None], z
