"""Kernel recipes from Python: sdpa-math-bf16 against PyTorch's CPU bfloat16 math path,
softmax(q @ k^T * scale) @ v with torch.bfloat16 tensors (Debian's
python3-torch), on the same inputs.

What torch 1.13 does on the CPU, step by step (each step checked below on
torch's own intermediates): q @ k^T accumulates in fp32 and rounds to bf16
(oneDNN); `* scale` casts the Python float to bf16 and multiplies in fp32,
rounding to bf16; softmax upcasts to fp32 (max, exp(x - max), sum, divide)
and rounds to bf16; P @ v accumulates in fp32 and rounds to bf16.
satalab's recipe rounds the exact products once (fp32 accumulation in
another order) and computes exp in double rounded to fp32 (torch: a
vectorised fp32 exp) with a sequential fp32 sum. So the two agree bit for
bit except where a value falls within a few fp32 ulps of a bf16 rounding
boundary (a near-tie): there the last fp32 bit decides, and one bf16 ulp of
S, P or y may differ. The test asserts exactly that: every row of y that
differs from torch has a near-tie in torch's S, P or y, and every other row
is identical.
"""

import numpy as np
import pytest

import satalab

torch = pytest.importorskip("torch")


def bf16(x):
    """Correct rounding (nearest, ties to even) of float64 values into bf16, as float64."""
    return np.asarray(satalab.round_to(np.asarray(x, dtype=np.float64), "bf16"))


