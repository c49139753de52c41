"""satalab.SataState: the decode loop from Python, against one-shot SATA and numpy."""

import h5py
import numpy as np
import pytest

import satalab
from conftest import random_qkv, same_bits
from reference import taylor_attention

PRECISIONS = ["fp64", "fp32", "fp16-acc32", "fp16", "bf16", "mp128"]


def agree(a, b, precision):
    """Bit for bit in fp64 and mp; else within the policy's rounding: the
    decode step and the one-shot prefill sum in different (blocked) orders."""
    if precision in ("fp64", "mp128"):
        return same_bits(a, b)
    rtol = {"fp32": 1e-5, "fp16-acc32": 3e-3}.get(precision, 3e-2)
    return np.allclose(a, b, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_state_fed_token_by_token_equals_one_shot_causal_sata(precision):
    q, k, v = random_qkv(30, heads=2, n=40, d_key=4, d_value=3)
    y, z = satalab.attention(q, k, v, method="sata", taylor_terms=4, precision=precision, chunk=1)
    for h in range(2):
        state = satalab.SataState(4, 3, taylor_terms=4, precision=precision, chunk=1)
        for i in range(40):
            y_i, z_i = state.prefill(q[h, i], k[h, i], v[h, i])
            assert agree(y_i, y[h, i], precision) and agree(z_i, z[h, i], precision), (precision, h, i)
        assert state.tokens == 40


@pytest.mark.parametrize("precision", ["fp64", "fp32", "fp16-acc32", "fp16"])
def test_prefill_in_pieces_of_whole_chunks_equals_one_shot(precision):
    q, k, v = random_qkv(31, heads=1, n=96, d_key=5, d_value=4)
    y, z = satalab.attention(q, k, v, taylor_terms=3, precision=precision, chunk=8)
    state = satalab.SataState(5, 4, taylor_terms=3, precision=precision, chunk=8)
    pieces = [(0, 16), (16, 24), (24, 56), (56, 96)]
    outputs = [state.prefill(q[0, a:b], k[0, a:b], v[0, a:b]) for a, b in pieces]
    assert agree(np.concatenate([o[0] for o in outputs]), y[0], precision)
    assert agree(np.concatenate([o[1] for o in outputs]), z[0], precision)


@pytest.mark.parametrize("precision", ["fp64", "mp128"])
def test_append_then_query_is_causal_taylor_attention(precision):
    # The decode step: y_i from the state holding tokens 0..i. Mathematically
    # causal Taylor attention; in fp64 it agrees with one-shot SATA and numpy
    # to rounding, in mp128 (rounded to float64) to the last bit or so.
    q, k, v = random_qkv(32, heads=1, n=50, d_key=4, d_value=3)
    state = satalab.SataState(4, 3, taylor_terms=4, precision=precision)
    ys, zs = [], []
    for i in range(50):
        state.append(k[0, i], v[0, i])
        y_i, z_i = state.query(q[0, i])
        ys.append(y_i)
        zs.append(z_i)
    y_ref, z_ref = taylor_attention(q[0], k[0], v[0], 4)
    np.testing.assert_allclose(np.array(ys), y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.array(zs), z_ref, rtol=1e-12)
    y_sata, _ = satalab.attention(q, k, v, taylor_terms=4, precision=precision)
    tolerance = 1e-12 if precision == "fp64" else 4e-16
    np.testing.assert_allclose(np.array(ys), y_sata[0], rtol=tolerance, atol=tolerance)


def test_append_many_equals_append_one_by_one_and_query_many_equals_one_by_one():
    q, k, v = random_qkv(33, heads=1, n=30, d_key=4, d_value=2)
    many = satalab.SataState(4, 2, precision="fp16-acc32")
    many.append(k[0], v[0])
    one = satalab.SataState(4, 2, precision="fp16-acc32")
    for i in range(30):
        one.append(k[0, i], v[0, i])
    assert same_bits(many.values(), one.values())
    y, z = many.query(q[0])
    assert y.shape == (30, 2) and z.shape == (30,)
    for i in range(30):
        y_i, z_i = one.query(q[0, i])
        assert same_bits(y_i, y[i]) and same_bits(z_i, z[i])


def test_query_after_all_tokens_is_non_causal_taylor_attention():
    q, k, v = random_qkv(34, heads=1, n=25, d_key=3, d_value=4)
    state = satalab.SataState(3, 4, taylor_terms=5, precision="fp64", softmax_scale=0.4)
    state.append(k[0], v[0])
    y, z = state.query(q[0])
    y_ref, z_ref = taylor_attention(q[0], k[0], v[0], 5, causal=False, softmax_scale=0.4)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(z, z_ref, rtol=1e-12)
    y_sata, _ = satalab.attention(q, k, v, taylor_terms=5, precision="fp64", causal=False, softmax_scale=0.4)
    np.testing.assert_allclose(y, y_sata[0], rtol=1e-12, atol=1e-14)  # matrix products: other sums
    # Where every operation is rounded in software, non-causal SATA is exactly append-all, then query.
    state16 = satalab.SataState(3, 4, taylor_terms=5, precision="fp16", softmax_scale=0.4)
    state16.append(k[0], v[0])
    y16, z16 = state16.query(q[0])
    y_sata16, z_sata16 = satalab.attention(q, k, v, taylor_terms=5, precision="fp16", causal=False, softmax_scale=0.4)
    assert same_bits(y16, y_sata16[0]) and same_bits(z16, z_sata16[0])


@pytest.mark.parametrize("precision", ["fp32", "fp64", "fp16", "mp128"])
def test_saved_and_loaded_state_continues_with_the_same_numbers(tmp_path, precision):
    q, k, v = random_qkv(35, heads=1, n=40, d_key=4, d_value=3)
    state = satalab.SataState(4, 3, taylor_terms=3, precision=precision, softmax_scale=0.7,
                              coefficient_placement="symmetric", chunk=4)
    state.prefill(q[0, :20], k[0, :20], v[0, :20])
    path = tmp_path / "state.h5"
    state.save(path)
    loaded = satalab.SataState.load(path)
    assert (loaded.tokens, loaded.d_key, loaded.d_value, loaded.taylor_terms, loaded.precision, loaded.chunk,
            loaded.coefficient_placement) == (20, 4, 3, 3, precision, 4, "symmetric")
    assert loaded.softmax_scale == pytest.approx(0.7, rel=1e-15)
    assert same_bits(loaded.values(), state.values())
    a = state.prefill(q[0, 20:], k[0, 20:], v[0, 20:])
    b = loaded.prefill(q[0, 20:], k[0, 20:], v[0, 20:])
    assert same_bits(a[0], b[0]) and same_bits(a[1], b[1])
    with h5py.File(path, "r") as f:  # readable without satalab
        assert f.attrs["format"] == "satalab SATA state" and f["state"].shape == (state.features, 4)
        assert f["state"].dtype == (np.float32 if precision in ("fp32", "fp16") else np.float64)


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    state = satalab.SataState(2, 2)
    path = tmp_path / "s.h5"
    state.save(path)
    with pytest.raises(ValueError, match="already exists"):
        state.save(path)
    state.append(np.ones(2), np.ones(2))
    state.save(path, overwrite=True)
    assert satalab.SataState.load(path).tokens == 1


def test_load_refuses_files_that_are_not_states(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        satalab.SataState.load(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="is not a SATA state"):
        satalab.SataState.load(other)


@pytest.mark.parametrize("d_key,d_value,taylor_terms", [(4, 3, 4), (16, 16, 3), (8, 1, 6)])
def test_sizes_are_the_papers_formulas(d_key, d_value, taylor_terms):
    state = satalab.SataState(d_key, d_value, taylor_terms, precision="fp32")
    cost = satalab.cost(d_key, d_value, taylor_terms, 1)
    assert state.features == cost["features"]
    assert state.state_elements == cost["state_elements"] == state.values().size
    assert state.nbytes == 4 * state.state_elements
    assert satalab.SataState(d_key, d_value, taylor_terms, precision="fp64").nbytes == 8 * state.state_elements


def test_a_state_that_will_not_fit_is_refused_with_its_size():
    with pytest.raises(ValueError, match="bytes"):
        satalab.SataState(64, 64, taylor_terms=9)  # C(72, 8) * 65 elements: petabytes
    limit = satalab.memory_limit()
    try:
        satalab.set_memory_limit(5_000)  # the fp32 state needs 5,940 bytes
        with pytest.raises(satalab.ResourceLimitError, match=r"SATA state for d_key=8, d_value=8, P=4 \(1485 elements\)"):
            satalab.SataState(8, 8, taylor_terms=4)
    finally:
        satalab.set_memory_limit(limit)


def test_bad_tokens_are_refused_with_the_reason():
    state = satalab.SataState(4, 3)
    with pytest.raises(ValueError, match=r"k has shape \[5\] but the state has d_key = 4"):
        state.append(np.zeros(5), np.zeros(3))
    with pytest.raises(ValueError, match=r"v has shape \[2, 4\] but the state has d_value = 3"):
        state.append(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="k has 2 token"):
        state.append(np.zeros((2, 4)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"must be rank 1 \[d\] \(one token\) or rank 2"):
        state.query(np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="v contains NaN at flat index 1"):
        state.append(np.zeros(4), np.array([0.0, np.nan, 0.0]))
    with pytest.raises(TypeError, match="dtype int64"):
        state.query(np.zeros(4, dtype=np.int64))
    assert state.tokens == 0  # nothing was appended
