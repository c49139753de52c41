"""satalab-lm (issue 16): the byte-level GPT, its captured q, k, v and its
loss with attention replaced through the satalab module, on the tiny
configuration (trained once per run of this file, ~15 s on 2 cores).

Independent references: numpy float64 softmax attention and RoPE written
here; the model's own PyTorch attention vs satalab's C++ kernels; the C++
sweep's bytes_per_sequence and normaliser counts vs the Python memory model
and logit statistics. Skipped only when PyTorch is not installed
(scripts/setup.sh --with-lm installs it; scripts/test.sh does).
"""

import hashlib
import math
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import satalab  # noqa: E402
from satalab.lm import model as lm_model  # noqa: E402
from satalab.lm.capture import record_attention  # noqa: E402
from satalab.lm.checkpoint import load_model  # noqa: E402
from satalab.lm.errors import LmError  # noqa: E402
from satalab.lm.evaluate import Method  # noqa: E402
from satalab.lm.heads import logit_statistics  # noqa: E402

from conftest import run_cli  # noqa: E402

torch.set_num_threads(2)
ENV = dict(os.environ, OMP_WAIT_POLICY="passive")


def lm(*args, check=True):
    """satalab-lm ARGS in a new process (python -m satalab.lm)."""
    result = subprocess.run([sys.executable, "-m", "satalab.lm", *map(str, args)], capture_output=True, text=True,
                            env=ENV)
    if check and result.returncode != 0:
        raise AssertionError(f"satalab-lm {' '.join(map(str, args))} exited {result.returncode}: {result.stderr}")
    return result


def lm_here(*args, check=True):
    """satalab-lm ARGS in this process (satalab.lm.cli.main): the exit code and
    the output as a CompletedProcess, without the start-up of a new interpreter."""
    import contextlib
    import io

    from satalab.lm.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    result = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"satalab-lm {' '.join(map(str, args))} exited {code}: {result.stderr}")
    return result


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def numpy_attention(q, k, v, scale):
    """Causal softmax attention in float64 (numpy), [heads, n, d]."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    s = scale * np.einsum("hid,hjd->hij", q, k)
    n = s.shape[-1]
    s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return np.einsum("hij,hjd->hid", p / p.sum(-1, keepdims=True), v)


def numpy_rope(x, base=10000.0):
    n, d = x.shape[-2], x.shape[-1]
    half = d // 2
    inv = base ** (-np.arange(half) / half)
    angle = np.arange(n)[:, None] * inv[None, :]
    x1, x2 = x[..., :half].astype(np.float64), x[..., half:].astype(np.float64)
    return np.concatenate([x1 * np.cos(angle) - x2 * np.sin(angle), x1 * np.sin(angle) + x2 * np.cos(angle)], -1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model, trained once, and its capture (every layer, per head too)."""
    d = tmp_path_factory.mktemp("lm")
    checkpoint = d / "tiny.pt"
    lm("train", "--preset", "tiny", "--out", checkpoint, "--no-progress")
    capture = d / "capture"
    lm("capture", "--checkpoint", checkpoint, "--out-dir", capture, "--per-head")
    model, payload = load_model(str(checkpoint))
    return {"dir": d, "checkpoint": checkpoint, "capture": capture, "model": model, "payload": payload}


def test_tiny_model_trains_below_the_bigram_baseline(tiny):
    final = tiny["payload"]["final"]
    base = tiny["payload"]["baselines"]
    assert tiny["payload"]["finished"]
    assert base["bigram_bits_per_byte"] < base["unigram_bits_per_byte"]
    assert final["validation_bits_per_byte"] < base["bigram_bits_per_byte"]


