"""Read-out polynomials from Python: satalab.attention and satalab.SataState
with each family against the polynomial-quadratic oracle (taylor-quadratic
with the same polynomial) and against a numpy evaluation of the family's
weights written out here from docs/architecture.md; bad input refused."""

import math

import numpy as np
import pytest

import satalab
from conftest import random_qkv

FAMILIES = ["taylor-shift", "moment-fit", "chebyshev", "positive"]


def numpy_taylor_shift(q, k, v, P, causal):
    """T_P(s - mean) per query, numpy, float64: the taylor-shift definition."""
    n, d = q.shape
    s = q @ k.T / math.sqrt(d)
    y = np.empty((n, v.shape[1]))
    for i in range(n):
        keys = slice(0, i + 1) if causal else slice(0, n)
        u = s[i, keys] - s[i, keys].mean()
        w = sum(u**p / math.factorial(p) for p in range(P))
        y[i] = w @ v[keys] / w.sum()
    return y


@pytest.mark.parametrize("family", FAMILIES)
def test_sata_equals_its_polynomial_oracle_and_the_state_decode(family):
    q, k, v = random_qkv(7, heads=1, n=24, d_key=3, d_value=2)
    kw = dict(taylor_terms=4, precision="fp64", polynomial=family)
    y, z = satalab.attention(q, k, v, method="sata", chunk=5, **kw)
    y_oracle, _ = satalab.attention(q, k, v, method="taylor-quadratic", **kw)
    y_taylor, _ = satalab.attention(q, k, v, method="taylor-quadratic", taylor_terms=4, precision="fp64")
    np.testing.assert_allclose(y, y_oracle, rtol=1e-11, atol=1e-13)
    assert np.abs(y_taylor - y_oracle).max() > 1e-6  # the family is applied
    state = satalab.SataState(3, 2, taylor_terms=4, precision="fp64", polynomial=family)
    rows = []
    for i in range(24):
        state.append(k[0, i], v[0, i])
        rows.append(state.query(q[0, i])[0])
    np.testing.assert_allclose(np.array(rows).reshape(24, 2), y_oracle[0], rtol=1e-11, atol=1e-13)


def test_taylor_shift_matches_numpy():
    q, k, v = random_qkv(8, heads=1, n=20, d_key=4, d_value=3)
    for causal in (True, False):
        y, _ = satalab.attention(q, k, v, method="sata", taylor_terms=5, precision="fp64", causal=causal,
                                 polynomial="taylor-shift")
        np.testing.assert_allclose(y[0], numpy_taylor_shift(q[0], k[0], v[0], 5, causal), rtol=1e-10, atol=1e-12)


def test_bad_polynomials_are_refused():
    q, k, v = random_qkv(9, heads=1, n=8, d_key=2, d_value=2)
    with pytest.raises(ValueError, match="unknown polynomial 'hermite'"):
        satalab.attention(q, k, v, polynomial="hermite")
    with pytest.raises(ValueError, match="must be >= 3"):
        satalab.attention(q, k, v, taylor_terms=2, polynomial="moment-fit")
    with pytest.raises(ValueError, match="chebyshev_width"):
        satalab.attention(q, k, v, polynomial="chebyshev", chebyshev_width=-1.0)
    with pytest.raises(ValueError, match="applies only to method sata and taylor-quadratic"):
        satalab.attention(q, k, v, method="exact", polynomial="positive")
    with pytest.raises(ValueError, match="P >= 3"):
        satalab.SataState(2, 2, taylor_terms=2, polynomial="chebyshev")


def test_key_centring_reaches_both_methods_and_is_refused_when_unknown():
    q, k, v = random_qkv(10, heads=1, n=20, d_key=3, d_value=2)
    k = k + 1.5  # a key bias, which the centring removes
    kw = dict(taylor_terms=4, precision="fp64", key_centring="first-chunk")
    y, _ = satalab.attention(q, k, v, method="sata", chunk=6, **kw)
    y_oracle, _ = satalab.attention(q, k, v, method="taylor-quadratic", chunk=6, **kw)
    y_plain, _ = satalab.attention(q, k, v, method="taylor-quadratic", taylor_terms=4, precision="fp64")
    np.testing.assert_allclose(y, y_oracle, rtol=1e-11, atol=1e-13)
    assert np.abs(y_plain - y_oracle).max() > 1e-6
    with pytest.raises(ValueError, match="unknown key centring 'mean'"):
        satalab.attention(q, k, v, key_centring="mean")
