"""satalab.attention against independent numpy computations in float64."""

import numpy as np
import pytest

import satalab
from conftest import random_qkv, same_bits
from reference import softmax_attention, taylor_attention


@pytest.mark.parametrize("causal", [True, False])
def test_exact_at_fp64_matches_numpy_softmax_attention(causal):
    q, k, v = random_qkv(1, heads=3, n=50, d_key=8, d_value=5)
    y, z = satalab.attention(q, k, v, method="exact", precision="fp64", causal=causal)
    y_ref, z_ref = softmax_attention(q, k, v, causal=causal)
    assert y.shape == (3, 50, 5) and z.shape == (3, 50)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(z, z_ref, rtol=1e-12)


@pytest.mark.parametrize("method", ["sata", "taylor-quadratic"])
@pytest.mark.parametrize("taylor_terms", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("causal", [True, False])
def test_taylor_methods_at_fp64_match_numpy_truncated_taylor_attention(method, taylor_terms, causal):
    q, k, v = random_qkv(2, heads=2, n=70, d_key=4, d_value=3, scale=0.8)
    y, z = satalab.attention(q, k, v, method=method, taylor_terms=taylor_terms, precision="fp64", causal=causal,
                             chunk=16)
    y_ref, z_ref = taylor_attention(q, k, v, taylor_terms, causal=causal)
    np.testing.assert_allclose(z, z_ref, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("placement", satalab.placements())
def test_every_coefficient_placement_gives_taylor_attention_at_fp64(placement):
    q, k, v = random_qkv(3, heads=1, n=40, d_key=5)
    y, _ = satalab.attention(q, k, v, taylor_terms=4, precision="fp64", coefficient_placement=placement)
    np.testing.assert_allclose(y, taylor_attention(q, k, v, 4)[0], rtol=1e-9, atol=1e-11)


def test_softmax_scale_multiplies_the_dot_product():
    q, k, v = random_qkv(4, heads=2, n=30, d_key=6)
    for method, reference in (("exact", softmax_attention), ("taylor-quadratic", None), ("sata", None)):
        y, _ = satalab.attention(q, k, v, method=method, taylor_terms=5, precision="fp64", softmax_scale=0.3)
        if reference is None:
            y_ref = taylor_attention(q, k, v, 5, softmax_scale=0.3)[0]
        else:
            y_ref = reference(q, k, v, softmax_scale=0.3)[0]
        np.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-11)


def test_default_softmax_scale_is_one_over_sqrt_d_key():
    # d_key = 16: sqrt(16) = 4 and 1/4 are exact, so the two spellings give the same bits.
    q, k, v = random_qkv(5, heads=2, n=40, d_key=16)
    for method in satalab.methods():
        default = satalab.attention(q, k, v, method=method, precision="fp32")
        explicit = satalab.attention(q, k, v, method=method, precision="fp32", softmax_scale=0.25)
        assert same_bits(default[0], explicit[0]) and same_bits(default[1], explicit[1])


def test_rank_two_inputs_are_one_head():
    q, k, v = random_qkv(6, heads=1, n=33, d_key=4)
    y3, z3 = satalab.attention(q, k, v)
    y2, z2 = satalab.attention(q[0], k[0], v[0])
    assert y2.shape == (33, 4) and z2.shape == (33,)
    assert same_bits(y2, y3[0]) and same_bits(z2, z3[0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_narrow_dtypes_are_read_exactly(dtype):
    q, k, v = random_qkv(7, heads=2, n=20, d_key=4, dtype=dtype)
    narrow = satalab.attention(q, k, v, precision="fp64")
    wide = satalab.attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), precision="fp64")
    assert same_bits(narrow[0], wide[0]) and same_bits(narrow[1], wide[1])


def test_any_strides_give_the_same_numbers_as_contiguous_copies():
    rng = np.random.default_rng(8)
    big = rng.standard_normal((4, 80, 12))
    q = big[::2, ::2, :6]            # strided in every axis
    k = big[1::2, ::-2, 6:]          # negative stride
    v = np.asfortranarray(big[:2, :40, 3:9])  # Fortran order
    for method in satalab.methods():
        strided = satalab.attention(q, k, v, method=method, precision="fp32")
        copied = satalab.attention(*(np.ascontiguousarray(a) for a in (q, k, v)), method=method, precision="fp32")
        assert same_bits(strided[0], copied[0]) and same_bits(strided[1], copied[1])


def test_many_heads_computed_in_groups_equal_each_head_alone():
    # More heads than threads: the binding runs groups of heads (for Ctrl-C);
    # each head's numbers must not depend on that.
    q, k, v = random_qkv(9, heads=7, n=90, d_key=4)
    for method in satalab.methods():
        for precision in ("fp32", "fp16", "fp64"):
            y, z = satalab.attention(q, k, v, method=method, precision=precision, chunk=16)
            for h in range(7):
                yh, zh = satalab.attention(q[h], k[h], v[h], method=method, precision=precision, chunk=16)
                assert same_bits(y[h], yh) and same_bits(z[h], zh), (method, precision, h)


def test_lower_precision_moves_sata_away_from_the_fp64_result():
    # A sanity check that the policy is applied: fp16 storage changes the numbers, by about fp16 resolution.
    q, k, v = random_qkv(10, heads=1, n=64, d_key=8)
    y64, _ = satalab.attention(q, k, v, precision="fp64")
    y16, _ = satalab.attention(q, k, v, precision="fp16-acc32")
    difference = np.abs(y64 - y16).max()
    assert 1e-5 < difference < 1e-1


def test_outputs_are_float64_and_writable_numpy_arrays():
    q, k, v = random_qkv(11, heads=1, n=8, d_key=4, dtype=np.float32)
    y, z = satalab.attention(q, k, v)
    assert y.dtype == np.float64 and z.dtype == np.float64
    y[0, 0, 0] = 1.0  # owns its memory


def _fp16_up(x):
    """The smallest float16 value >= x (x >= 0), in float64."""
    r = np.float16(x)
    if float(r) < x:
        r = np.nextafter(r, np.float16(np.inf))
    return float(r)


def test_kv_quant_int8_with_sinks_and_outliers_matches_a_numpy_cache():
    # int8-o0.05-s2: tokens 0, 1 in fp16; per head the ceil(5% of N) largest
    # |entries| of the other tokens exact; the rest int8 per token with an fp16
    # scale >= absmax/127 over the token's non-outliers.
    q, k, v = random_qkv(4, heads=2, n=30, d_key=4, d_value=4)

    def cache(x):
        out = x.copy()
        for h in range(x.shape[0]):
            out[h, :2] = x[h, :2].astype(np.float16)
            rest = x[h, 2:]
            kept = int(np.ceil(0.05 * rest.size))
            order = np.lexsort((np.arange(rest.size), -np.abs(rest).ravel()))[:kept]
            outlier = np.zeros(rest.size, bool)
            outlier[order] = True
            outlier = outlier.reshape(rest.shape)
            for t in range(rest.shape[0]):
                dense = np.where(outlier[t], 0.0, np.abs(rest[t]))
                s = _fp16_up(dense.max() / 127)
                codes = np.clip(np.rint(rest[t] / s), -127, 127)
                out[h, 2 + t] = np.where(outlier[t], rest[t], codes * s)
        return out

    y, _ = satalab.attention(q, k, v, method="exact-kvquant", precision="fp64", kv_quant="int8-o0.05-s2")
    y_ref, _ = softmax_attention(q, cache(k), cache(v))
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    assert not np.allclose(y, softmax_attention(q, k, v)[0], rtol=1e-6)


def test_kv_quant_prerope_needs_rope_theta():
    q, k, v = random_qkv(5, heads=1, n=16, d_key=4)
    with pytest.raises(ValueError, match="int4-g4-prerope.*needs rope_theta"):
        satalab.attention(q, k, v, method="exact-kvquant", kv_quant="int4-g4-prerope")
    y, _ = satalab.attention(q, k, v, method="exact-kvquant", kv_quant="int4-g4-prerope", rope_theta=100.0)
    assert np.isfinite(y).all()
