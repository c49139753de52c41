"""Reading satalab files: sweep results (HDF5, docs/results-schema.md) and the
cost document of `satalab info --json`.

Everything a figure needs is checked when it is asked for, and a missing piece
raises InputError with one line naming the file and what is missing; plot.py
turns that into exit code 2.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

# The results schema is parsed in one place, python/satalab/results_table.py
# (also behind satalab.read_results); loaded from the source tree by path so
# that plotting needs no compiled satalab module.
_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "python" / "satalab" / "results_table.py"
_spec = importlib.util.spec_from_file_location("satalab_results_table", _SCHEMA_PATH)
_schema = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_schema)

SUPPORTED_SCHEMA_VERSIONS = _schema.SUPPORTED_SCHEMA_VERSIONS
PARAMETER_COLUMNS = _schema.PARAMETER_COLUMNS
COMPONENT_PREFIX = _schema.COMPONENT_PREFIX
COMPONENT_FLAG = _schema.COMPONENT_FLAG
UNUSED_BLOCK = _schema.UNUSED_BLOCK
COST_KIND = "satalab-cost"
SUPPORTED_COST_SCHEMA_VERSIONS = (1,)


class InputError(Exception):
    """A bad or incomplete input file or option: one line, exit code 2."""


def _attr_str(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class Results:
    """One sweep results file: the /points table as a DataFrame (column `row`
    is the HDF5 row, the index of every per-point dataset) and on-demand
    access to the per-point arrays."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path)
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        try:
            self._file = h5py.File(path, "r")
        except OSError as error:
            raise InputError(f"{path}: not a readable HDF5 file ({error})") from None
        try:
            self.schema_version = _schema.schema_version(self._file, path, SUPPORTED_SCHEMA_VERSIONS, "this plot.py")
            frame = _schema.points_table(self._file, path)
        except _schema.ResultsFileError as error:
            raise InputError(str(error)) from None
        self.attrs = {key: _attr_str(value) if isinstance(value, (str, bytes)) else value
                      for key, value in self._file.attrs.items()}
        frame.insert(0, "row", np.arange(len(frame)))
        self.all_points = frame
        if "status" in frame:
            self.points = frame[frame.status == "ok"].copy()
            self.failed = int((frame.status != "ok").sum())
        else:
            self.points = frame
            self.failed = 0

    def close(self):
        self._file.close()

    # --- what a figure needs -------------------------------------------------

    def require_columns(self, columns, needed_by: str):
        for column in columns:
            if column not in self.all_points.columns:
                raise InputError(f"{self.path}: /points has no column '{column}' (needed by {needed_by}; "
                                 f"schema_version {self.schema_version})")

    def array(self, name: str, needed_by: str) -> np.ndarray:
        """A per-point dataset, e.g. 'abs_hist' or 'position/abs_err_median'."""
        if name not in self._file:
            raise InputError(f"{self.path}: dataset '/{name}' is missing (needed by {needed_by})")
        data = self._file[name][()]
        if data.shape[0] != len(self.all_points) and name != "hist_bin_edges":
            raise InputError(f"{self.path}: dataset '/{name}' has {data.shape[0]} rows, /points has "
                             f"{len(self.all_points)}")
        return data

    # --- caption ----------------------------------------------------------------

    def config_name(self) -> str:
        text = self.attrs.get("config_text", "")
        try:
            name = tomllib.loads(text).get("name", "")
        except tomllib.TOMLDecodeError:
            name = ""
        return name or "(unnamed config)"

    def overrides(self) -> list[str]:
        """The --set arguments of the command line that wrote the file."""
        try:
            words = shlex.split(self.attrs.get("command_line", ""))
        except ValueError:
            return []
        return [f"--set {words[i + 1]}" for i, word in enumerate(words[:-1]) if word == "--set"]

    def caption(self, where: list[str]) -> str:
        parts = [f"results: {self.name}", "config: " + " ".join([self.config_name()] + self.overrides())]
        if where:
            parts.append("where " + ", ".join(where))
        rows, total = len(self.all_points), self.attrs.get("total_points", "?")
        if str(rows) != str(total):
            parts.append(f"{rows} of {total} points (incomplete sweep)")
        if self.failed:
            parts.append(f"{self.failed} failed points left out")
        commit = str(self.attrs.get("git_commit", "unknown"))[:12]
        parts.append(f"satalab {self.attrs.get('satalab_version', '?')} ({commit})")
        return " | ".join(parts)


# --- choosing points -------------------------------------------------------------


def _matches(series: pd.Series, value: str) -> pd.Series:
    if series.dtype == bool:
        lowered = value.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise InputError(f"--where {series.name}={value}: expected true or false")
        return series == (lowered in ("true", "1"))
    if np.issubdtype(series.dtype, np.number):
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"--where {series.name}={value}: '{series.name}' is numeric") from None
        if np.isnan(number):
            return series.isna()
        return pd.Series(np.isclose(series.astype(float), number, rtol=1e-12, atol=0), index=series.index)
    return series == value


def apply_where(results: Results, frame: pd.DataFrame, where: list[str]) -> pd.DataFrame:
    """Keep the rows matching every KEY=VALUE[,VALUE...] of --where."""
    for clause in where:
        key, sep, values = clause.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--where '{clause}': expected KEY=VALUE (e.g. precision=fp32)")
        if key not in frame.columns:
            raise InputError(f"--where '{clause}': {results.path} has no column '{key}' "
                             f"(parameters: {', '.join(c for c in PARAMETER_COLUMNS if c in frame.columns)})")
        before = frame
        mask = np.zeros(len(frame), dtype=bool)
        for value in values.split(","):
            mask |= _matches(frame[key], value.strip()).to_numpy()
        frame = frame[mask]
        if frame.empty:
            present = ", ".join(str(v) for v in sorted(before[key].unique(), key=str))
            raise InputError(f"--where '{clause}': no ok point of {results.path} matches "
                             f"(values of {key}: {present})")
    return frame


