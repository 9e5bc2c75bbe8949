"""Property-based tests (hypothesis) for the loaders and the selector inputs.

* any small numeric table round-trips through CSV, TSV and parquet with the
  right shape, names and values (or, when it has constant columns, a
  DataError that names them);
* random bytes, and valid files with bytes flipped or cut off, never raise
  anything but DataError, whatever the file is called;
* random k / shapes / settings give either a valid trace or ValueError
  (DataError included), never another exception.

``max_examples`` is small so the file runs in well under a minute on 2 cores;
set ``SEQATTN_FUZZ_SCALE=20`` to run twenty times as many examples when hunting bugs.
"""
from __future__ import annotations

import functools
import gzip
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seqattn.data import DataError, Dataset
from seqattn.data.limits import MIN_SAMPLES
from seqattn.data.tables import list_columns, load_table
from seqattn.selectors import run_method

SCALE = int(os.environ.get("SEQATTN_FUZZ_SCALE", "1"))
FAST = settings(max_examples=25 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,7}", fullmatch=True)


@st.composite
def numeric_tables(draw):
    n = draw(st.integers(MIN_SAMPLES, 30))
    d = draw(st.integers(1, 5))
    names = draw(st.lists(NAMES.filter(lambda s: s.lower() != "target"), min_size=d, max_size=d,
                          unique_by=str.lower))
    values = draw(arrays(np.float32, (n, d), elements=st.floats(-1e6, 1e6, width=32, allow_subnormal=False)))
    y = draw(arrays(np.int64, n, elements=st.integers(0, 2)).filter(lambda a: len(np.unique(a)) >= 2))
    frame = pd.DataFrame(values, columns=names)
    frame["target"] = y
    return frame


def _encode(frame: pd.DataFrame, fmt: str) -> tuple[bytes, str]:
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue(), "t.parquet"
    text = frame.to_csv(index=False, sep="\t" if fmt == "tsv" else ",", float_format="%.9g").encode()
    return (gzip.compress(text), "t.csv.gz") if fmt == "csv.gz" else (text, f"t.{fmt}")


@FAST
@given(frame=numeric_tables(), fmt=st.sampled_from(["csv", "tsv", "parquet", "csv.gz"]))
def test_numeric_tables_round_trip(frame: pd.DataFrame, fmt: str):
    data, name = _encode(frame, fmt)
    features = frame.drop(columns="target")
    constant = [c for c in features.columns if features[c].nunique() == 1]
    if constant:
        with pytest.raises(DataError, match="constant"):
            load_table(data, target="target", file_name=name)
        return
    dataset = load_table(data, target="target", file_name=name)
    assert dataset.X.shape == features.shape
    assert dataset.feature_names == list(features.columns)
    np.testing.assert_array_equal(dataset.X, features.to_numpy(np.float32))  # %.9g is exact for float32
    assert dataset.task == "classification"
    assert [int(dataset.class_names[c]) for c in dataset.y] == frame["target"].tolist()
    assert list_columns(data, file_name=name)["columns"] == list(frame.columns)


FILE_NAMES = st.sampled_from(["x.csv", "x.tsv", "x.txt", "x.parquet", "x.h5ad", "x.csv.gz", "x", "x.bin"])


def _load_or_data_error(data: bytes, name: str) -> None:
    for call in (lambda: list_columns(data, file_name=name), lambda: load_table(data, target="target", file_name=name)):
        try:
            result = call()
        except DataError as exc:
            assert str(exc).strip(), "empty error message"
        else:
            assert isinstance(result, (dict, Dataset))


@settings(max_examples=100 * SCALE, deadline=None)
@given(data=st.binary(max_size=3000), name=FILE_NAMES)
def test_random_bytes_only_raise_data_error(data: bytes, name: str):
    _load_or_data_error(data, name)


def _valid_file(fmt: str, tmp_dir) -> bytes:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "b", "c"]).assign(target=[0, 1] * 10)
    if fmt == "h5ad":
        import anndata

        path = tmp_dir / "v.h5ad"
        obs = pd.DataFrame({"target": pd.Categorical(["B", "T"] * 10)}, index=[f"c{i}" for i in range(20)])
        anndata.AnnData(X=np.abs(frame[["a", "b", "c"]].to_numpy(np.float32)) + 1, obs=obs).write_h5ad(path)
        return path.read_bytes()
    return _encode(frame, fmt)[0]


