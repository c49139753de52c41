"""satalab.round_to against independent rounding: numpy's float16 and float32
conversions, and an exhaustive decoder of every bit pattern of bf16 and the fp8
formats with round-to-nearest-even done by search over the decoded values."""

import numpy as np
import pytest

import satalab


def test_every_fp16_value_and_midpoint_rounds_as_numpy_float16():
    patterns = np.arange(1 << 16, dtype=np.uint16)
    values = patterns.view(np.float16).astype(np.float64)
    finite = np.sort(np.unique(values[np.isfinite(values)]))
    midpoints = (finite[:-1] + finite[1:]) / 2  # exact in float64
    points = np.concatenate([values, midpoints, np.nextafter(midpoints, np.inf), np.nextafter(midpoints, -np.inf),
                             [65519.99, 65520.0, 65520.01, 1e6, -65520.0, 2.0 ** -25, 2.0 ** -25 * 1.000001]])
    with np.errstate(over="ignore"):
        expected = points.astype(np.float16).astype(np.float64)
    got = satalab.round_to(points, "fp16")
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{(~same).sum()} differ, first at {points[~same][:5]}"
    # Signed zeros: -0 stays -0, and tiny negatives round to -0.
    assert np.signbit(satalab.round_to(np.array([-0.0, -1e-30]), "fp16")).all()


def test_fp32_rounding_agrees_with_numpy_on_random_doubles():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200_000) * np.exp2(rng.integers(-160, 130, 200_000))
    with np.errstate(over="ignore"):
        expected = x.astype(np.float32).astype(np.float64)
    assert np.array_equal(satalab.round_to(x, "fp32"), expected)


def test_mp24_is_fp32_without_its_exponent_limits():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(50_000) * np.exp2(rng.integers(-100, 100, 50_000))  # fp32's normal range
    assert np.array_equal(satalab.round_to(x, "mp24"), x.astype(np.float32).astype(np.float64))
    assert satalab.round_to(2.0 ** -200 * 3, "mp24") == 2.0 ** -200 * 3  # no underflow in MPFR's range


def decode(fmt, pattern, bits):
    """Value of a bit pattern of a small binary format (sign, exponent, mantissa), from its parameters."""
    info = satalab.format_info(fmt)
    mantissa_bits = info["precision_bits"] - 1
    exponent_bits = bits - 1 - mantissa_bits
    sign = -1.0 if pattern >> (bits - 1) else 1.0
    exponent = (pattern >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = pattern & ((1 << mantissa_bits) - 1)
    bias = 1 - info["emin"]
    if exponent == 0:
        return sign * mantissa * 2.0 ** (info["emin"] - mantissa_bits)
    value = sign * (1 + mantissa / 2 ** mantissa_bits) * 2.0 ** (exponent - bias)
    if info["overflow"] == "infinity" and exponent == (1 << exponent_bits) - 1:
        return sign * np.inf if mantissa == 0 else np.nan
    if abs(value) > info["max_finite"]:
        return np.nan  # e4m3 "fn": only S.1111.111 is NaN, and there is no infinity
    return value


FORMATS = {"bf16": 16, "e4m3": 8, "e4m3sat": 8, "e5m2": 8}


def grid(fmt):
    """Every non-negative finite value of the format, ascending; index parity = significand parity."""
    bits = FORMATS[fmt]
    values = [decode(fmt, p, bits) for p in range(1 << (bits - 1))]
    finite = np.array([x for x in values if np.isfinite(x)])
    assert np.all(np.diff(finite) > 0)
    return finite


def nearest_even(x, finite, fmt):
    """Round-to-nearest-even of x by search over the grid, with the format's overflow rule."""
    info = satalab.format_info(fmt)
    if np.isnan(x):
        return np.nan
    sign, a = np.copysign(1.0, x), abs(x)
    top = finite[-1]
    # One step past the largest finite value on the unbounded grid: where overflow starts.
    beyond = top + (top - finite[-2])
    extended = np.append(finite, beyond)
    i = np.searchsorted(extended, a)
    if i == 0:
        result = extended[0]
    elif i == len(extended):
        result = np.inf
    else:
        lo, hi = extended[i - 1], extended[i]
        if a == hi:
            result = hi
        elif a - lo < hi - a:
            result = lo
        elif a - lo > hi - a:
            result = hi
        else:
            result = lo if (i - 1) % 2 == 0 else hi
    if result > top:
        result = {"infinity": np.inf, "nan": np.nan, "saturate": top}[info["overflow"]]
    return sign * result


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_value_and_midpoint_of_the_format_rounds_to_nearest_even(fmt):
    finite = grid(fmt)
    midpoints = (finite[:-1] + finite[1:]) / 2
    top = finite[-1]
    beyond = top + (top - finite[-2])
    specials = [top, (top + beyond) / 2, np.nextafter((top + beyond) / 2, 0), np.nextafter((top + beyond) / 2, np.inf),
                beyond, 2 * beyond, 1e300, finite[1] / 2, np.nextafter(finite[1] / 2, 1), finite[1] / 4]
    positive = np.concatenate([finite, midpoints, np.nextafter(midpoints, 0), np.nextafter(midpoints, np.inf),
                               specials])
    points = np.concatenate([positive, -positive])
    got = satalab.round_to(points, fmt)
    expected = np.array([nearest_even(x, finite, fmt) for x in points])
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{fmt}: {(~same).sum()} differ, e.g. x={points[~same][:4]} got {got[~same][:4]}"
    # Every decoded bit pattern is a fixed point.
    assert np.array_equal(satalab.round_to(finite, fmt), finite)


def test_infinities_and_nan_follow_the_overflow_rule():
    special = np.array([np.inf, -np.inf, np.nan])
    for fmt in ("fp16", "bf16", "e5m2"):
        got = satalab.round_to(special, fmt)
        assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2])
    assert np.isnan(satalab.round_to(special, "e4m3")).all()  # OCP e4m3 "fn": no infinity
    assert list(satalab.round_to(special[:2], "e4m3sat")) == [448.0, -448.0]  # OCP saturating conversion


def test_round_to_keeps_shape_and_accepts_scalars_and_strided_arrays():
    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)[:, ::-1, ::2]
    got = satalab.round_to(x, "e5m2")
    assert got.shape == x.shape
    assert np.array_equal(got, satalab.round_to(np.ascontiguousarray(x), "e5m2"))
    assert satalab.round_to(1.0 + 2.0 ** -11, "fp16") == 1.0  # tie to even
    assert satalab.round_to(np.float32(1.0 + 2.0 ** -10), "fp16") == 1.0 + 2.0 ** -10
