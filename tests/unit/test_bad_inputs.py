"""A corpus of bad and hostile inputs, generated here, through the library.

Every data problem must raise :class:`seqattn.data.DataError` and every bad
parameter ``ValueError`` (``DataError`` is a ``ValueError``), each with a
message that names the problem; nothing may be unpickled or executed, and no
half-written output may be left behind. ``CORPUS_SIZE`` is checked so the
count in the README and the closing report stays true.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.utils._param_validation import Interval

from seqattn.data import tables as sio
from seqattn.cli import EXIT_BAD_INPUT, main as cli_main
from seqattn.data import DataError, make_planted
from seqattn.data.tables import load_table
from seqattn.selectors import run_method
from seqattn.selectors.sequential_attention import SequentialAttentionSelector
from seqattn.trace import SelectionTrace, write_atomically

from bad_inputs_corpus import BAD_FILES, N, BadFile, ExecutesOnUnpickle, csv, table


@pytest.mark.parametrize("case", BAD_FILES, ids=[c.name for c in BAD_FILES])
@pytest.mark.parametrize("as_path", [False, True], ids=["upload", "path"])
def test_bad_file_raises_clear_data_error_and_writes_nothing(case: BadFile, as_path: bool, tmp_path: Path):
    """Same message whether the bytes come as an upload (buffer + name) or as a file on disk."""
    data = case.make(tmp_path)
    before = set(os.listdir(tmp_path))
    if as_path:
        source: Any = tmp_path / case.name
        source.write_bytes(data)
        before.add(case.name)
        call = lambda: load_table(source, target=case.target)  # noqa: E731
    else:
        call = lambda: load_table(io.BytesIO(data), target=case.target, file_name=case.name)  # noqa: E731
    with pytest.raises(DataError, match=case.message):
        call()
    assert set(os.listdir(tmp_path)) == before  # the loader created no files


# ------------------------------------------------------- hostile containers
@pytest.mark.parametrize("name", ["model.parquet", "data.csv", "cells.h5ad", "table.tsv", "noextension"])
def test_pickle_is_never_unpickled(name: str, tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(ExecutesOnUnpickle(marker))
    pickle.loads(payload)  # the payload works: unpickling it does create the marker ...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(DataError, match=r"not a parquet file|binary data|not an h5ad file|Cannot tell the format"):
        load_table(io.BytesIO(payload), target="label", file_name=name)
    assert not marker.exists()  # ... and the loader never did


def test_gzip_bomb_is_refused_before_parsing(monkeypatch):
    """64 MiB of zeros in 64 KiB: refused once the *decompressed* size passes the table limit."""
    monkeypatch.setattr(sio, "MAX_TABLE_FILE_BYTES", 1 << 20)
    bomb = gzip.compress(b"f0,f1,label\n" + b"0" * (64 << 20), 9)
    assert len(bomb) < (1 << 20) // 8  # small on the wire, so the compressed-size guard alone would pass it
    with pytest.raises(DataError, match=r"'bomb.csv.gz' decompresses to more than 1\.0 MiB.*not loaded"):
        load_table(bomb, target="label", file_name="bomb.csv.gz")
    with pytest.raises(DataError, match=r"decompresses to more than"):  # same when named plain .csv
        load_table(bomb, target="label", file_name="bomb.csv")
    ok = gzip.compress(csv(table()))
    assert load_table(ok, target="label", file_name="fine.csv.gz").n_features == 3  # small gzip still loads


def test_size_limits_name_the_numbers(monkeypatch):
    monkeypatch.setattr(sio, "MAX_DENSE_VALUES", 50)
    with pytest.raises(DataError, match=rf"{N} rows × 3 features = {3 * N} values exceeds the in-memory limit of 50"):
        load_table(csv(table()), target="label", file_name="a.csv")
    monkeypatch.setattr(sio, "MAX_TABLE_FILE_BYTES", 100)
    with pytest.raises(DataError, match=r"'a.csv' is .* bytes; tables above 100 bytes are not loaded"):
        load_table(csv(table()), target="label", file_name="a.csv")


def test_path_problems(tmp_path: Path):
    with pytest.raises(DataError, match="File not found"):
        load_table(tmp_path / "missing.csv", target="label")
    with pytest.raises(DataError, match="is a folder"):
        load_table(tmp_path, target="label")
    with pytest.raises(DataError, match="Cannot read data from a int"):
        load_table(12345, target="label")  # type: ignore[arg-type]


def test_hundred_thousand_columns_load_or_hit_the_limit(monkeypatch):
    """A 100,000-column table loads with the right shape (and fast enough), or names the memory limit."""
    d = 100_000
    values = np.random.default_rng(1).integers(0, 9, size=(12, d)).astype(str)
    lines = [",".join(f"c{j}" for j in range(d)) + ",label"]
    lines += [",".join(row) + f",{i % 2}" for i, row in enumerate(values)]
    data = ("\n".join(lines) + "\n").encode()
    dataset = load_table(data, target="label", file_name="wide.csv")
    assert dataset.X.shape == (12, d) and dataset.feature_names[-1] == f"c{d - 1}"
    np.testing.assert_array_equal(dataset.X[:, 5], values[:, 5].astype(np.float32))
    monkeypatch.setattr(sio, "MAX_DENSE_VALUES", 1_000_000)
    with pytest.raises(DataError, match=r"12 rows × 100000 features = 1,200,000 values exceeds"):
        load_table(data, target="label", file_name="wide.csv")


# ----------------------------------------------- inputs that are odd but fine
def test_class_with_a_single_sample_still_gives_valid_traces():
    """Not an error: stratification falls back and every method returns a full trace."""
    frame = table(n=30)
    frame.loc[0, "label"] = 2  # class "2" has one sample
    dataset = load_table(csv(frame), target="label", file_name="rare.csv")
    assert dataset.class_names == ["0", "1", "2"]
    for method, options in (("sa", {"epochs": 3, "device": "cpu"}), ("omp", {})):
        trace = run_method(dataset, method, 2, **options)
        assert trace.k == 2 and len(set(trace.selected)) == 2 and not trace.stopped_early


def test_non_utf8_text_is_read_as_latin1():
    frame = table().rename(columns={"f0": "Größe", "label": "Klasse"})
    dataset = load_table(csv(frame).decode().encode("latin-1"), target="Klasse", file_name="de.csv")
    assert dataset.feature_names == ["Größe", "f1", "f2"]


# ------------------------------------------------------------- parameters
def _dataset():
    return make_planted(n_samples=60, n_features=6, n_informative=2, random_state=0)


PARAMETER_CASES = [
    # SA's parameter rules are declared once (SequentialAttentionSelector._parameter_constraints); scikit-learn's
    # message names the parameter, the allowed range and the value, and SA adds what the parameter is for
    ("k=0", "sa", 0, {}, DataError, r"n_features_to_select must be a positive whole number, got 0"),
    ("k<0", "sa", -3, {}, DataError, r"n_features_to_select must be a positive whole number, got -3"),
    ("k=2.5", "sa", 2.5, {}, DataError, r"whole number, got 2\.5"),
    ("k>n", "sa", 7, {}, DataError, r"n_features_to_select=7 is larger than the number of features \(6\)"),
    ("omp k>n", "omp", 99, {}, DataError, r"k=99 is larger than the number of features \(6\)"),
    ("omp k=0", "omp", 0, {}, DataError, r"positive whole number"),
    ("epochs<0", "sa", 2, {"epochs": -5}, ValueError,
     r"'epochs' parameter .* must be an int in the range \[1, inf\) or None\. Got -5 .*None \(the default\) trains "
     r"until the picks have converged"),
    ("epochs=0", "sa", 2, {"epochs": 0}, ValueError, r"'epochs' parameter .* int in the range \[1, inf\) or None"),
    ("epochs=1.5", "sa", 2, {"epochs": 1.5}, ValueError, r"'epochs' parameter .* int in the range .* Got 1\.5"),
    ("lr=nan", "sa", 2, {"learning_rate": float("nan")}, ValueError,
     r"'learning_rate' parameter .* float in the range \(0\.0, 10\.0\] or None\. Got nan"),
    ("lr=inf", "sa", 2, {"learning_rate": float("inf")}, ValueError, r"'learning_rate' parameter .* Got inf"),
    ("lr<0", "sa", 2, {"learning_rate": -0.01}, ValueError, r"'learning_rate' parameter .* Got -0\.01"),
    ("lr huge", "sa", 2, {"learning_rate": 1e38}, ValueError,
     r"range \(0\.0, 10\.0\] .* Got 1e\+38 .*typically 1e-3 to 0\.05; beyond 10 it only diverges"),
    ("batch=0", "sa", 2, {"batch_size": 0}, ValueError, r"'batch_size' parameter .* int in the range \[1, inf\)"),
    ("hidden=0", "sa", 2, {"hidden": 0}, ValueError, r"'hidden' parameter .* int in the range \[1, inf\)\. Got 0"),
    ("lr_decay=nan", "sa", 2, {"lr_decay": float("nan")}, ValueError,
     r"'lr_decay' parameter .* range \(0\.0, 1\.0\]\. Got nan"),
    ("lr_decay<0", "sa", 2, {"lr_decay": -1.0}, ValueError, r"'lr_decay' parameter .* range \(0\.0, 1\.0\]"),
    ("lr_decay>1", "sa", 2, {"lr_decay": 1e12}, ValueError, r"'lr_decay' parameter .* range \(0\.0, 1\.0\]"),
    ("l2<0", "sa", 2, {"model": "linear", "l2": -1.0}, ValueError, r"'l2' parameter .* \[0\.0, inf\).* finite number ≥ 0"),
    ("l2=nan", "sa", 2, {"model": "linear", "l2": float("nan")}, ValueError, r"'l2' parameter .* Got nan"),
    ("seed<0", "sa", 2, {"random_state": -1}, ValueError, r"'random_state' parameter .* \[0, 4294967295\] or None"),
    ("seed=str", "sa", 2, {"random_state": "abc"}, ValueError, r"'random_state' parameter .* Got 'abc'"),
    ("val=nan", "sa", 2, {"validation_fraction": float("nan")}, ValueError,
     r"'validation_fraction' parameter .* range \[0\.0, 0\.9\)\. Got nan"),
    ("val=0.95", "sa", 2, {"validation_fraction": 0.95}, ValueError, r"'validation_fraction' parameter .* Got 0\.95"),
    ("max_seconds=0", "sa", 2, {"max_seconds": 0}, ValueError,
     r"'max_seconds' parameter .* range \(0\.0, inf\) or None\. Got 0"),
    ("model", "sa", 2, {"model": "rnn"}, ValueError, r"'model' parameter .* among \{.*'mlp'.*\}\. Got 'rnn'"),
    ("device", "sa", 2, {"device": "tpu"}, ValueError, r"Unknown device 'tpu'"),
    ("pinned range", "sa", 2, {"pinned": [99]}, ValueError, r"pinned holds indices outside 0\.\.5: \[99\]"),
    ("pin+ban", "sa", 2, {"pinned": [1], "banned": [1]}, ValueError, r"both pinned and banned: \[1\]"),
    ("k>candidates", "sa", 2, {"pinned": [0, 1, 2], "banned": [3, 4]}, ValueError,
     r"only 1 features can be picked \(6 features, 3 pinned, 2 banned\)"),
    ("method", "magic", 2, {}, ValueError, r"Unknown method 'magic'; available: sa, omp"),
]


@pytest.mark.parametrize(("label", "method", "k", "options", "error", "message"), PARAMETER_CASES,
                         ids=[c[0] for c in PARAMETER_CASES])
def test_bad_parameters_raise_typed_errors(label, method, k, options, error, message):
    options = {"device": "cpu", **options} if method == "sa" else options
    with pytest.raises(error, match=message):
        run_method(_dataset(), method, k, **options)


def test_too_few_steps_for_the_phases_warns_and_trains_the_fewest_that_hold_them():
    """epochs=1 of 48-row batches is one optimizer step for 6 phases: the user gets the 6 picks, told how."""
    with pytest.warns(UserWarning, match=r"epochs=1 gives 1 optimizer steps .* too few for 6 selection phases; "
                                         r"training 6 steps instead"):
        trace = run_method(_dataset(), "sa", 6, device="cpu", epochs=1, batch_size=48, gain_model="none")
    assert trace.k == 6 and not trace.stopped_early and trace.settings["total_steps"] == 6
    assert "training 6 steps instead" in trace.settings["budget_note"]  # the trace says so too


def test_diverging_training_says_lower_the_learning_rate(monkeypatch):
    """Valid settings do not diverge on this data, so lift the learning-rate cap to force it."""
    uncapped = [Interval(Real, 0, None, closed="neither"), None]
    for name in ("learning_rate", "attention_learning_rate"):
        monkeypatch.setitem(SequentialAttentionSelector._parameter_constraints, name, uncapped)
    with pytest.raises(ValueError, match=r"Training diverged .*lower the learning rate"):
        run_method(_dataset(), "sa", 2, device="cpu", learning_rate=1e10, attention_learning_rate=1e10, epochs=3,
                   gain_model="none")


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.ones((10, 3)) * np.nan, np.arange(10) % 2, r"NaN"),
        (np.ones(10), np.arange(10) % 2, r"2D array"),
        (np.ones((10, 3)), np.arange(9) % 2, r"inconsistent numbers of samples"),
        (np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10), r"single class"),
        (np.random.default_rng(0).normal(size=(2, 3)), np.array([0, 1]), r"training sample|at least 2"),
    ],
    ids=["nan", "1d", "lengths", "one-class", "two-rows"],
)
def test_selector_fit_rejects_bad_arrays(X, y, message):
    with pytest.raises(ValueError, match=message):
        SequentialAttentionSelector(1, device="cpu", epochs=2, task="classification").fit(X, y)


# --------------------------------------------------------- outputs on disk
def test_cli_bad_input_exits_2_and_leaves_output_untouched(tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv(table().assign(f1=np.nan)))
    fresh, existing = tmp_path / "new.json", tmp_path / "old.json"
    existing.write_text("previous result")
    for out in (fresh, existing):
        code = cli_main(["select", "--data", str(bad), "--target", "label", "-k", "2", "--out", str(out), "--quiet"])
        assert code == EXIT_BAD_INPUT
        assert "NaN/inf" in capsys.readouterr().err
    good = tmp_path / "good.csv"
    good.write_bytes(csv(table()))
    code = cli_main(["select", "--data", str(good), "--target", "label", "-k", "9", "--method", "omp",
                     "--out", str(fresh), "--quiet"])
    assert code == EXIT_BAD_INPUT and "k=9 is larger than the number of features (3)" in capsys.readouterr().err
    assert not fresh.exists()
    assert existing.read_text() == "previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "old.json"]


def test_trace_writes_are_atomic(tmp_path: Path, monkeypatch):
    trace = run_method(_dataset(), "omp", 2)
    out = tmp_path / "trace.json"
    out.write_text("old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        trace.to_json(out)
    with pytest.raises(OSError, match="disk full"):
        trace.to_csv(tmp_path / "picks.csv")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.json"]  # no temp files left behind
    monkeypatch.undo()
    trace.to_json(out)
    assert SelectionTrace.from_json(out).selected == trace.selected
    write_atomically(tmp_path / "x.txt", "ok")
    assert (tmp_path / "x.txt").read_text() == "ok" and (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644

