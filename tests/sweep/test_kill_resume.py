#!/usr/bin/python3
"""Kill -9 a sweep at random moments, 10 times, resuming in between; the
results file must open after every kill, and the final table must hold each
point exactly once with values equal to an uninterrupted run's, bit for bit
(timings aside). Also: a second run without --resume/--force refuses (exit 2)
and leaves the file as it was; --jobs 1 and --jobs 2 give identical tables.

usage: test_kill_resume.py SATALAB_BINARY GRID.toml
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

TIMING_FIELDS = {"wall_s", "truth_wall_s"}


def sweep(binary, grid, out, *extra, wait=True):
    cmd = [binary, "sweep", grid, "--out", out, *extra]
    if wait:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def table(path):
    with h5py.File(path, "r") as f:
        points = f["points"][()]
        arrays = {name: f[name][()] for name in ("abs_hist", "rel_hist")}
    return points, arrays


def assert_same(reference, candidate, label):
    ref_points, ref_arrays = reference
    points, arrays = candidate
    ids = list(points["point_id"])
    assert len(ids) == len(set(ids)), f"{label}: duplicate point ids {ids}"
    assert ids == list(ref_points["point_id"]), f"{label}: point ids {ids} != {list(ref_points['point_id'])}"
    for name in ref_points.dtype.names:
        if name in TIMING_FIELDS:
            continue
        a, b = ref_points[name], points[name]
        if a.dtype.kind == "f":
            same = np.array_equal(a.view(np.uint64), b.view(np.uint64))  # bit for bit, NaN included
        else:
            same = np.array_equal(a, b)
        assert same, f"{label}: column {name} differs"
    for name, value in ref_arrays.items():
        assert np.array_equal(value, arrays[name]), f"{label}: dataset {name} differs"


def main():
    binary, grid = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="satalab-kill-")
    try:
        reference_path = os.path.join(work, "reference.h5")
        done = sweep(binary, grid, reference_path, "--jobs", "1")
        assert done.returncode == 0, done.stderr
        reference = table(reference_path)

        jobs2 = os.path.join(work, "jobs2.h5")
        done = sweep(binary, grid, jobs2, "--jobs", "2")
        assert done.returncode == 0, done.stderr
        assert_same(reference, table(jobs2), "--jobs 2 vs --jobs 1")

        before = open(reference_path, "rb").read()
        again = sweep(binary, grid, reference_path)
        assert again.returncode == 2, f"rerun without --resume/--force exited {again.returncode}"
        assert open(reference_path, "rb").read() == before, "refused rerun changed the file"

        rng = random.Random(int(os.environ.get("SATALAB_KILL_SEED", "12345")))
        out = os.path.join(work, "killed.h5")
        kills = 0
        while kills < 10:
            proc = sweep(binary, grid, out, "--resume", wait=False)
            time.sleep(rng.uniform(0.05, 0.8))
            if proc.poll() is not None:
                break  # finished before the kill: the remaining kills have nothing to interrupt
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if os.path.exists(out):
                with h5py.File(out, "r") as f:  # must open after every kill
                    f["points"].shape
        final = sweep(binary, grid, out, "--resume")
        assert final.returncode == 0, final.stderr
        assert_same(reference, table(out), f"after {kills} kills")
        assert kills >= 3, f"only {kills} kills landed mid-sweep; the grid is too small to test anything"
        print(f"kill/resume: {kills} kills, {len(reference[0])} points identical to the uninterrupted run")
        print("1 passed, 0 failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
