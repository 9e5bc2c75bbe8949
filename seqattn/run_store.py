"""A bounded, expiring store of finished runs and their data sets on disk, so work survives a restart.

The app keeps each loaded data set and each finished run (a Sequential
Attention trace, a comparison) here and links to it as ``?data=<id>`` /
``?run=<id>``; the link works again after the server restarts or a browser
tab reconnects to a new session.

Safety rules, all enforced here:

* file names are random ids (:func:`secrets.token_urlsafe`) checked against
  ``[A-Za-z0-9_-]{22}`` before any path is built; user text never becomes a
  path;
* only formats we write and read without code execution: JSON (traces via
  ``SelectionTrace.to_dict``) and ``.npz`` read with ``allow_pickle=False``;
  never pickle, never the uploaded file itself;
* bounded: entries older than ``max_age_seconds`` go, then the oldest until
  the folder holds at most ``max_bytes``; a data set above a quarter of the
  limit is not kept (one upload cannot flush everyone's runs);
* every file is written to a temporary name and renamed, so a crash or a
  second server process never leaves a half-written entry.

Configuration (:meth:`RunStore.from_env`): ``SEQATTN_RUN_DIR`` (default
``$XDG_CACHE_HOME/seqattn/runs``, i.e. ``~/.cache/seqattn/runs``),
``SEQATTN_RUN_STORE_MB`` (default 1024) and ``SEQATTN_RUN_MAX_AGE_DAYS``
(default 7).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse as sp

from seqattn.data import DataError, Dataset
from seqattn.safe_text import write_atomically

STORE_FORMAT_VERSION = 1
DEFAULT_MAX_MB = 1024
DEFAULT_MAX_AGE_DAYS = 7
#: A data set larger than this share of the store is not kept.
MAX_ITEM_SHARE = 0.25
_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_MAX_JSON_BYTES = 256 << 20  # our own files; a larger one is damaged, not read
_STALE_TEMP_SECONDS = 3600.0  # a temporary file this old was left by a crash


def default_folder() -> Path:
    """``$SEQATTN_RUN_DIR``, else the user cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)/seqattn/runs."""
    configured = os.environ.get("SEQATTN_RUN_DIR")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "seqattn" / "runs"


def new_id() -> str:
    """A random, URL- and file-name-safe id (128 bits)."""
    return secrets.token_urlsafe(16)


def _stable_id(text: str) -> str:
    """The same id for the same reference (a built-in's name), so sessions share one entry."""
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()[:16]).decode().rstrip("=")


def is_valid_id(value: Any) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


@dataclass
class StoredData:
    """A kept data set: ``dataset`` (arrays we wrote) or a ``reference`` the caller resolves (a built-in)."""

    data_id: str
    key: str
    dataset: Dataset | None
    reference: dict[str, Any] | None