def test_captured_qkv_reproduce_the_models_attention_through_satalab_run(tiny, satalab_binary):
    model = tiny["model"]
    for layer in range(model.config.layers):
        path = tiny["capture"] / f"layer{layer}.h5"
        out = tiny["dir"] / f"run{layer}.h5"
        run_cli(satalab_binary, "run", "--method", "exact", "--precision", "fp64", "--input", path, "--save", out,
                "--force")
        with h5py.File(out, "r") as f:
            y_run = f["y"][()]
        with h5py.File(path, "r") as f:
            q, k, v, y_model = f["q"][()], f["k"][()], f["v"][()], f["y"][()]
            q_pre, k_pre = f["q_pre_rope"][()], f["k_pre_rope"][()]
            attrs = dict(f.attrs)
        assert q.dtype == np.float32 and q.shape == (model.config.heads, model.config.context, model.config.head_dim)
        assert attrs["model_hash"] == tiny["payload"]["model_hash"] and attrs["layer"] == layer
        # The model's own float32 attention output, to 1e-6 relative (normwise).
        assert np.linalg.norm(y_run - y_model) <= 1e-6 * np.linalg.norm(y_run)
        # satalab's fp64 exact attention against numpy's, in float64.
        y_numpy = numpy_attention(q, k, v, 1.0 / math.sqrt(model.config.head_dim))
        assert np.max(np.abs(y_run - y_numpy)) <= 1e-12 * np.max(np.abs(y_numpy))
        # Post-RoPE q, k are the rotated pre-RoPE ones.
        np.testing.assert_allclose(q, numpy_rope(q_pre), rtol=0, atol=1e-5 * np.abs(q).max())
        np.testing.assert_allclose(k, numpy_rope(k_pre), rtol=0, atol=1e-5 * np.abs(k).max())
        # Per-head files are slices of the layer file.
        with h5py.File(tiny["capture"] / f"layer{layer}_head1.h5", "r") as f:
            assert np.array_equal(f["q"][()], q[1:2]) and f.attrs["head"] == 1


def test_record_attention_records_every_call_of_the_models_attention_function(tiny):
    model = tiny["model"]
    tokens = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(3))
    original = lm_model.scaled_dot_product_attention
    with torch.no_grad(), record_attention(owner=lm_model) as calls:
        logits = model(tokens)
    assert lm_model.scaled_dot_product_attention is original  # restored
    assert len(calls) == model.config.layers
    for call in calls:
        assert call["q"].shape == (2, model.config.heads, 32, model.config.head_dim)
        assert call["kwargs"]["is_causal"] is True
        for b in range(2):
            y = numpy_attention(call["q"][b].numpy(), call["k"][b].numpy(), call["v"][b].numpy(), call["kwargs"]["scale"])
            np.testing.assert_allclose(call["y"][b].numpy(), y, rtol=0, atol=1e-5 * np.abs(y).max())
    with torch.no_grad():
        assert torch.equal(model(tokens), logits)  # recording changes nothing
    if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):  # PyTorch < 2
        with pytest.raises(LmError, match="PyTorch 2.0"):
            with record_attention():
                pass


def evaluate(tiny, name, methods, replace="all", sequences=16):
    out = tiny["dir"] / f"{name}.csv"
    lm("evaluate", "--checkpoint", tiny["checkpoint"], "--out", out, "--methods", methods, "--replace", replace,
       "--sequences", sequences, "--no-progress", "--force")
    import pandas as pd

    return pd.read_csv(out)


def test_exact_attention_through_satalab_at_fp32_equals_the_models_loss(tiny):
    frame = evaluate(tiny, "exact", "model,exact@fp32", replace="all,each")
    model_bits = frame[frame["method"] == "model"]["bits_per_byte"].item()
    exact = frame[frame["method"] == "exact@fp32"]
    assert len(exact) == 1 + tiny["model"].config.layers
    assert np.all(np.abs(exact["bits_per_byte"] - model_bits) <= 1e-4)
    assert np.all(exact["status"] == "ok")
    # The training run's final validation number is the same computation on more windows.
    assert abs(model_bits - tiny["payload"]["final"]["validation_bits_per_byte"]) < 0.5


