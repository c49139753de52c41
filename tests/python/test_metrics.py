"""error_metrics, cost and the name lists against independent computations."""

import math

import numpy as np
import pytest

import satalab

STATS = ("median", "p05", "p95", "p99", "max")
PROBABILITIES = (0.5, 0.05, 0.95, 0.99, 1.0)


def numpy_quantiles(values):
    """Type-7 quantiles (numpy's default linear interpolation), written out so +inf errors stay +inf."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0:
        return [math.nan] * 5
    out = []
    for p in PROBABILITIES:
        h = (x.size - 1) * p
        lo = math.floor(h)
        if h == lo or x[lo + 1] == x[lo]:
            out.append(x[lo])
        else:
            out.append(x[lo] + (h - lo) * (x[lo + 1] - x[lo]))
    return out


def log10_bins(errors):
    """The results file's 254 histogram columns, computed with math.log10 and the bin edges."""
    edges = -20.0 + np.arange(251) * 0.1
    counts = np.zeros(254, dtype=np.uint64)
    for e in errors:
        if not math.isfinite(e):
            counts[253] += 1
        elif e == 0:
            counts[250] += 1
        else:
            lv = math.log10(e)
            if lv < -20:
                counts[251] += 1
            elif lv >= 5:
                counts[252] += 1
            else:
                counts[np.searchsorted(edges, lv, side="right") - 1] += 1
    return counts


@pytest.fixture
def outputs():
    rng = np.random.default_rng(50)
    y_truth = rng.standard_normal((3, 37, 4))
    y = y_truth * (1 + 10.0 ** rng.uniform(-15, 1, y_truth.shape) * rng.choice([-1, 1], y_truth.shape))
    y_truth[0, 5, 1] = 0.0      # relative error undefined here
    y_truth[2, 0, :] = 0.0      # and a whole row: normwise undefined
    y[1, 9, 2] = np.nan         # a non-finite output
    y[1, 10, 0] = y_truth[1, 10, 0]  # an exact zero error
    y_truth[2, 30, 3] = 1e-30
    y[2, 30, 3] = 1e-30 + 1e-45  # an error below the histogram's range
    return y, y_truth


def test_error_metrics_match_numpy(outputs):
    y, y_truth = outputs
    m = satalab.error_metrics(y, y_truth, position_blocks=5)
    finite = np.isfinite(y) & np.isfinite(y_truth)
    abs_err = np.where(finite, np.abs(y - y_truth), np.inf)
    defined = y_truth != 0
    rel_err = np.where(finite, abs_err, np.inf)[defined] / np.abs(y_truth[defined])
    rows = np.linalg.norm(y_truth, axis=-1) != 0
    with np.errstate(invalid="ignore"):
        normwise = np.linalg.norm(y - y_truth, axis=-1)[rows] / np.linalg.norm(y_truth, axis=-1)[rows]
    normwise = np.where(np.isnan(normwise), np.inf, normwise)
    assert m["elements"] == y.size
    assert m["rel_undefined_count"] == (~defined).sum() == 5
    assert m["nonfinite_count"] == 1
    for stem, values in (("abs_err", abs_err.ravel()), ("rel_err", rel_err), ("normwise_rel_err", normwise)):
        for stat, expected in zip(STATS, numpy_quantiles(values)):
            assert m[f"{stem}_{stat}"] == pytest.approx(expected, rel=1e-14), f"{stem}_{stat}"
    assert np.array_equal(m["abs_hist"], log10_bins(abs_err.ravel()))
    assert np.array_equal(m["rel_hist"], log10_bins(rel_err))
    assert m["abs_hist"][250] >= 1 and m["abs_hist"][251] == 1 and m["abs_hist"][253] == 1


