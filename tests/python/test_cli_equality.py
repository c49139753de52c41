"""The module and the CLI give the same numbers, bit for bit, on the same inputs."""

import math

import numpy as np
import pytest

import satalab
from conftest import random_qkv, read_saved, run_cli, same_bits, write_qkv

METHODS = ["sata", "taylor-quadratic", "exact"]
PRECISIONS = ["fp64", "fp32", "fp16-acc32", "mp128"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    q, k, v = random_qkv(20, heads=3, n=40, d_key=4, d_value=3)
    path = tmp_path_factory.mktemp("cli") / "qkv.h5"
    write_qkv(path, q, k, v)
    return q, k, v, path


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("method", METHODS)
def test_attention_equals_satalab_run_save(satalab_binary, inputs, tmp_path, method, precision):
    q, k, v, path = inputs
    out = tmp_path / "out.h5"
    run_cli(satalab_binary, "run", "--input", path, "--method", method, "--precision", precision,
            "--taylor-terms", 3, "--save", out)
    y_cli, z_cli, y_truth_cli, attrs = read_saved(out)
    y, z = satalab.attention(q, k, v, method=method, taylor_terms=3, precision=precision)
    assert same_bits(y, y_cli), f"{method} at {precision}: max |diff| {np.abs(y - y_cli).max()}"
    assert same_bits(z, z_cli)
    truth = attrs["truth"].split("@")[1]
    y_truth, _ = satalab.attention(q, k, v, method="exact", precision=truth)
    assert same_bits(y_truth, y_truth_cli)


KV_SCHEMES = ["none", "fp16", "bf16-head", "e4m3", "e5m2", "int8", "int4-g8", "int2-g8-r5"]


@pytest.mark.parametrize("precision", ["fp32", "fp16-acc32"])
@pytest.mark.parametrize("scheme", KV_SCHEMES)
def test_exact_kvquant_equals_satalab_run_save(satalab_binary, inputs, tmp_path, scheme, precision):
    q, k, v, path = inputs
    out = tmp_path / "kv.h5"
    run_cli(satalab_binary, "run", "--input", path, "--method", "exact-kvquant", "--kv-quant", scheme,
            "--precision", precision, "--save", out)
    y_cli, z_cli, _, _ = read_saved(out)
    y, z = satalab.attention(q, k, v, method="exact-kvquant", kv_quant=scheme, precision=precision)
    assert same_bits(y, y_cli), f"{scheme} at {precision}: max |diff| {np.abs(y - y_cli).max()}"
    assert same_bits(z, z_cli)
    d = satalab.decompose(q, k, v, method="exact-kvquant", kv_quant=scheme, precision=precision)
    assert same_bits(d["y"], y_cli)
    if scheme not in ("none", "fp16") or precision == "fp32":
        # A quantized cache changes the output; "none" at fp32 and fp16 at
        # fp16-acc32 (the cache already in fp16) may coincide with exact.
        exact, _ = satalab.attention(q, k, v, method="exact", precision=precision)
        assert (scheme == "none") == same_bits(y, exact), scheme


def test_kv_quant_errors_are_the_cli_messages(inputs):
    q, k, v, _ = inputs
    with pytest.raises(ValueError, match="kv_quant 'int8' applies only to method exact-kvquant"):
        satalab.attention(q, k, v, method="sata", kv_quant="int8")
    with pytest.raises(ValueError, match="int9"):
        satalab.attention(q, k, v, method="exact-kvquant", kv_quant="int9")


@pytest.mark.parametrize("method", METHODS)
def test_options_map_to_the_cli_flags(satalab_binary, inputs, tmp_path, method):
    # softmax_scale 0.5 is --softmax-denominator 2; causal=False is --non-causal.
    q, k, v, path = inputs
    for placement in ("paper", "prescaled"):
        out = tmp_path / f"{placement}.h5"
        run_cli(satalab_binary, "run", "--input", path, "--method", method, "--precision", "fp16-acc32",
                "--taylor-terms", 4, "--non-causal", "--softmax-denominator", 2, "--placement", placement,
                "--save", out)
        y_cli, z_cli, _, _ = read_saved(out)
        y, z = satalab.attention(q, k, v, method=method, taylor_terms=4, precision="fp16-acc32", causal=False,
                                 softmax_scale=0.5, coefficient_placement=placement)
        assert same_bits(y, y_cli) and same_bits(z, z_cli)


def test_chunk_maps_to_the_cli_flag(satalab_binary, inputs, tmp_path):
    q, k, v, path = inputs
    out = tmp_path / "chunk.h5"
    run_cli(satalab_binary, "run", "--input", path, "--precision", "fp32", "--chunk", 7, "--save", out)
    y_cli, z_cli, _, _ = read_saved(out)
    y, z = satalab.attention(q, k, v, precision="fp32", chunk=7)
    assert same_bits(y, y_cli) and same_bits(z, z_cli)
    y64, _ = satalab.attention(q, k, v, precision="fp32")  # chunk 64: different sums, same mathematics
    assert not same_bits(y, y64) and np.allclose(y, y64, rtol=1e-4, atol=1e-5)


def test_float32_input_file_and_float32_arrays_agree(satalab_binary, tmp_path):
    q, k, v = random_qkv(21, heads=2, n=24, d_key=4, dtype=np.float32)
    path = tmp_path / "qkv32.h5"
    write_qkv(path, q, k, v)
    out = tmp_path / "out.h5"
    run_cli(satalab_binary, "run", "--input", path, "--precision", "fp16-acc32", "--save", out)
    y_cli, z_cli, _, _ = read_saved(out)
    y, z = satalab.attention(q, k, v, precision="fp16-acc32")
    assert same_bits(y, y_cli) and same_bits(z, z_cli)


def test_gaussian_inputs_are_the_cli_generated_inputs(satalab_binary, tmp_path):
    out = tmp_path / "gen.h5"
    run_cli(satalab_binary, "run", "--heads", 2, "--n-tokens", 32, "--d-key", 4, "--d-value", 6, "--scale", 1.5,
            "--seed", 7, "--precision", "fp32", "--save", out)
    y_cli, z_cli, _, _ = read_saved(out)
    q, k, v = satalab.gaussian_inputs(2, 32, 4, d_value=6, scale=1.5, seed=7)
    assert q.shape == (2, 32, 4) and v.shape == (2, 32, 6)
    y, z = satalab.attention(q, k, v, precision="fp32")
    assert same_bits(y, y_cli) and same_bits(z, z_cli)


SWEEP = """
name = "python-decompose"
method = ["sata", "taylor-quadratic", "exact"]
taylor_terms = [3, 4]
d_key = 4
d_value = 5
heads = 2
n_tokens = 48
scale = [1.0, 2.0]
precision = ["fp32", "fp16-acc32"]
truth = "auto"
causal = true
workload = "gaussian"
seed = 3
"""

COMPONENTS = {"total": "", "truncation": "trunc_", "rounding": "round_", "baseline": "baseline_"}
STATS = [f"{kind}_err_{q}" for kind in ("abs", "rel", "normwise_rel") for q in ("median", "p05", "p95", "p99", "max")]


@pytest.fixture(scope="module")
def sweep_file(satalab_binary, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    config = folder / "grid.toml"
    config.write_text(SWEEP)
    out = folder / "results.h5"
    run_cli(satalab_binary, "sweep", config, "--out", out, "--save-outputs")
    return out


def equal_or_both_nan(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_decompose_equals_the_sweep_columns_bit_for_bit(sweep_file):
    table = satalab.read_results(sweep_file)
    # sata and taylor-quadratic: 2 P x 2 scales x 2 precisions = 16; exact ignores P: 4.
    assert len(table) == 20 and (table.status == "ok").all()
    for _, row in table.iterrows():
        q, k, v = satalab.gaussian_inputs(row.heads, row.n_tokens, row.d_key, d_value=row.d_value, scale=row.scale,
                                          seed=row.seed)
        d = satalab.decompose(q, k, v, method=row.method, taylor_terms=row.taylor_terms, precision=row.precision,
                              truth=row.truth)
        assert d["truth"] == row.truth_used
        for component, prefix in COMPONENTS.items():
            present = component == "total" or bool(row[f"has_{component}"])
            assert (d[component] is not None) == present, (row.point_id, component)
            if not present:
                continue
            for stat in STATS + ["elements", "rel_undefined_count", "nonfinite_count"]:
                assert equal_or_both_nan(d[component][stat], row[prefix + stat]), (row.point_id, prefix + stat)
        for stat, value in d["normalisers"].items():
            assert equal_or_both_nan(value, row[stat]), (row.point_id, stat)


def test_read_point_gives_the_arrays_decompose_computes(sweep_file):
    table = satalab.read_results(sweep_file)
    row = table[(table.method == "sata") & (table.precision == "fp16-acc32")].iloc[0]
    point = satalab.read_point(sweep_file, int(row.point_id))
    q, k, v = satalab.gaussian_inputs(row.heads, row.n_tokens, row.d_key, d_value=row.d_value, scale=row.scale,
                                      seed=row.seed)
    d = satalab.decompose(q, k, v, method="sata", taylor_terms=row.taylor_terms, precision="fp16-acc32")
    for component in COMPONENTS:
        for name in ("abs_hist", "rel_hist"):
            assert np.array_equal(point[component][name], d[component][name])
        for name, values in d[component]["position"].items():
            assert same_bits(point[component]["position"][name], values), (component, name)
    assert same_bits(point["y"], d["y"]) and same_bits(point["y_truth"], d["y_truth"]) and same_bits(point["z"], d["z"])
    assert point["status"] == "ok" and point["truth_used"] == "fp64"


def test_read_results_matches_an_independent_h5py_read(sweep_file):
    import h5py

    table = satalab.read_results(sweep_file)
    with h5py.File(sweep_file, "r") as f:
        raw = f["points"][()]
        assert list(table.columns) == list(raw.dtype.names)
        assert same_bits(table.abs_err_median.to_numpy(), raw["abs_err_median"])
        assert list(table.method) == [m.decode() for m in raw["method"]]
        assert table.attrs["config_text"] == f.attrs["config_text"]
    assert table.attrs["schema_version"] == satalab.RESULTS_SCHEMA_VERSION
    assert table.attrs["total_points"] == 20


def test_decompose_of_exact_has_no_truncation_and_baseline_equals_total():
    q, k, v = random_qkv(22, heads=1, n=30, d_key=4)
    d = satalab.decompose(q, k, v, method="exact", precision="bf16")
    assert d["truncation"] is None and d["rounding"] is None
    assert d["baseline"]["abs_err_max"] == d["total"]["abs_err_max"]
    assert d["truth"] == "fp64"


@pytest.mark.parametrize("n_tokens,d_key,chunk", [(7, 4, 3), (65, 5, 64), (70, 5, 3), (130, 4, 64)])
@pytest.mark.parametrize("precision", ["fp64", "fp32"])
def test_partial_chunks_and_small_products_equal_the_cli(satalab_binary, tmp_path, n_tokens, d_key, chunk, precision):
    # Shapes whose last chunk makes Eigen products small: these once depended
    # on where the operands sat in memory, so the CLI and the module differed.
    q, k, v = random_qkv(n_tokens * 10 + d_key, heads=1, n=n_tokens, d_key=d_key, d_value=d_key - 1)
    path, out = tmp_path / "in.h5", tmp_path / "out.h5"
    write_qkv(path, q, k, v)
    run_cli(satalab_binary, "run", "--input", path, "--precision", precision, "--chunk", chunk, "-P", 3,
            "--save", out)
    y_cli, z_cli, _, _ = read_saved(out)
    y, z = satalab.attention(q, k, v, precision=precision, chunk=chunk, taylor_terms=3)
    assert same_bits(y, y_cli) and same_bits(z, z_cli)
