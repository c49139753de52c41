"""satalab.read_results: a sweep results file as a pandas DataFrame."""

import os

from . import results_table as _schema
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

    where = f"results file '{path}'"
    if not os.path.exists(path):
        raise ValueError(f"{where}: does not exist")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{where}: is not an HDF5 file")
    with h5py.File(path, "r") as f:
        _schema.schema_version(f, where, (RESULTS_SCHEMA_VERSION,), "this satalab")
        table = _schema.points_table(f, where)
        attrs = _schema.root_attributes(f)
    table.attrs.update(attrs)
    table.attrs["path"] = os.fspath(path)
    return table