@functools.lru_cache(maxsize=None)
def valid_file(fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return _valid_file(fmt, Path(tmp))


@settings(max_examples=40 * SCALE, deadline=None)
@given(fmt=st.sampled_from(["csv", "parquet", "csv.gz", "h5ad"]), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=8))
def test_damaged_valid_files_only_raise_data_error(fmt: str, cut: float, flips):
    """Truncation and random byte flips (HDF5 is only truncated: its C library is not a fuzz target here)."""
    original = valid_file(fmt)
    data = bytearray(original[: max(1, int(len(original) * cut))])
    if fmt != "h5ad":
        for where, value in flips:
            data[int(where * len(data))] = value
    name = {"csv": "v.csv", "parquet": "v.parquet", "csv.gz": "v.csv.gz", "h5ad": "v.h5ad"}[fmt]
    _load_or_data_error(bytes(data), name)


# --------------------------------------------------------------- selectors
def _mostly(valid, invalid):
    """Three draws in four from ``valid``: enough bad values to probe, enough good ones to train."""
    return st.one_of(valid, valid, valid, invalid)


@st.composite
def selector_inputs(draw):
    n = draw(_mostly(st.integers(10, 40), st.integers(2, 9)))
    d = draw(st.integers(1, 6))
    task = draw(st.sampled_from(["classification", "regression"]))
    if draw(st.booleans()):  # varied random data ...
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        X = rng.normal(size=(n, d)).astype(np.float32)
        y = rng.integers(0, 3, n) if task == "classification" else rng.normal(size=n).astype(np.float32)
    else:  # ... or whatever hypothesis builds (constant columns, one class, repeated values)
        X = draw(arrays(np.float32, (n, d), elements=st.floats(-100, 100, width=32)))
        y = draw(arrays(np.int64, n, elements=st.integers(0, 2)) if task == "classification"
                 else arrays(np.float32, n, elements=st.floats(-10, 10, width=32)))
    k = draw(_mostly(st.integers(1, d), st.integers(-1, d + 1)))
    options = draw(st.fixed_dictionaries({}, optional={
        "epochs": _mostly(st.integers(1, 3), st.integers(-1, 0)),
        "batch_size": _mostly(st.integers(2, 64), st.integers(0, 1)),
        "model": st.sampled_from(["mlp", "linear"]),
        "validation_fraction": st.sampled_from([0.0, 0.2, 0.5]),
        "pinned": st.lists(_mostly(st.integers(0, d - 1), st.integers(-1, d)), max_size=2),
        "banned": st.lists(_mostly(st.integers(0, d - 1), st.integers(-1, d)), max_size=2),
    }))
    method = draw(st.sampled_from(["sa", "sa", "omp"]))
    return X, y, task, k, options, method


@settings(max_examples=30 * SCALE, deadline=None)
@given(inputs=selector_inputs())
def test_selectors_return_a_valid_trace_or_raise_value_error(inputs):
    X, y, task, k, options, method = inputs
    try:
        dataset = Dataset(X=X, y=y, feature_names=[f"x{j}" for j in range(X.shape[1])], task=task)
        if method == "sa":
            options = {"min_steps_per_phase": 3, "hidden": 8, "gain_model": "none", "device": "cpu", **options}
        else:
            options = {key: options[key] for key in ("pinned", "banned") if key in options}
        trace = run_method(dataset, method, k, **options)
    except ValueError as exc:  # DataError is a ValueError
        assert str(exc).strip()
        event(f"{method}: {type(exc).__name__}: {str(exc)[:40]}")
        return
    event(f"{method}: valid trace")
    pinned = set(options.get("pinned", ()))
    banned = set(options.get("banned", ()))
    assert trace.k == k and not trace.stopped_early
    assert len(set(trace.selected)) == k and all(0 <= i < X.shape[1] for i in trace.selected)
    assert not (set(trace.selected) & (pinned | banned))
    assert len(trace.steps[0].scores) == X.shape[1]
