"""Shared fixtures of the Python module's tests.

Run by ctest (tests/python/CMakeLists.txt) with PYTHONPATH pointing at the
build tree's python/ folder and SATALAB_BINARY at the `satalab` CLI, under
Debian's /usr/bin/python3. Every comparison is against an independent
computation (numpy in float64, an exhaustive format decoder) or against the
CLI on the same inputs.
"""

import os
import subprocess

import h5py
import numpy as np
import pytest

import satalab  # noqa: F401  (fails early if PYTHONPATH is wrong)


@pytest.fixture(scope="session")
def satalab_binary():
    path = os.environ.get("SATALAB_BINARY")
    if not path or not os.path.exists(path):
        pytest.fail("SATALAB_BINARY must name the satalab CLI (ctest sets it)")
    return path


@pytest.fixture(scope="session")
def source_dir():
    return os.environ.get("SATALAB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run_cli(binary, *args, check=True):
    """Runs `satalab ARGS`; returns the CompletedProcess (text)."""
    result = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"satalab {' '.join(map(str, args))} exited {result.returncode}: {result.stderr}")
    return result


def write_qkv(path, q, k, v):
    """An input file for `satalab run --input` (datasets q, k, v [heads, n, d])."""
    with h5py.File(path, "w") as f:
        for name, a in (("q", q), ("k", k), ("v", v)):
            f.create_dataset(name, data=a)


def read_saved(path):
    with h5py.File(path, "r") as f:
        return f["y"][()], f["z"][()], f["y_truth"][()], dict(f.attrs)


def random_qkv(seed, heads, n, d_key, d_value=None, scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    d_value = d_value or d_key
    q = (scale * rng.standard_normal((heads, n, d_key))).astype(dtype)
    k = (scale * rng.standard_normal((heads, n, d_key))).astype(dtype)
    v = rng.standard_normal((heads, n, d_value)).astype(dtype)
    return q, k, v


def same_bits(a, b):
    """Equal shapes and identical float64 bit patterns (NaN payloads and signed zeros included)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))
