"""The sweep results file's reader (docs/results-schema.md) in pure h5py and
pandas: the one place that parses the schema, used by satalab.read_results
(python/satalab/_results.py) and by the figure scripts
(scripts/satalab_plot/results.py imports this file directly, so plotting needs
no compiled module). Keep in step with the document.
"""

import numpy as np

# Versions whose /points columns and per-point datasets read the same way:
# version 2 (exact attention over a quantized KV cache) only added the columns
# kv_quant, bytes_per_sequence, kv_key_scale and kv_value_scale; version 3
# (scale-out) only the root attributes sweep_id, shard_index, shard_count and
# shard_points; the build provenance (build_* attributes, /builds,
# /point_build) was added within version 3; version 4 only adds the workload
# columns modifiers, rope_theta, outlier_channels, outlier_magnitude,
# key_bias_norm, sink_tokens, sink_logit and sink_alignment; version 5 only
# appends the kernel-recipe columns recipe, tile_rows and tile_cols and the
# read-out polynomial columns polynomial, chebyshev_width and key_centring,
# the state accumulation columns state_accumulation and state_block and the
# a-priori estimates remainder_bound_median and predicted_rel_err_median
# (filled in as "none", 0, 0, "taylor", 2.0, "none", "plain", 1024, NaN, NaN
# for older files). Add a version here only after
# checking what it changed.
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3, 4, 5)

# The columns that define a point ("Parameters of the point"); kv_quant exists
# from schema version 2 on, the workload modifier columns from version 4, the
# read-out polynomial columns from version 5.
PARAMETER_COLUMNS = [
    "method", "taylor_terms", "kv_quant", "d_key", "d_value", "heads", "n_tokens", "scale",
    "precision", "truth", "causal", "chunk", "placement", "workload", "dof", "needle_logit",
    "input_file", "seed", "softmax_denominator", "modifiers", "rope_theta", "outlier_channels",
    "outlier_magnitude", "key_bias_norm", "sink_tokens", "sink_logit", "sink_alignment",
    "recipe", "tile_rows", "tile_cols", "polynomial", "chebyshev_width", "key_centring",
    "state_accumulation", "state_block",
]

# Columns added after version 1 that older files lack, with the value that
# means what those files computed (kernel recipes: none; read-out polynomial:
# the paper's Taylor series; state accumulation: plain).
FILLED_COLUMNS = {"recipe": "none", "tile_rows": 0, "tile_cols": 0, "polynomial": "taylor", "chebyshev_width": 2.0,
                  "key_centring": "none", "state_accumulation": "plain", "state_block": 1024,
                  "remainder_bound_median": float("nan"), "predicted_rel_err_median": float("nan")}

# Error components and their column / dataset prefixes.
COMPONENT_PREFIX = {"total": "", "truncation": "trunc_", "rounding": "round_", "baseline": "baseline_"}
COMPONENT_FLAG = {"truncation": "has_truncation", "rounding": "has_rounding", "baseline": "has_baseline"}

# first_token of a position block that a point does not use.
UNUSED_BLOCK = np.iinfo(np.uint64).max

BUILD_FIELDS = ("commit", "compiler", "flags", "isa", "exp_library")


class ResultsFileError(ValueError):
    """A file that is not a readable results file: one line naming it and what is wrong."""


def attribute(value):
    """An HDF5 attribute as a Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "item"):
        return value.item()
    return value


def schema_version(file, where, supported=SUPPORTED_SCHEMA_VERSIONS, reader="this reader"):
    """The file's schema_version, refused unless in `supported`."""
    if "schema_version" not in file.attrs:
        raise ResultsFileError(f"{where}: attribute 'schema_version' is missing (not a satalab results file)")
    version = int(file.attrs["schema_version"])
    if version not in supported:
        known = ", ".join(str(v) for v in supported)
        raise ResultsFileError(f"{where}: schema_version {version} is not supported ({reader} reads {known})")
    return version


def root_attributes(file):
    return {name: attribute(value) for name, value in file.attrs.items()}


def points_table(file, where):
    """/points as a DataFrame, one row per point in file order, strings as str."""
    import pandas as pd

    if "points" not in file:
        raise ResultsFileError(f"{where}: dataset '/points' is missing")
    table = pd.DataFrame(file["points"][()])
    for column in table.select_dtypes(object):
        table[column] = table[column].str.decode("utf-8")
    for column, value in FILLED_COLUMNS.items():
        if column not in table.columns:
            table[column] = value
    return table


def builds(file):
    """The builds that computed the points (/builds) as a DataFrame, and the
    /builds row of each /points row (/point_build); (None, None) for files
    written before builds were recorded."""
    import pandas as pd

    if "builds" not in file or "point_build" not in file:
        return None, None
    table = pd.DataFrame(file["builds"][()])
    for column in table.select_dtypes(object):
        table[column] = table[column].str.decode("utf-8")
    return table, file["point_build"][()]