def varying_parameters(frame: pd.DataFrame) -> dict[str, list]:
    out = {}
    for column in PARAMETER_COLUMNS:
        if column in frame.columns and frame[column].nunique(dropna=False) > 1:
            out[column] = sorted(frame[column].unique(), key=str)
    return out


def one_point_per_cell(results: Results, frame: pd.DataFrame, cell: list[str], figure: str) -> pd.DataFrame:
    """Every combination of the figure's axes (`cell`) must be one point;
    otherwise name the parameters that tell the extra points apart."""
    if frame.empty:
        raise InputError(f"{results.path}: no ok points to plot for {figure}")
    for key, group in frame.groupby(cell if len(cell) > 1 else cell[0], dropna=False):
        if len(group) > 1:
            key = key if isinstance(key, tuple) else (key,)
            where = ", ".join(f"{c}={v}" for c, v in zip(cell, key))
            differ = varying_parameters(group)
            if not differ:
                raise InputError(f"{results.path}: {figure}: {len(group)} identical points at {where}")
            first = next(iter(differ))
            listing = "; ".join(f"{c} in {{{', '.join(str(v) for v in vals)}}}" for c, vals in differ.items())
            raise InputError(f"{results.path}: {figure}: {len(group)} points at {where} differ in {listing}; "
                             f"choose with --where {first}=VALUE")
    return frame


def drop_repeats_over_p(frame: pd.DataFrame) -> pd.DataFrame:
    """Exact attention (and exact over a quantized cache) does not depend on P;
    a sweep that crosses those methods with taylor_terms repeats one
    computation. Keep the one with the smallest P."""
    independent = ~frame.method.isin(["sata", "taylor-quadratic"])
    if not independent.any():
        return frame
    keys = [c for c in PARAMETER_COLUMNS if c in frame.columns and c != "taylor_terms"]
    repeated = frame[independent].sort_values("taylor_terms").duplicated(keys)
    return frame.drop(index=repeated[repeated].index)


def describe_fixed(frame: pd.DataFrame, skip=()) -> str:
    """The parameters with one value across the plotted points, as a short
    phrase for figure titles: 'sata, fp16-acc32 vs truth fp64, 4,096 causal tokens'."""
    def single(column):
        if column in skip or column not in frame.columns or frame[column].nunique(dropna=False) != 1:
            return None
        return frame[column].iloc[0]

    parts = []
    for column in ("method", "precision"):
        value = single(column)
        if value is not None:
            parts.append(str(value))
    taylor_terms = single("taylor_terms")
    if taylor_terms is not None and single("method") != "exact":
        parts.append(f"P = {int(taylor_terms)}")
    truth = single("truth_used")
    if truth is not None:
        parts.append(f"vs exact {truth}")
    n_tokens = single("n_tokens")
    causal = single("causal")
    if n_tokens is not None:
        parts.append(f"{int(n_tokens):,} {'causal ' if causal else ''}tokens")
    d_key = single("d_key")
    if d_key is not None:
        parts.append(f"d_key {int(d_key)}")
    scale = single("scale")
    if scale is not None:
        parts.append(f"scale {scale:g}")
    workload = single("workload")
    if workload is not None and workload != "gaussian":
        parts.append(f"{workload} workload")
    return ", ".join(parts)


# --- cost document ------------------------------------------------------------


class Cost:
    """The JSON document of `satalab info --json`."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as stream:
                doc = json.load(stream)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: not a JSON document ({error}); write one with "
                             "`satalab info ... --json > FILE`") from None
        if not isinstance(doc, dict) or doc.get("kind") != COST_KIND:
            raise InputError(f"{path}: key 'kind' is not \"{COST_KIND}\" (not the output of `satalab info --json`)")
        if "schema_version" not in doc:
            raise InputError(f"{path}: key 'schema_version' is missing")
        if doc["schema_version"] not in SUPPORTED_COST_SCHEMA_VERSIONS:
            raise InputError(f"{path}: schema_version {doc['schema_version']} is not supported "
                             f"(this plot.py reads {', '.join(map(str, SUPPORTED_COST_SCHEMA_VERSIONS))})")
        for key in ("models", "formats"):
            if key not in doc:
                raise InputError(f"{path}: key '{key}' is missing")
        self.doc = doc
        self.models = pd.DataFrame([{k: v for k, v in m.items() if k != "terms"} for m in doc["models"]])
        self.terms = pd.DataFrame([dict(t, d_key=m["d_key"], d_value=m["d_value"], taylor_terms=m["taylor_terms"])
                                   for m in doc["models"] for t in m["terms"]])
        self.formats = pd.DataFrame(doc["formats"])

    def model(self, d_key: int, taylor_terms: int, needed_by: str) -> pd.Series:
        rows = self.models[(self.models.d_key == d_key) & (self.models.taylor_terms == taylor_terms)]
        if rows.empty:
            raise InputError(f"{self.path}: no model with d_key={d_key}, taylor_terms={taylor_terms} "
                             f"(needed by {needed_by}; run satalab info with --d-key {d_key} --taylor-terms "
                             f"{taylor_terms} --json)")
        return rows.iloc[0]

    def require(self, d_keys, taylor_terms, needed_by: str):
        for d_key in d_keys:
            for P in taylor_terms:
                self.model(d_key, P, needed_by)

    def caption(self) -> str:
        commit = str(self.doc.get("git_commit", "unknown"))[:12]
        return (f"cost: {self.name} | {self.doc.get('command_line', 'satalab info --json')} | "
                f"satalab {self.doc.get('satalab_version', '?')} ({commit})")
