"""satalab: how far Taylor-approximated attention (SATA, Heinsen & Kozachkov
2026) lands from exact softmax attention, from numpy.

A thin binding of satalab's C++ core: the same kernels, names, errors and
numbers (bit for bit) as the `satalab` command-line tool.

    import numpy as np, satalab
    q, k, v = (np.random.default_rng(0).standard_normal((256, 16)) for _ in range(3))
    y, z = satalab.attention(q, k, v, method="sata", taylor_terms=4, precision="fp16-acc32")

Functions: attention, decompose, error_metrics, SataState, round_to, formats,
format_info, precisions, precision_info, methods, placements, cost,
gaussian_inputs, read_results, read_point, memory_limit, set_memory_limit.
Bad input raises ValueError (ResourceLimitError, a ValueError, for work that
would not fit) or TypeError (dtypes other than float16/32/64). Every function
has a docstring: help(satalab.attention).
"""

from ._core import (  # noqa: F401
    HIST_BIN_EDGES,
    RESULTS_SCHEMA_VERSION,
    ResourceLimitError,
    SataState,
    __version__,
    attention,
    cost,
    decompose,
    error_metrics,
    format_info,
    formats,
    gaussian_inputs,
    git_commit,
    memory_limit,
    methods,
    physical_memory,
    placements,
    precision_info,
    precisions,
    read_point,
    round_to,
    set_memory_limit,
)
from ._results import read_results  # noqa: F401

__all__ = [
    "HIST_BIN_EDGES", "RESULTS_SCHEMA_VERSION", "ResourceLimitError", "SataState", "attention", "cost",
    "decompose", "error_metrics", "format_info", "formats", "gaussian_inputs", "memory_limit", "methods",
    "physical_memory", "placements", "precision_info", "precisions", "read_point", "read_results", "round_to",
    "set_memory_limit",
]