def test_position_blocks_split_tokens_over_all_heads(outputs):
    y, y_truth = outputs
    m = satalab.error_metrics(y, y_truth, position_blocks=5)
    position = m["position"]
    # 37 tokens in 5 blocks: 8, 8, 7, 7, 7.
    assert position["first_token"].tolist() == [0, 8, 16, 23, 30]
    assert position["last_token"].tolist() == [7, 15, 22, 29, 36]
    with np.errstate(invalid="ignore"):
        abs_err = np.where(np.isfinite(y), np.abs(y - y_truth), np.inf)
    for b, (first, last) in enumerate(zip(position["first_token"].tolist(), position["last_token"].tolist())):
        block = abs_err[:, first:last + 1, :].ravel()
        for stat, expected in zip(STATS, numpy_quantiles(block)):
            assert position[f"abs_err_{stat}"][b] == pytest.approx(expected, rel=1e-14)


def test_error_metrics_accepts_narrow_dtypes_and_rank_two():
    rng = np.random.default_rng(51)
    y_truth = rng.standard_normal((20, 3)).astype(np.float32)
    y = y_truth + np.float32(1e-3)
    a = satalab.error_metrics(y, y_truth)
    b = satalab.error_metrics(y.astype(np.float64), y_truth.astype(np.float64))
    assert a["abs_err_max"] == b["abs_err_max"] and a["elements"] == 60


def test_hist_bin_edges_are_the_schema_edges():
    assert satalab.HIST_BIN_EDGES.shape == (251,)
    assert np.allclose(satalab.HIST_BIN_EDGES, -20 + 0.1 * np.arange(251), rtol=0, atol=1e-12)


@pytest.mark.parametrize("d_key,d_value,taylor_terms,n_tokens", [(64, 64, 4, 100_000), (8, 8, 2, 1), (16, 4, 6, 4096)])
def test_cost_matches_the_papers_closed_forms(d_key, d_value, taylor_terms, n_tokens):
    c = satalab.cost(d_key, d_value, taylor_terms, n_tokens)
    features = math.comb(d_key + taylor_terms - 1, taylor_terms - 1)
    assert c["features"] == features
    assert c["state_elements"] == (d_value + 1) * features
    m = [math.comb(d_key + p - 1, p) for p in range(taylor_terms)]
    assert c["flops_per_token"] == sum((4 * d_value + 2 * p + 4) * m_p for p, m_p in enumerate(m))
    closed = (4 * d_value + 2 * (taylor_terms * d_key + 1) / (d_key + 1) + 2) * features
    assert c["flops_per_token"] == pytest.approx(closed, rel=1e-12)
    assert c["flops_per_token_closed_form"] == pytest.approx(closed, rel=1e-12)
    assert c["kv_cache_elements"] == n_tokens * (d_key + d_value)
    assert c["conventional_flops_per_token"] == n_tokens * (2 * d_key + 2 * d_value + 3)


def test_paper_numbers_for_d64_p4():
    c = satalab.cost(64, 64, 4, 1)
    assert (c["state_elements"], c["flops_per_token"]) == (3_113_825, 12_738_308)


def test_name_lists_and_infos():
    assert satalab.methods() == ["sata", "taylor-quadratic", "exact", "exact-kvquant"]
    assert {"fp64", "fp32", "bf16", "fp16", "e4m3", "e4m3sat", "e5m2"} <= set(satalab.formats())
    assert {"fp64", "fp32", "fp16-acc32", "bf16-acc32", "e4m3-acc32"} <= set(satalab.precisions())
    assert satalab.placements() == ["paper", "symmetric", "query", "key", "prescaled"]
    fp16 = satalab.format_info("fp16")
    assert (fp16["precision_bits"], fp16["emin"], fp16["emax"], fp16["max_finite"]) == (11, -14, 15, 65504.0)
    assert satalab.format_info("e4m3")["max_finite"] == 448.0
    p = satalab.precision_info("fp16-acc32")
    assert (p["input"], p["compute"], p["accumulate"], p["carrier"]) == ("fp16", "fp16", "fp32", "float32")
    mp = satalab.precision_info("mp256")
    assert mp["carrier"] == "mpfr" and mp["mp_bits"] == 256
