"""Session state shared by the pages: session-state keys, cached data loading, navigation targets.

Session-state keys (the contract between pages):

* ``dataset``      — the current :class:`seqattn.data.Dataset` (treat as read-only:
  built-ins are shared between sessions through ``st.cache_resource``)
* ``dataset_key``  — a string naming where it came from, e.g. ``"builtin:digits"``
  or ``"upload:<sha256 prefix>:<file name>:<target>:<task>[:<h5ad layer>]"``, with
  ``"|pp=..."`` appended when expression data were preprocessed on the Data page
  (the record is in ``dataset.extra["preprocessing"]``); pages key their caches
  and stale results on it
* ``sa_trace``     — the last Sequential Attention :class:`seqattn.trace.SelectionTrace`
  on the current data set (dropped when the data set changes)
* ``device``       — ``"auto" | "cpu" | "cuda" | "mps"`` from the sidebar

Helpers live in ``app_support/`` (never in ``pages/``, where Streamlit would
treat any file as a page); pages import ``from app_support.state import ...``.
"""
from __future__ import annotations

import hashlib
import io
from typing import Any

import streamlit as st

from seqattn.data.builtins import load_builtin
from seqattn.data import Dataset

DATASET_KEY = "dataset"
DATASET_ID_KEY = "dataset_key"
SA_TRACE_KEY = "sa_trace"
DEVICE_KEY = "device"
#: Longest a Sequential Attention run may train (wall clock) before it stops as if Stop
#: were pressed, keeping its picks: a forgotten run must not hold a shared CPU for hours.
MAX_TRAINING_SECONDS = 30 * 60


@st.cache_resource(show_spinner="Loading data set…")
def load_builtin_cached(name: str) -> Dataset:
    """One shared copy per built-in (cache_resource: large arrays are not re-pickled per rerun)."""
    return load_builtin(name)


@st.cache_data(show_spinner=False, max_entries=8)
def upload_columns_cached(digest: str, file_name: str, _data: bytes) -> dict[str, Any]:
    """Columns (tables) or obs columns (h5ad) of an upload, keyed on its content hash."""
    from seqattn.data.tables import list_columns

    return list_columns(io.BytesIO(_data), file_name=file_name)


@st.cache_resource(show_spinner="Reading the upload…", max_entries=4)
def load_upload_cached(digest: str, file_name: str, target: str, task: str, _data: bytes,
                       layer: str | None = None, impute: str | None = None,
                       drop_columns: tuple[str, ...] = ()) -> Dataset:
    """Parse an upload once per (content hash, name, target, task, h5ad layer, imputation, dropped
    columns); ``_data`` is not hashed again."""
    from seqattn.data.tables import load_table

    return load_table(io.BytesIO(_data), target=target, file_name=file_name, task=task, layer=layer,
                      impute=impute, drop_columns=drop_columns)


@st.cache_resource(show_spinner="Preprocessing…", max_entries=4)
def preprocess_cached(source_key: str, log1p: bool, top_genes: int | None, standardize: bool,
                      _dataset: Dataset) -> Dataset:
    """``seqattn.genomics.preprocess`` once per (source data set, options); the record lands in
    ``dataset.extra["preprocessing"]``."""
    from seqattn.genomics import preprocess

    return preprocess(_dataset, log1p=log1p, top_genes=top_genes, standardize=standardize)[0]


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def set_dataset(dataset: Dataset, key: str) -> None:
    """Make ``dataset`` current; results computed on another data set are dropped."""
    if st.session_state.get(DATASET_ID_KEY) != key:
        st.session_state.pop(SA_TRACE_KEY, None)
    st.session_state[DATASET_KEY] = dataset
    st.session_state[DATASET_ID_KEY] = key


def current_dataset() -> Dataset | None:
    """The current data set, or ``None`` after telling the user where to pick one."""
    dataset = st.session_state.get(DATASET_KEY)
    if dataset is None:
        st.info("No data set yet: pick a data set on the **Data** page.")
        st.page_link("pages/data.py", label="Go to the Data page", icon=":material/folder_open:")
    return dataset


def current_device() -> str:
    return str(st.session_state.get(DEVICE_KEY, "auto"))


def keep_widget_state(*keys: str) -> None:
    """Keep these widgets' values when the user visits another page and comes back.

    Streamlit forgets the state of widgets that were not drawn in a run;
    re-assigning the value marks it as user state, which survives.
    """
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


#: Finished runs kept per session and page for "same settings again → show it again".
MAX_FINISHED_RUNS = 8


def finished_runs(store_key: str) -> dict[Any, Any]:
    """This session's finished runs of one page (settings key → result), oldest first.

    Per session (``st.session_state``), so one user's results never leak to
    another, and bounded by :func:`remember_finished_run`.
    """
    return st.session_state.setdefault(store_key, {})


def remember_finished_run(store_key: str, settings_key: Any, result: Any,
                          max_runs: int = MAX_FINISHED_RUNS) -> None:
    """Keep ``result`` under ``settings_key``, dropping the oldest run beyond ``max_runs``."""
    runs = finished_runs(store_key)
    runs.pop(settings_key, None)
    runs[settings_key] = result
    while len(runs) > max_runs:
        runs.pop(next(iter(runs)))
