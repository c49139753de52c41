#!/usr/bin/python3
"""Scale-out of `satalab sweep`, checked against a single-process run of the
same grid (the independent computation): every /points column bit for bit
(timings aside) and every other dataset, per-point arrays and raw outputs
included.

usage: test_scale_out.py shards SATALAB GRID.toml
       test_scale_out.py mpi    SATALAB GRID.toml MPIEXEC

shards: shards 1/3, 2/3, 3/3 merged equal the single run; merge refuses
  files of two configs and two files with conflicting values for one point
  (exit 2, one line naming the key / the point, nothing written); a merge of
  a partial set reports the missing points and --resume computes exactly
  those; an existing output is kept without --force.
mpi: `mpirun -np 3 --oversubscribe satalab sweep` equals the single run; an
  MPI run killed with SIGKILL part-way (mpirun and every rank at once) and
  resumed (with and without MPI) ends with every point exactly once and the
  same values.
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
SAVE = ["--save-outputs", "--jobs", "1"]


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def contents(path):
    """/points as a structured array and every other dataset by name."""
    datasets = {}
    with h5py.File(path, "r") as f:
        points = f["points"][()]
        f.visititems(lambda name, obj: datasets.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) and name != "points" else None)
    return points, datasets


def bits(a):
    return a.view(np.uint64) if a.dtype.kind == "f" else a  # NaN payloads compared too


def assert_same(reference_path, path, label):
    ref_points, ref_sets = contents(reference_path)
    points, sets = contents(path)
    ids = list(points["point_id"])
    assert len(ids) == len(set(ids)), f"{label}: duplicate point ids"
    assert ids == list(ref_points["point_id"]), f"{label}: point ids {ids} != {list(ref_points['point_id'])}"
    for name in ref_points.dtype.names:
        if name not in TIMING_FIELDS:
            assert np.array_equal(bits(ref_points[name]), bits(points[name])), f"{label}: column {name} differs"
    assert sorted(sets) == sorted(ref_sets), f"{label}: datasets {sorted(set(sets) ^ set(ref_sets))} differ"
    for name, value in ref_sets.items():
        assert np.array_equal(bits(value), bits(sets[name])), f"{label}: dataset {name} differs"


def one_line_error(done, needle, label):
    assert done.returncode == 2, f"{label}: exit {done.returncode}, stderr {done.stderr!r}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"{label}: expected one line, got {lines}"
    assert needle in lines[0], f"{label}: {lines[0]!r} does not name {needle!r}"


def test_shards(binary, grid, work):
    reference = os.path.join(work, "single.h5")
    done = run([binary, "sweep", grid, "--out", reference, *SAVE])
    assert done.returncode == 0, done.stderr
    parts = []
    for k in (1, 2, 3):
        part = os.path.join(work, f"part-{k}.h5")
        done = run([binary, "sweep", grid, "--out", part, "--shard", f"{k}/3", *SAVE])
        assert done.returncode == 0, done.stderr
        with h5py.File(part, "r") as f:
            assert (f.attrs["shard_index"], f.attrs["shard_count"]) == (k, 3)
            assert f.attrs["shard_points"] == len(f["points"]) > 0, "an empty or incomplete shard"
        parts.append(part)
    merged = os.path.join(work, "merged.h5")
    done = run([binary, "merge", "--out", merged, *reversed(parts)])
    assert done.returncode == 0, done.stderr
    assert "all 120 points" in done.stderr, done.stderr
    assert_same(reference, merged, "shards 1/3 2/3 3/3 merged")
    with h5py.File(merged, "r") as f, h5py.File(reference, "r") as g:
        assert f.attrs["sweep_id"] == g.attrs["sweep_id"]
        assert (f.attrs["shard_index"], f.attrs["shard_count"], f.attrs["shard_points"]) == (1, 1, 120)

    # Never overwrites without --force; with it, the same result again.
    before = open(merged, "rb").read()
    one_line_error(run([binary, "merge", "--out", merged, *parts]), merged, "merge onto an existing file")
    assert open(merged, "rb").read() == before
    done = run([binary, "merge", "--out", merged, "--force", parts[0], parts[1], parts[2], parts[1]])
    assert done.returncode == 0 and "duplicates dropped" in done.stderr, done.stderr
    assert_same(reference, merged, "merge --force with a duplicate shard")

    # A partial merge names the missing points; --resume computes exactly those.
    partial = os.path.join(work, "partial.h5")
    done = run([binary, "merge", "--out", partial, parts[0], parts[2]])
    assert done.returncode == 0, done.stderr
    with h5py.File(parts[1], "r") as f:
        missing = len(f["points"])
    assert f"{missing} of 120 points missing" in done.stderr, done.stderr
    done = run([binary, "sweep", grid, "--out", partial, "--resume", *SAVE])
    assert done.returncode == 0, done.stderr
    assert f"({120 - missing} already finished, {missing} to run)" in done.stderr, done.stderr
    assert_same(reference, partial, "partial merge + --resume")

    # Refusals: one line, exit 2, nothing written.
    other = os.path.join(work, "other.h5")
    done = run([binary, "sweep", grid, "--out", other, "--set", "taylor_terms=[2, 3]", "--shard", "1/3", *SAVE])
    assert done.returncode == 0, done.stderr
    refused = os.path.join(work, "refused.h5")
    listing = sorted(os.listdir(work))
    one_line_error(run([binary, "merge", "--out", refused, parts[0], other]), "key 'taylor_terms'",
                   "merge of two configs")
    conflicting = os.path.join(work, "conflicting.h5")
    shutil.copy(parts[0], conflicting)
    with h5py.File(conflicting, "r+") as f:
        table = f["points"][()]
        table["abs_err_median"][3] = np.nextafter(table["abs_err_median"][3], np.inf)
        f["points"][...] = table
        point = int(table["point_id"][3])
    listing = sorted(os.listdir(work))
    one_line_error(run([binary, "merge", "--out", refused, parts[0], conflicting]), f"point {point}",
                   "merge of conflicting results")
    assert "abs_err_median" in run([binary, "merge", "--out", refused, parts[0], conflicting]).stderr
    assert sorted(os.listdir(work)) == listing, "a refused merge wrote something"
    one_line_error(run([binary, "sweep", grid, "--out", refused, "--shard", "4/3"]), "--shard '4/3'",
                   "--shard 4/3")
    assert sorted(os.listdir(work)) == listing, "a refused sweep wrote something"
    # A shard file resumes only as that shard.
    one_line_error(run([binary, "sweep", grid, "--out", parts[0], "--resume", "--shard", "2/3"]), "shard 1/3",
                   "resume of shard 1/3 as 2/3")
    print("shards: 3 shards merged, partial merge + resume, and every refusal as specified")


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def kill_job(proc):
    """SIGKILL mpirun and every rank at once, as a node failure or scancel would."""
    for pid in descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def test_mpi(binary, grid, mpiexec, work):
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    mpirun = [mpiexec, "-np", "3", "--oversubscribe", binary]
    reference = os.path.join(work, "single.h5")
    done = run([binary, "sweep", grid, "--out", reference, *SAVE])
    assert done.returncode == 0, done.stderr
    parallel = os.path.join(work, "mpi.h5")
    done = run([*mpirun, "sweep", grid, "--out", parallel, *SAVE], env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "on 3 ranks" in done.stderr and "[120/120]" in done.stderr, done.stderr
    assert_same(reference, parallel, "mpirun -np 3")

    rng = random.Random(int(os.environ.get("SATALAB_KILL_SEED", "8")))
    killed = os.path.join(work, "killed.h5")
    kills = 0
    for attempt in range(4):
        proc = subprocess.Popen([*mpirun, "sweep", grid, "--out", killed, *SAVE, "--resume"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.0))
        if proc.poll() is not None:
            break
        kill_job(proc)
        if os.path.exists(killed):
            with h5py.File(killed, "r") as f:  # readable after every kill
                rows = len(f["points"])
            if rows < 120:
                kills += 1
    assert kills >= 1, "no kill landed mid-sweep; the grid is too small to test anything"
    with_mpi = run([*mpirun, "sweep", grid, "--out", killed, *SAVE, "--resume"], env=env, timeout=300)
    assert with_mpi.returncode == 0, with_mpi.stderr
    assert_same(reference, killed, f"after {kills} SIGKILLs of the MPI job and an MPI --resume")
    print(f"mpi: -np 3 equals the single run; {kills} SIGKILLs mid-sweep, resumed, every point once, same values")


def main():
    mode, binary, grid = sys.argv[1], sys.argv[2], sys.argv[3]
    work = tempfile.mkdtemp(prefix="satalab-scale-")
    try:
        if mode == "shards":
            test_shards(binary, grid, work)
        elif mode == "mpi":
            test_mpi(binary, grid, sys.argv[4], work)
        else:
            sys.exit(f"unknown mode {mode!r} (allowed: shards, mpi)")
        print("1 passed, 0 failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
