"""Per-call overhead of the Python module on a tiny input: satalab.attention
(argument checks, numpy -> float64 conversion, GIL release, output arrays)
next to the same compute_attention call timed inside C++.

    OMP_NUM_THREADS=1 PYTHONPATH=build/release/python /usr/bin/python3 python/benchmarks/call_overhead.py

With more threads, each tiny call also pays for starting OpenMP parallel
regions (milliseconds on a loaded machine), in C++ as much as from Python.
"""

import os
import timeit

import numpy as np

import satalab


def main():
    rng = np.random.default_rng(0)
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}; best of 5 runs")
    print(f"{'method':<17} {'precision':<11} {'shape':<12} {'python µs':>10} {'C++ µs':>8} {'overhead µs':>12}")
    for method, precision, shape in [("sata", "fp32", (4, 4)), ("exact", "fp32", (4, 4)),
                                     ("sata", "fp64", (16, 8)), ("sata", "fp16-acc32", (1, 4, 4))]:
        q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
        call = lambda: satalab.attention(q, k, v, method=method, taylor_terms=4, precision=precision)  # noqa: E731
        call()
        repeats = 2000
        python_s = min(timeit.repeat(call, number=repeats, repeat=5)) / repeats
        cxx_s = min(satalab._core._compute_seconds(q, k, v, method, 4, precision, repeats) for _ in range(5))
        print(f"{method:<17} {precision:<11} {str(shape):<12} {python_s * 1e6:10.2f} {cxx_s * 1e6:8.2f} "
              f"{(python_s - cxx_s) * 1e6:12.2f}")


if __name__ == "__main__":
    main()