def f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def near_bf16_tie(x, ulps=8):
    """True where the value x (float64) is within `ulps` fp32 ulps of a bf16 rounding midpoint."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    exponent = np.frexp(ax)[1] - 1  # ax in [2^e, 2^(e+1))
    spacing = np.ldexp(1.0, exponent - 7)  # bf16's spacing there (8 significant bits)
    midpoint = (np.floor(ax / spacing) + 0.5) * spacing
    return np.abs(ax - midpoint) <= ulps * np.ldexp(1.0, exponent - 23)


def torch_steps(q, k, v, scale):
    qt, kt, vt = (torch.from_numpy(a).to(torch.bfloat16) for a in (q, k, v))
    S = qt @ kt.transpose(-1, -2)
    s = S * scale
    P = torch.softmax(s, dim=-1)
    Y = P @ vt
    return [t.to(torch.float64).numpy() for t in (S, s, P, Y)]


@pytest.mark.parametrize("d", [8, 64])
def test_sdpa_math_bf16_equals_torch_bf16_math_path(d):
    rng = np.random.default_rng(11 + d)
    heads, n = 2, 160
    q, k, v = (bf16(rng.standard_normal((heads, n, d)) * s) for s in (1.5, 1.5, 1.0))
    scale = 1.0 / np.sqrt(d)
    S_t, s_t, P_t, Y_t = torch_steps(q, k, v, scale)

    y, _ = satalab.attention(q, k, v, method="exact", precision="fp32", causal=False, recipe="sdpa-math-bf16")

    # Step 1: S = q k^T rounded to bf16; torch's fp32 accumulation differs only at near-ties of the exact dot.
    exact_dot = np.einsum("hid,hjd->hij", q, k)
    S_e = bf16(exact_dot)
    s_tie = (S_t != S_e)
    assert np.all(near_bf16_tie(exact_dot[s_tie], ulps=4 * d)), "an S difference that is not a near-tie"
    assert np.all(np.abs(S_t - S_e)[s_tie] <= np.abs(S_e[s_tie]) * 2.0**-7)  # one bf16 ulp
    # Step 2: the scale is cast to bf16, the product rounded to bf16 (exactly, on torch's own S).
    assert np.array_equal(s_t, bf16(f32(S_t * bf16(scale))))
    # Step 3: softmax in fp32 rounded to bf16: from torch's own s, the fp32 value differs only at near-ties.
    m = s_t.max(axis=-1, keepdims=True)
    e = f32(np.exp(f32(s_t - m).astype(np.float64)))
    total = np.cumsum(e, axis=-1, dtype=np.float32)[..., -1:]  # sequential fp32 sum
    p32 = (e / total).astype(np.float64)
    P_e = bf16(p32)
    p_tie = P_t != P_e
    assert np.all(near_bf16_tie(p32[p_tie])), "a P difference that is not a near-tie"
    # Step 4: y = P v rounded to bf16, on torch's own P.
    exact_y = np.einsum("hij,hjd->hid", P_t, v)
    y_tie = Y_t != bf16(exact_y)
    assert np.all(near_bf16_tie(exact_y[y_tie], ulps=4 * n)), "a y difference that is not a near-tie"

    # satalab against torch: rows without a near-tie anywhere are identical bit for bit.
    row_tie = s_tie.any(axis=-1) | p_tie.any(axis=-1) | y_tie.any(axis=-1)
    differs = (y != Y_t).any(axis=-1)
    assert not np.any(differs & ~row_tie), "a row differs from torch without a near-tie"
    # Where they differ, by about a bf16 ulp of the terms: a P or S one ulp apart moves y by that much.
    assert np.all(np.abs(y - Y_t) <= 2.0**-6 * np.einsum("hij,hjd->hid", P_t, np.abs(v)))
    identical = np.mean(y == Y_t)
    assert identical >= 0.98, identical


def test_sdpa_math_bf16_is_not_flash2_bf16():
    """The materialised path and the flash kernel round different values: they must differ."""
    rng = np.random.default_rng(3)
    q, k, v = (bf16(rng.standard_normal((1, 200, 16))) for _ in range(3))
    a, _ = satalab.attention(q, k, v, method="exact", causal=False, recipe="sdpa-math-bf16")
    b, _ = satalab.attention(q, k, v, method="exact", causal=False, recipe="flash2-bf16")
    assert np.mean(a != b) > 0.1


def test_bad_recipe_input_is_one_line_naming_the_value(satalab_binary):
    from conftest import run_cli

    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 8, 4)) for _ in range(3))
    cases = [
        (dict(recipe="flash4"), ["--recipe", "flash4"], "unknown recipe 'flash4' (allowed: none, flash2-bf16"),
        (dict(recipe="flash2-bf16", tile_cols=0), ["--recipe", "flash2-bf16", "--tile-cols", "0"],
         "0 is invalid (must be >= 1; a tile larger than the sequence is one tile"),
        (dict(recipe="flash2-bf16", method="sata"), ["--recipe", "flash2-bf16", "--method", "sata"],
         "applies only to"),
        (dict(recipe="flash2-bf16", precision="bf16-acc32"), ["--recipe", "flash2-bf16", "--precision", "bf16-acc32"],
         "must be fp32 (got bf16-acc32)"),
    ]
    for kwargs, flags, needle in cases:
        kwargs.setdefault("method", "exact")
        with pytest.raises(ValueError) as excinfo:
            satalab.attention(q, k, v, **kwargs)
        assert needle in str(excinfo.value) and "\n" not in str(excinfo.value)
        result = run_cli(satalab_binary, "run", "--n-tokens", 8, "--d-key", 4,
                         *(["--method", "exact"] if "--method" not in flags else []), *flags, check=False)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr
    # d_key not a power of two for the Hadamard transform, before any work.
    result = run_cli(satalab_binary, "run", "--method", "exact", "--recipe", "flash3-fp8-hadamard", "--d-key", 12,
                     "--n-tokens", 8, check=False)
    assert result.returncode == 2 and "d_key a power of two" in result.stderr
    assert "computing" not in result.stderr


def test_tiles_larger_than_the_sequence_are_one_tile():
    """Bc >= n: one key tile (no rescale) and one block scale per head, the same as Bc = n exactly."""
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal((2, 40, 8)) for _ in range(3))
    for recipe in ("flash2-bf16", "flash3-fp8", "sage-int8"):
        a, _ = satalab.attention(q, k, v, method="exact", recipe=recipe, tile_rows=40, tile_cols=40)
        b, _ = satalab.attention(q, k, v, method="exact", recipe=recipe, tile_rows=4096, tile_cols=100000)
        assert np.array_equal(a, b), recipe
