"""SATA's state accumulation modes from Python: the state_accumulation and
state_block arguments of satalab.attention and satalab.decompose reach the
state (a closed form: the bf16 token count), and bad input is refused."""

import numpy as np
import pytest

import satalab
from conftest import random_qkv


def test_fp64_state_counts_the_tokens_a_plain_bf16_state_saturates_at_256():
    # The degree-0 normaliser is the token count n. A bf16 running sum (8
    # significand bits) stops at 2^8 = 256 (256 + 1 rounds to even, 256); the
    # fp64 state counts exactly and reads n = 1024 (a bf16 number). With
    # logits near 0 (scale 0.05) the higher degrees add about 0.1 to z.
    n = 1024
    q, k, v = random_qkv(3, heads=1, n=n, d_key=4, scale=0.05)
    kw = dict(method="sata", taylor_terms=2, precision="bf16", causal=False)
    _, z_plain = satalab.attention(q, k, v, **kw)
    _, z_fp64 = satalab.attention(q, k, v, state_accumulation="fp64", **kw)
    assert np.all(np.abs(z_plain - 256) <= 8)
    assert np.all(np.abs(z_fp64 - n) <= 0.03 * n)
    # decompose passes them too: the fp64 state's error is the smaller.
    plain = satalab.decompose(q, k, v, **kw)
    fp64 = satalab.decompose(q, k, v, state_accumulation="fp64", **kw)
    assert fp64["total"]["rel_err_median"] < plain["total"]["rel_err_median"] / 3
    np.testing.assert_array_equal(fp64["z"], z_fp64)
    # blocked with blocks of 128 tokens: each block counts exactly (128 < 256)
    # and the closed state holds multiples of 128 up to 1024, all bf16 numbers.
    _, z_blocked = satalab.attention(q, k, v, state_accumulation="blocked", state_block=128, **kw)
    assert np.all(np.abs(z_blocked - n) <= 0.03 * n)


def test_bad_state_accumulation_is_refused():
    q, k, v = random_qkv(4, heads=1, n=8, d_key=2)
    with pytest.raises(ValueError, match="'kahan'"):
        satalab.attention(q, k, v, state_accumulation="kahan")
    with pytest.raises(ValueError, match="applies only to method sata"):
        satalab.attention(q, k, v, method="exact", state_accumulation="fp64")
    with pytest.raises(ValueError, match="state_block"):
        satalab.attention(q, k, v, state_accumulation="blocked", state_block=0)
