"""Bad input raises ValueError or TypeError with a one-line message naming the
bad value (the CLI's message where the CLI has the same check) -- never a
crash, never a silent cast."""

import numpy as np
import pytest

import satalab
from conftest import random_qkv, run_cli

Q, K, V = random_qkv(40, heads=2, n=8, d_key=4, d_value=3)


def message(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def cli_error(binary, *args):
    result = run_cli(binary, *args, check=False)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.startswith("satalab: error: ")
    return line[len("satalab: error: "):]


@pytest.mark.parametrize("argument,value", [("method", "softmax"), ("precision", "fp17"),
                                            ("coefficient_placement", "middle")])
def test_unknown_names_raise_the_cli_message(satalab_binary, argument, value):
    with pytest.raises(ValueError) as excinfo:
        satalab.attention(Q, K, V, **{argument: value})
    flag = {"method": "--method", "precision": "--precision", "coefficient_placement": "--placement"}[argument]
    assert message(excinfo) == cli_error(satalab_binary, "run", "--n-tokens", 8, flag, value)


def test_unknown_truth_raises_the_cli_message(satalab_binary):
    with pytest.raises(ValueError) as excinfo:
        satalab.decompose(Q, K, V, truth="fp32")
    assert message(excinfo) == cli_error(satalab_binary, "run", "--n-tokens", 8, "--truth", "fp32")


def test_unknown_format_names_are_listed():
    with pytest.raises(ValueError, match=r"unknown format 'fp7' \(allowed: fp64, fp32, bf16, fp16, e4m3"):
        satalab.round_to(np.ones(3), "fp7")
    with pytest.raises(ValueError, match="unknown format"):
        satalab.format_info("half")
    with pytest.raises(ValueError, match="unknown precision"):
        satalab.precision_info("fp8")


def test_taylor_terms_out_of_range():
    with pytest.raises(ValueError, match=r"^taylor_terms P = 0 is invalid \(must be >= 1\)$"):
        satalab.attention(Q, K, V, taylor_terms=0)
    with pytest.raises(ValueError, match=r"^taylor_terms P = -3 is invalid \(must be >= 1\)$"):
        satalab.SataState(4, 3, taylor_terms=-3)
    with pytest.raises(ValueError, match=r"^taylor_terms P = 22 is invalid for sata \(allowed: 1 \.\. 21\)$"):
        satalab.attention(Q, K, V, taylor_terms=22)
    satalab.attention(Q, K, V, method="taylor-quadratic", taylor_terms=22)  # no basis: any P


def test_wrong_rank():
    with pytest.raises(ValueError) as excinfo:
        satalab.attention(Q[0, 0], K[0, 0], V[0, 0])
    assert message(excinfo) == ("q has rank 1 (shape [4]) but must be rank 2 [n_tokens, d] or rank 3 "
                                "[heads, n_tokens, d]")
    with pytest.raises(ValueError, match=r"q has rank 4 \(shape \[1, 2, 8, 4\]\)"):
        satalab.attention(Q[None], K[None], V[None])
    with pytest.raises(ValueError, match=r"q \[2, 8, 4\], k \[8, 4\] and v \[2, 8, 3\] must have the same rank"):
        satalab.attention(Q, K[0], V)
    with pytest.raises(ValueError, match=r"y has rank 1"):
        satalab.error_metrics(np.ones(3), np.ones(3))


def test_mismatched_shapes():
    with pytest.raises(ValueError) as excinfo:
        satalab.attention(Q, K[:, :7], V)
    assert message(excinfo) == ("shapes disagree: q [2, 8, 4], k [2, 7, 4], v [2, 8, 3] (heads and n_tokens must "
                                "be equal)")
    with pytest.raises(ValueError, match=r"^shapes disagree: q \[2, 8, 4\], k \[2, 8, 4\], v \[1, 8, 3\]"):
        satalab.attention(Q, K, V[:1])
    with pytest.raises(ValueError, match=r"^d_key of q \(4\) and k \(3\) differ$"):
        satalab.attention(Q, K[..., :3], V)
    with pytest.raises(ValueError, match=r"^empty input: q is \[2, 0, 4\]"):
        satalab.attention(Q[:, :0], K[:, :0], V[:, :0])
    with pytest.raises(ValueError, match=r"^y \[2, 8, 3\] and y_truth \[2, 8, 4\] must have the same shape$"):
        satalab.error_metrics(V, Q)


@pytest.mark.parametrize("bad,text", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "-Inf")])
@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_non_finite_inputs_name_the_array_and_the_index(bad, text, which):
    arrays = {"q": Q.copy(), "k": K.copy(), "v": V.copy()}
    arrays[which][1, 2, 0] = bad
    flat = np.ravel_multi_index((1, 2, 0), arrays[which].shape)
    with pytest.raises(ValueError) as excinfo:
        satalab.attention(arrays["q"], arrays["k"], arrays["v"])
    assert message(excinfo) == f"{which} contains {text} at flat index {flat}"


