"""satalab.read_results: a sweep results file as a pandas DataFrame."""

import os

from ._core import RESULTS_SCHEMA_VERSION


def read_results(path):
    """read_results(path) -> pandas.DataFrame

    The table /points of a sweep results file written by `satalab sweep`
    (schema: docs/results-schema.md), one row per finished point in point_id
    order, with every column of the file: the point's parameters (method,
    taylor_terms, d_key, precision, ...), status, the error statistics of the
    total error and its decomposition (prefixes "", trunc_, round_,
    baseline_), normaliser, cost and timing columns. Strings are str.

    DataFrame.attrs holds the file's root attributes (schema_version,
    satalab_version, git_commit, command_line, config_text, start_time,
    total_points) and "path".

    Per-point arrays (log10 error histograms, position summaries, raw outputs
    saved with --save-outputs): satalab.read_point(path, point_id).

    Raises ValueError when the file does not exist, is not HDF5, has no
    /points table or another schema_version than this satalab reads.
    """
    import h5py
    import pandas as pd

    where = f"results file '{path}'"
    if not os.path.exists(path):
        raise ValueError(f"{where}: does not exist")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{where}: is not an HDF5 file")
    with h5py.File(path, "r") as f:
        version = f.attrs.get("schema_version")
        if version is None:
            raise ValueError(f"{where}: attribute 'schema_version' is missing (not a satalab results file)")
        if int(version) != RESULTS_SCHEMA_VERSION:
            raise ValueError(f"{where}: schema_version {int(version)} is not supported "
                             f"(this satalab reads {RESULTS_SCHEMA_VERSION})")
        if "points" not in f:
            raise ValueError(f"{where}: dataset 'points' is missing")
        table = pd.DataFrame(f["points"][()])
        attrs = {name: _attribute(value) for name, value in f.attrs.items()}
    for column in table.select_dtypes(object):
        table[column] = table[column].str.decode("utf-8")
    table.attrs.update(attrs)
    table.attrs["path"] = os.fspath(path)
    return table


def _attribute(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "item"):
        return value.item()
    return value