@dataclass
class StoredRun:
    """A kept run: ``payload`` is the JSON the caller gave, ``arrays`` the arrays beside it."""

    run_id: str
    kind: str
    data_id: str
    dataset_key: str
    created: float
    payload: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _jsonable(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-serialisable entries of ``dataset.extra`` (notes, warnings, preprocessing record, …)."""
    kept = {}
    for key, value in extra.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        kept[str(key)] = value
    return kept


def _dataset_arrays(dataset: Dataset) -> dict[str, np.ndarray]:
    X = dataset.X
    arrays: dict[str, np.ndarray] = {"y": np.asarray(dataset.y)}
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        arrays.update(X_data=X.data, X_indices=X.indices, X_indptr=X.indptr, X_shape=np.asarray(X.shape))
    else:
        arrays["X"] = np.asarray(X)
    if dataset.informative is not None:
        arrays["informative"] = np.asarray(dataset.informative)
    return arrays


def _dataset_meta(dataset: Dataset) -> dict[str, Any]:
    groups = dataset.groups
    return {
        "name": dataset.name, "task": dataset.task, "feature_names": list(dataset.feature_names),
        "class_names": None if dataset.class_names is None else [str(c) for c in dataset.class_names],
        "image_shape": None if dataset.image_shape is None else [int(v) for v in dataset.image_shape],
        "description": dataset.description, "extra": _jsonable(dataset.extra),
        "groups": None if groups is None else {"names": list(groups.names),
                                               "columns": [list(map(int, c)) for c in groups.columns]},
    }


def _dataset_from(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Dataset:
    from seqattn.data.groups import FeatureGroups

    if "X" in arrays:
        X = arrays["X"]
    else:
        X = sp.csr_matrix((arrays["X_data"], arrays["X_indices"], arrays["X_indptr"]),
                          shape=tuple(int(v) for v in arrays["X_shape"]))
    groups = meta.get("groups")
    return Dataset(
        X=X, y=arrays["y"], feature_names=list(meta["feature_names"]), task=str(meta["task"]),
        name=str(meta.get("name", "data")), class_names=meta.get("class_names"),
        image_shape=tuple(meta["image_shape"]) if meta.get("image_shape") else None,
        informative=arrays.get("informative"), description=str(meta.get("description", "")),
        extra=dict(meta.get("extra") or {}),
        groups=None if groups is None else FeatureGroups.from_lists(groups["names"], groups["columns"],
                                                                    len(meta["feature_names"])),
    )


class RunStore:
    """Runs and data sets kept under ``folder`` (``runs/<id>.json|.npz``, ``data/<id>.json|.npz``)."""

    def __init__(self, folder: str | Path | None = None, *, max_bytes: int = DEFAULT_MAX_MB << 20,
                 max_age_seconds: float = DEFAULT_MAX_AGE_DAYS * 86400.0) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()
        self.max_bytes = int(max_bytes)
        self.max_age_seconds = float(max_age_seconds)

    @classmethod
    def from_env(cls) -> "RunStore":
        """The store configured by ``SEQATTN_RUN_DIR``, ``SEQATTN_RUN_STORE_MB``, ``SEQATTN_RUN_MAX_AGE_DAYS``."""
        try:
            megabytes = float(os.environ.get("SEQATTN_RUN_STORE_MB", DEFAULT_MAX_MB))
            days = float(os.environ.get("SEQATTN_RUN_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
        except ValueError as exc:
            raise ValueError(f"SEQATTN_RUN_STORE_MB and SEQATTN_RUN_MAX_AGE_DAYS must be numbers: {exc}") from exc
        return cls(default_folder(), max_bytes=int(megabytes * (1 << 20)), max_age_seconds=days * 86400.0)

    # ------------------------------------------------------------------ paths and files
    def _path(self, section: str, item_id: str, suffix: str) -> Path:
        if not is_valid_id(item_id):
            raise KeyError(f"not a stored id: {item_id!r}")
        return self.folder / section / f"{item_id}{suffix}"

    @staticmethod
    def _write(path: Path, content: str | Callable[[BinaryIO], None]) -> None:
        """Atomically (a reader never sees half an entry), private to this user like the folder."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(path, content, new_file_mode=0o600)

    def _write_json(self, path: Path, payload: Mapping[str, Any]) -> None:
        self._write(path, json.dumps(payload, allow_nan=False))

    def _write_npz(self, path: Path, arrays: Mapping[str, np.ndarray]) -> None:
        self._write(path, lambda fh: np.savez(fh, **arrays))

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any]:
        if path.stat().st_size > _MAX_JSON_BYTES:
            raise KeyError(f"{path.name} is larger than any entry this store writes")
        return json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def _read_npz(path: Path) -> dict[str, np.ndarray]:
        if not path.exists():
            return {}
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    # ------------------------------------------------------------------ data sets
    def save_dataset(self, dataset: Dataset, key: str, *, reference: Mapping[str, Any] | None = None) -> str | None:
        """Keep ``dataset`` (or only ``reference``, e.g. ``{"builtin": "digits"}``); its id, or None when
        it cannot be kept: rows left on disk (backed) without a reference, or larger than the per-item limit."""
        if reference is None and dataset.backed:
            return None
        arrays = {} if reference is not None else _dataset_arrays(dataset)
        if sum(a.nbytes for a in arrays.values()) > MAX_ITEM_SHARE * self.max_bytes:
            return None
        data_id = new_id() if reference is None else _stable_id(json.dumps(reference, sort_keys=True))
        meta = {"version": STORE_FORMAT_VERSION, "key": str(key), "created": time.time(),
                "reference": dict(reference) if reference is not None else None,
                "dataset": None if reference is not None else _dataset_meta(dataset)}
        if arrays:
            self._write_npz(self._path("data", data_id, ".npz"), arrays)
        self._write_json(self._path("data", data_id, ".json"), meta)
        self.prune()
        return data_id

    def load_dataset(self, data_id: str) -> StoredData:
        """The data set kept under ``data_id``; ``KeyError`` when there is none (expired, never kept, bad id)."""
        try:
            meta = self._read_json(self._path("data", data_id, ".json"))
            if meta.get("reference") is not None:
                return StoredData(data_id, str(meta["key"]), None, dict(meta["reference"]))
            arrays = self._read_npz(self._path("data", data_id, ".npz"))
            return StoredData(data_id, str(meta["key"]), _dataset_from(meta["dataset"], arrays), None)
        except (OSError, ValueError, KeyError, TypeError, DataError) as exc:
            raise KeyError(f"no stored data set {data_id!r} ({exc})") from exc

    # ------------------------------------------------------------------ runs
    def save_run(self, kind: str, payload: Mapping[str, Any], *, data_id: str, dataset_key: str,
                 arrays: Mapping[str, np.ndarray] | None = None) -> str:
        """Keep a finished run (``payload``: JSON-ready) that was computed on the data set ``data_id``."""
        if not is_valid_id(data_id):
            raise KeyError(f"not a stored data set id: {data_id!r}")
        run_id = new_id()
        if arrays:
            self._write_npz(self._path("runs", run_id, ".npz"), arrays)
        self._write_json(self._path("runs", run_id, ".json"),
                         {"version": STORE_FORMAT_VERSION, "kind": str(kind), "created": time.time(),
                          "data_id": data_id, "dataset_key": str(dataset_key), "payload": dict(payload)})
        for suffix in (".json", ".npz"):  # the run's data set lives as long as the run
            try:
                os.utime(self._path("data", data_id, suffix))
            except FileNotFoundError:
                pass
        self.prune()
        return run_id

    def load_run(self, run_id: str) -> StoredRun:
        """The run kept under ``run_id``; ``KeyError`` when there is none."""
        try:
            record = self._read_json(self._path("runs", run_id, ".json"))
            arrays = self._read_npz(self._path("runs", run_id, ".npz"))
            return StoredRun(run_id, str(record["kind"]), str(record["data_id"]), str(record["dataset_key"]),
                             float(record["created"]), dict(record["payload"]), arrays)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyError(f"no stored run {run_id!r} ({exc})") from exc

    # ------------------------------------------------------------------ bounds
    def _entries(self) -> list[tuple[float, int, str, str, list[Path]]]:
        """(newest mtime, total size, section, id, files) of every entry, oldest first (an entry's JSON and
        arrays go together); another writer's fresh temporary files are left alone."""
        grouped: dict[tuple[str, str], list[tuple[float, int, Path]]] = {}
        for section in ("runs", "data"):
            folder = self.folder / section
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed by another process meanwhile
                    continue
                if path.name.startswith(".") and time.time() - stat.st_mtime < _STALE_TEMP_SECONDS:
                    continue
                grouped.setdefault((section, path.name.split(".")[0] or path.name), []).append(
                    (stat.st_mtime, stat.st_size, path))
        entries = [(max(f[0] for f in files), sum(f[1] for f in files), section, item_id, [f[2] for f in files])
                   for (section, item_id), files in grouped.items()]
        return sorted(entries, key=lambda e: e[0])

    def size_bytes(self) -> int:
        return sum(entry[1] for entry in self._entries())

    def prune(self, now: float | None = None) -> None:
        """Drop expired entries, then the oldest until the store fits ``max_bytes``; then the runs whose
        data set went (they could not be shown any more)."""
        now = time.time() if now is None else now
        entries = self._entries()
        total = sum(entry[1] for entry in entries)
        gone_data = set()
        for mtime, size, section, item_id, files in entries:
            if now - mtime <= self.max_age_seconds and total <= self.max_bytes:
                continue
            for path in files:
                path.unlink(missing_ok=True)
            total -= size
            if section == "data":
                gone_data.add(item_id)
        runs = self.folder / "runs"
        if not gone_data or not runs.is_dir():
            return
        for path in runs.glob("*.json"):
            try:
                orphan = self._read_json(path).get("data_id") in gone_data
            except (OSError, ValueError, KeyError):
                orphan = True
            if orphan:
                path.unlink(missing_ok=True)
                path.with_suffix(".npz").unlink(missing_ok=True)