def test_sata_at_fp64_approaches_the_exact_loss_as_p_grows(tiny):
    methods = ",".join(["model"] + [f"sata-P{p}@fp64" for p in range(2, 11)])
    frame = evaluate(tiny, "sata", methods)
    model_bits = frame[frame["method"] == "model"]["bits_per_byte"].item()
    gap = {int(r.taylor_terms): abs(r.bits_per_byte - model_bits) for r in frame.itertuples() if r.kind == "sata"}
    assert all(math.isfinite(g) for g in gap.values())
    # The series of odd and of even degree each close in on the exact loss.
    for parity in (2, 3):
        ps = list(range(parity, 11, 2))
        assert all(gap[a] > gap[b] for a, b in zip(ps, ps[1:])), gap
    assert min(gap[9], gap[10]) < 0.5 * min(gap[2], gap[3])


def test_memory_model_and_logit_statistics_match_the_cpp_sweep(tiny, satalab_binary, source_dir):
    """The sweep config over a captured layer: the C++ bytes_per_sequence
    equals the Python memory model, and its count of rows with z <= 0 at
    fp64 equals the count from the Python logit statistics."""
    config = os.path.join(source_dir, "experiments", "configs", "lm_heads.toml")
    c = tiny["model"].config
    out = tiny["dir"] / "heads_layer1.h5"
    run_cli(satalab_binary, "sweep", config, "--out", out, "--force", "--save-outputs",
            "--set", f"input_file={tiny['capture'] / 'layer1.h5'}", "--set", f"heads={c.heads}",
            "--set", f"n_tokens={c.context}", "--set", f"d_key={c.head_dim}",
            "--set", f"softmax_denominator={math.sqrt(c.head_dim)!r}", "--set", "taylor_terms=[2, 3, 4]",
            "--set", 'precision=["fp64", "fp32"]')
    table = satalab.read_results(str(out))
    assert (table["status"] == "ok").all()
    with h5py.File(tiny["capture"] / "layer1.h5", "r") as f:
        q, k = f["q"][()], f["k"][()]
    stats = [logit_statistics(q[h], k[h], 1.0 / math.sqrt(c.head_dim), p_range=(2, 3, 4)) for h in range(c.heads)]
    for r in table.itertuples():
        spec = f"sata-P{r.taylor_terms}@{r.precision}" if r.method == "sata" else f"kv-{r.kv_quant}@{r.precision}"
        assert Method(spec).bytes_per_sequence(c.heads, c.context, c.head_dim, 1) == r.bytes_per_sequence, spec
        if r.method == "sata" and r.precision == "fp64":
            rows = sum(round(s[f"z_le0_P{r.taylor_terms}"] * c.context) for s in stats)
            assert rows == r.normaliser_nonpositive_count
    # satalab-lm heads: per-head errors from the saved outputs.
    result = lm_here("heads", "--checkpoint", tiny["checkpoint"], "--capture-dir", tiny["capture"], "--sweeps", out,
                "--out", tiny["dir"] / "heads.csv", "--figures", tiny["dir"] / "figures", "--force")
    assert "heads of model" in result.stdout
    import pandas as pd

    errors = pd.read_csv(tiny["dir"] / "heads_errors.csv")
    one = errors[(errors.method == "sata") & (errors.precision == "fp32") & (errors.taylor_terms == 4)]
    assert sorted(one["head"]) == list(range(c.heads))
    # A head's error equals satalab.decompose on that head alone.
    with h5py.File(tiny["capture"] / "layer1_head2.h5", "r") as f:
        d = satalab.decompose(f["q"][()], f["k"][()], f["v"][()], method="sata", taylor_terms=4, precision="fp32",
                              truth="fp64")
    assert one[one["head"] == 2]["rel_err_median"].item() == pytest.approx(d["total"]["rel_err_median"], rel=1e-12)
    assert (tiny["dir"] / "figures" / "lm_heads_error_vs_p.png").stat().st_size > 0


