"""Ctrl-C interrupts a long satalab.attention call (between groups of heads)
instead of waiting for it to finish; the GIL is released while computing."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import satalab

SCRIPT = textwrap.dedent("""
    import json, os, signal, threading, time
    import satalab
    # One group of heads (as many as threads), timed, sets the scale.
    q, k, v = satalab.gaussian_inputs(2, 512, 8)
    start = time.monotonic()
    satalab.attention(q, k, v, method="exact", precision="fp16")
    group = time.monotonic() - start
    groups = 100
    q, k, v = satalab.gaussian_inputs(2 * groups, 512, 8)
    threading.Timer(3 * group, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    try:
        satalab.attention(q, k, v, method="exact", precision="fp16")
        outcome = "finished"
    except KeyboardInterrupt:
        outcome = "interrupted"
    print(json.dumps({"outcome": outcome, "elapsed": time.monotonic() - start, "group": group, "groups": groups}))
""")


def test_ctrl_c_interrupts_a_long_attention_call():
    env = dict(os.environ, OMP_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "interrupted"
    # Interrupted after a few groups, not after all 100 (generous: machines are shared).
    assert report["elapsed"] < 0.5 * report["groups"] * report["group"], report


def test_the_gil_is_released_while_computing():
    # A Python thread keeps running (counting) while attention computes in another.
    q, k, v = satalab.gaussian_inputs(4, 768, 8)
    ticks = []
    done = threading.Event()

    def compute():
        satalab.attention(q, k, v, method="exact", precision="fp16")
        done.set()

    worker = threading.Thread(target=compute)
    worker.start()
    while not done.is_set():
        ticks.append(time.monotonic())
        time.sleep(0.001)
    worker.join()
    assert len(ticks) > 20, f"only {len(ticks)} ticks while computing: the GIL was held"


def test_concurrent_calls_from_threads_give_the_same_numbers():
    q, k, v = satalab.gaussian_inputs(3, 64, 4)
    expected = {p: satalab.attention(q, k, v, precision=p)[0] for p in ("fp32", "mp64")}
    results = {}

    def run(p, i):
        results[(p, i)] = satalab.attention(q, k, v, precision=p)[0]

    threads = [threading.Thread(target=run, args=(p, i)) for p in expected for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (p, _), y in results.items():
        assert np.array_equal(y, expected[p])
