"""The run store (seqattn.run_store): data sets and runs round-trip, ids are the only names, it stays bounded."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from seqattn.data import Dataset, make_planted
from seqattn.evaluation.compare import compare_methods, Comparison
from seqattn.run_store import RunStore, is_valid_id
from seqattn.selectors import run_method
from seqattn.trace import SelectionTrace


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs", max_bytes=8 << 20, max_age_seconds=3600)


def test_dense_dataset_with_groups_and_extra_round_trips(store):
    dataset = make_planted(n_samples=80, n_features=6, random_state=0).with_groups({"pair": [0, 1]})
    dataset.extra["notes"] = ["a note"]
    dataset.extra["not json"] = object()  # dropped, not pickled
    data_id = store.save_dataset(dataset, "upload:abc:x.csv:y:auto")
    assert is_valid_id(data_id)
    back = store.load_dataset(data_id)
    assert back.key == "upload:abc:x.csv:y:auto" and back.reference is None
    loaded = back.dataset
    np.testing.assert_array_equal(loaded.X, dataset.X)
    np.testing.assert_array_equal(loaded.y, dataset.y)
    assert loaded.feature_names == dataset.feature_names and loaded.groups == dataset.groups
    assert loaded.extra["notes"] == ["a note"] and "not json" not in loaded.extra
    np.testing.assert_array_equal(loaded.informative, dataset.informative)
    files = sorted(p.name for p in (store.folder / "data").iterdir())
    assert files == [f"{data_id}.json", f"{data_id}.npz"]  # random id, never the data set's name
    with np.load(store.folder / "data" / f"{data_id}.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)


def test_sparse_dataset_and_builtin_reference(store):
    X = sp.random(40, 30, density=0.1, format="csr", random_state=0, dtype=np.float32)
    dataset = Dataset(X=X, y=np.arange(40) % 2, feature_names=[f"g{i}" for i in range(30)], task="classification",
                      class_names=["B", "T"], name="cells")
    back = store.load_dataset(store.save_dataset(dataset, "upload:s")).dataset
    assert sp.issparse(back.X) and (back.X != dataset.X).nnz == 0 and back.class_names == ["B", "T"]
    first = store.save_dataset(dataset, "builtin:digits", reference={"builtin": "digits"})
    again = store.save_dataset(dataset, "builtin:digits", reference={"builtin": "digits"})
    assert first == again  # sessions share one entry per built-in
    stored = store.load_dataset(first)
    assert stored.dataset is None and stored.reference == {"builtin": "digits"}


def test_entries_are_private_and_a_failed_write_leaves_nothing(store, monkeypatch):
    """Written through safe_text.write_atomically: 0600 files in a 0700 folder; a crash mid-write keeps no part."""
    dataset = make_planted(n_samples=40, n_features=6, random_state=0)
    data_id = store.save_dataset(dataset, "synthetic")
    assert (store.folder / "data").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in (store.folder / "data").iterdir()} == {0o600}

    def full_disk(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="disk full"):
        store.save_dataset(dataset, "synthetic")
    assert sorted(p.name for p in (store.folder / "data").iterdir()) == [f"{data_id}.json", f"{data_id}.npz"]


def test_runs_round_trip_sa_and_comparison(store):
    dataset = make_planted(n_samples=120, n_features=8, random_state=1)
    data_id = store.save_dataset(dataset, "synthetic")
    trace = run_method(dataset, "omp", 3)
    run_id = store.save_run("sa", trace.to_dict(), data_id=data_id, dataset_key="synthetic")
    run = store.load_run(run_id)
    assert run.kind == "sa" and run.data_id == data_id
    assert SelectionTrace.from_dict(run.payload).selected_names == trace.selected_names

    comparison = compare_methods(dataset, ["omp", "anova", "shap"], 3, ks=[1, 3], seeds=[0], eval_model="logistic",
                                 method_options={"shap": {"n_background": 10, "n_explain": 12, "epochs": 2}})
    run_id = store.save_run("compare", comparison.to_dict(), data_id=data_id, dataset_key="synthetic",
                            arrays=comparison.shap_arrays())
    back = Comparison.from_dict(store.load_run(run_id).payload, store.load_run(run_id).arrays)
    assert back.rankings().equals(comparison.rankings())
    pd.testing.assert_frame_equal(back.summary(), comparison.summary())
    np.testing.assert_array_equal(back.shap.values, comparison.shap.values)
    assert back.informative == comparison.informative and back.accuracy.attrs == comparison.accuracy.attrs


def test_ids_are_checked_before_any_path_is_built(store):
    for bad in ("../../etc/passwd", "x" * 21, "a/b" + "c" * 19, "", None, "é" * 22):
        with pytest.raises(KeyError):
            store.load_run(bad)
        with pytest.raises(KeyError):
            store.load_dataset(bad)
    with pytest.raises(KeyError):
        store.load_run("A" * 22)  # well-formed, not stored


def test_expired_and_oversized_entries_go_and_their_runs_with_them(tmp_path):
    store = RunStore(tmp_path, max_bytes=2 << 20, max_age_seconds=60)
    small = make_planted(n_samples=50, n_features=8, random_state=0)
    old = store.save_dataset(small, "old")
    old_run = store.save_run("sa", {"x": 1}, data_id=old, dataset_key="old")
    for path in (tmp_path / "data").iterdir():
        os.utime(path, (time.time() - 120, time.time() - 120))
    for path in (tmp_path / "runs").iterdir():
        os.utime(path, (time.time() - 120, time.time() - 120))
    fresh = store.save_dataset(small, "fresh")  # saving prunes
    with pytest.raises(KeyError):
        store.load_dataset(old)
    with pytest.raises(KeyError):
        store.load_run(old_run)
    assert store.load_dataset(fresh).key == "fresh"
    # a data set above a quarter of the limit is not kept; the store never grows past its limit
    big = Dataset(X=np.zeros((1000, 200), np.float32), y=np.arange(1000) % 2, feature_names=[f"f{i}" for i in range(200)],
                  task="classification")
    assert store.save_dataset(big, "big") is None
    medium = Dataset(X=np.ones((1000, 100), np.float32), y=np.arange(1000) % 2,
                     feature_names=[f"f{i}" for i in range(100)], task="classification")
    ids = [store.save_dataset(medium, f"m{i}") for i in range(8)]
    assert store.size_bytes() <= store.max_bytes
    assert store.load_dataset(ids[-1]).key == "m7"
    with pytest.raises(KeyError):
        store.load_dataset(ids[0])  # the oldest went first


def test_a_damaged_entry_is_a_missing_entry(store):
    data_id = store.save_dataset(make_planted(n_samples=50, n_features=8, random_state=0), "k")
    (store.folder / "data" / f"{data_id}.json").write_text("{not json")
    with pytest.raises(KeyError):
        store.load_dataset(data_id)
    run_id = store.save_run("sa", {"a": 1}, data_id=data_id, dataset_key="k")
    json.loads((store.folder / "runs" / f"{run_id}.json").read_text())


def test_from_env_reads_folder_and_bounds(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQATTN_RUN_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("SEQATTN_RUN_STORE_MB", "3")
    monkeypatch.setenv("SEQATTN_RUN_MAX_AGE_DAYS", "0.5")
    store = RunStore.from_env()
    assert store.folder == tmp_path / "elsewhere" and store.max_bytes == 3 << 20
    assert store.max_age_seconds == 43200
