"""Small helpers shared by the pages: session-state keys and cached data loading.

Session-state keys (the contract between pages):

* ``dataset``      — the current :class:`seqattn.data.Dataset` (treat as read-only)
* ``dataset_key``  — a string naming where it came from, e.g. ``"builtin:digits"``
  or ``"upload:<sha256>:<target>"``; pages key their caches and stale results on it
* ``sa_trace``     — the last Sequential Attention :class:`seqattn.trace.SelectionTrace`
  (cleared when the data set changes)
* ``device``       — ``"auto" | "cpu" | "cuda" | "mps"`` from the sidebar

This module is not a page (leading underscore); pages import it as
``from pages._state import ...``.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from seqattn.builtins import load_builtin
from seqattn.data import Dataset

DATASET_KEY = "dataset"
DATASET_ID_KEY = "dataset_key"
SA_TRACE_KEY = "sa_trace"
DEVICE_KEY = "device"


@st.cache_resource(show_spinner="Loading data set…")
def load_builtin_cached(name: str) -> Dataset:
    """One shared copy per built-in (cache_resource: no re-pickling of large arrays per rerun)."""
    return load_builtin(name)


@st.cache_resource(show_spinner="Reading upload…", max_entries=4)
def load_upload_cached(digest: str, file_name: str, target: str | None, _data: bytes) -> Dataset:
    """Parse an upload once per (content hash, name, target); ``_data`` is not hashed again."""
    import io

    from seqattn.io import load_table

    return load_table(io.BytesIO(_data), target=target, file_name=file_name)


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
        st.info("No data set yet: pick one on the **Data** page.")
        st.page_link("pages/data.py", label="Go to the Data page", icon=":material/folder_open:")
    return dataset


def current_device() -> str:
    return str(st.session_state.get(DEVICE_KEY, "auto"))