def test_training_interrupted_and_resumed_gives_the_same_model(tiny):
    path = tiny["dir"] / "interrupted.pt"
    process = subprocess.Popen([sys.executable, "-m", "satalab.lm", "train", "--preset", "tiny", "--out", str(path),
                                "--no-progress", "--checkpoint-minutes", "0.005"], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    saved = torch.load(path)
    if process.returncode == 0:
        pytest.skip("training finished before the signal arrived")
    assert process.returncode == 128 + signal.SIGTERM, err
    assert not saved["finished"] and saved["step"] < saved["train_config"]["steps"]
    refused = lm_here("train", "--preset", "tiny", "--out", path, check=False)
    assert refused.returncode == 2 and "exists" in refused.stderr
    lm("train", "--preset", "tiny", "--out", path, "--resume", "--no-progress")
    assert torch.load(path)["model_hash"] == tiny["payload"]["model_hash"]


def one_line_exit_2(result):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("satalab-lm: "), result.stderr
    return lines[0]


def test_bad_input_is_one_line_exit_2_and_nothing_is_written(tiny, tmp_path):
    # A missing corpus.
    out = tmp_path / "x.pt"
    line = one_line_exit_2(lm_here("train", "--preset", "tiny", "--out", out, "--corpus", tmp_path / "no-such-dir",
                              check=False))
    assert "corpus" in line and not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line_exit_2(lm_here("train", "--preset", "tiny", "--out", out, "--corpus", empty, check=False))
    assert "no *.py files" in line and not out.exists()
    # A checkpoint of another configuration.
    before = sha(tiny["checkpoint"])
    line = one_line_exit_2(lm_here("train", "--preset", "tiny", "--layers", "3", "--out", tiny["checkpoint"], "--resume",
                              check=False))
    assert "another configuration" in line and sha(tiny["checkpoint"]) == before
    # A capture file of another model.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with h5py.File(tiny["capture"] / "layer0.h5", "r") as src, h5py.File(foreign / "layer0.h5", "w") as dst:
        for key in src:
            dst.create_dataset(key, data=src[key][()])
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        dst.attrs["model_hash"] = "0123456789abcdef"
    line = one_line_exit_2(lm_here("heads", "--checkpoint", tiny["checkpoint"], "--capture-dir", foreign,
                              "--out", tmp_path / "h.csv", check=False))
    assert "is of model 0123456789abcdef" in line and not (tmp_path / "h.csv").exists()
    # A layer index out of range (capture and evaluate), and a head index.
    layers = tiny["model"].config.layers
    line = one_line_exit_2(lm_here("capture", "--checkpoint", tiny["checkpoint"], "--out-dir", tmp_path / "cap",
                              "--layers", layers, check=False))
    assert f"layer {layers} is out of range" in line and not (tmp_path / "cap").exists()
    line = one_line_exit_2(lm_here("evaluate", "--checkpoint", tiny["checkpoint"], "--out", tmp_path / "e.csv",
                              "--replace", "-1", check=False))
    assert "out of range" in line and not (tmp_path / "e.csv").exists()
    # Existing captures are not overwritten.
    before = sha(tiny["capture"] / "layer0.h5")
    line = one_line_exit_2(lm_here("capture", "--checkpoint", tiny["checkpoint"], "--out-dir", tiny["capture"],
                              check=False))
    assert "exists" in line and sha(tiny["capture"] / "layer0.h5") == before
    # Unknown method names are refused with the module's message.
    line = one_line_exit_2(lm_here("evaluate", "--checkpoint", tiny["checkpoint"], "--out", tmp_path / "e.csv",
                              "--methods", "kv-int3@fp32", check=False))
    assert "kv-int3" in line and not (tmp_path / "e.csv").exists()