def test_non_finite_index_is_in_logical_order_for_strided_arrays():
    q = np.asfortranarray(Q[0])
    q[3, 1] = np.nan
    with pytest.raises(ValueError, match="^q contains NaN at flat index 13$"):
        satalab.attention(q, K[0], V[0])


@pytest.mark.parametrize("array,dtype_name", [(Q.astype(np.int64), "int64"), (Q.astype(np.complex128), "complex128"),
                                              (Q > 0, "bool"), (Q.astype(np.longdouble), "float128"),
                                              (Q.astype(object), "object")])
def test_other_dtypes_raise_type_error_and_are_never_cast(array, dtype_name):
    with pytest.raises(TypeError) as excinfo:
        satalab.attention(array, K, V)
    assert message(excinfo).startswith(f"q has dtype {dtype_name}; allowed: float16, float32, float64")
    with pytest.raises(TypeError, match=f"x has dtype {dtype_name}"):
        satalab.round_to(array, "fp16")


def test_non_arrays_raise_type_error():
    with pytest.raises(TypeError):
        satalab.attention(None, K, V)
    with pytest.raises(TypeError):
        satalab.attention([["a", "b"]], K, V)
    with pytest.raises(TypeError):
        satalab.attention(Q, K, V, taylor_terms=4.5)
    with pytest.raises(TypeError):
        satalab.attention(Q, K, V, method=3)


@pytest.mark.parametrize("scale", [0.0, -1.0, np.inf, np.nan])
def test_softmax_scale_must_be_finite_and_positive(scale):
    with pytest.raises(ValueError, match=r"softmax_scale = .* is invalid \(must be finite and > 0\)"):
        satalab.attention(Q, K, V, softmax_scale=scale)
    with pytest.raises(ValueError, match="softmax_scale"):
        satalab.SataState(4, 3, softmax_scale=scale)


def test_counts_must_be_positive():
    with pytest.raises(ValueError, match=r"^chunk = 0 is invalid \(must be >= 1\)$"):
        satalab.attention(Q, K, V, chunk=0)
    with pytest.raises(ValueError, match=r"^position_blocks = 0 is invalid"):
        satalab.error_metrics(V, V, position_blocks=0)
    with pytest.raises(ValueError, match=r"^d_key = 0 is invalid \(must be >= 1\)$"):
        satalab.cost(0, 4, 4, 10)
    with pytest.raises(ValueError, match=r"^d_value = -1 is invalid"):
        satalab.SataState(4, -1)
    with pytest.raises(satalab.ResourceLimitError, match="overflow"):
        satalab.cost(100000, 100000, 21, 10)


def test_work_that_will_not_fit_is_refused_with_the_number_of_bytes(satalab_binary, tmp_path):
    from conftest import write_qkv

    limit = satalab.memory_limit()
    try:
        satalab.set_memory_limit(2000)
        with pytest.raises(satalab.ResourceLimitError) as excinfo:
            satalab.attention(Q, K, V)
        assert message(excinfo).startswith("sata attention at fp32 (heads=2, n_tokens=8, d_key=4, d_value=3, P=4) "
                                           "needs ")
        assert "bytes" in message(excinfo) and "more than the memory limit of 2000 bytes" in message(excinfo)
        assert isinstance(excinfo.value, ValueError)
        with pytest.raises(ValueError) as excinfo:
            satalab.decompose(Q, K, V)
    finally:
        satalab.set_memory_limit(limit)
    path = tmp_path / "qkv.h5"
    write_qkv(path, Q, K, V)
    assert message(excinfo) == cli_error(satalab_binary, "run", "--input", path, "--memory-limit", 2000)


def test_results_files_that_do_not_exist_or_are_not_results(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        satalab.read_results(tmp_path / "nothing.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        satalab.read_results(text)
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        satalab.read_point(text, 0)
