"""The app's side of the run store (:mod:`seqattn.run_store`): keep data sets and finished runs on disk,
put their ids in the URL, and bring them back from a link after a restart or a reconnect.

How pages use it:

* the current data set is kept by :func:`app_support.state.set_dataset`
  (built-ins as a reference, everything else as arrays we write), and its id
  rides in the URL as ``?data=<id>`` (:func:`sync_url`, every run);
* a page with a finished run calls :func:`keep_run` (``kind``, a JSON-ready
  payload, optional arrays) and shows :func:`show_run_link`, which also puts
  ``?run=<id>`` in the URL, so a reload, a reconnect or the link itself
  brings the run back;
* ``app.py`` calls :func:`restore_from_url` once per browser session, before
  the page runs: ``?run=`` restores the run's data set and hands the run to
  its page (:func:`take_restored`), ``?data=`` the data set alone.
Ids are random; user text never becomes a file name (the store checks ids).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from app_support.state import (DATASET_ID_KEY, DATASET_KEY, SA_TRACE_KEY, builtin_of, load_builtin_cached,
                               set_dataset)
from seqattn.data import Dataset
from seqattn.run_store import RunStore, StoredRun, is_valid_id

STORED_DATA_KEY = "stored_data"  # (dataset_key, data id or None) of the current data set
RESTORED_KEY = "restored"  # kind -> (result, run id): a run from a link, for its page to take
RESTORE_DONE_KEY = "restore_done"  # the URL was read once in this session
RESTORE_NOTICE_KEY = "restore_notice"  # why a link could not be followed
SA_RUN_ID_KEY = "sa_run_id"  # store id of the SA trace in SA_TRACE_KEY


@st.cache_resource(show_spinner=False)
def run_store() -> RunStore:
    """One store per server process, configured by the environment (``SEQATTN_RUN_DIR`` …)."""
    return RunStore.from_env()


def keep_current_dataset() -> str | None:
    """Keep the session's current data set in the store (once per data set key); its id, or None when
    it is not kept (rows on disk, too large, or the store folder cannot be written)."""
    key = str(st.session_state.get(DATASET_ID_KEY, ""))
    dataset: Dataset | None = st.session_state.get(DATASET_KEY)
    stored = st.session_state.get(STORED_DATA_KEY)
    if stored is not None and stored[0] == key:
        return stored[1]
    data_id = None
    if dataset is not None:
        builtin = builtin_of(key, unmodified=True)
        try:
            data_id = run_store().save_dataset(dataset, key, reference={"builtin": builtin} if builtin else None)
        except OSError as exc:  # a full or read-only disk must not break the page
            st.session_state[RESTORE_NOTICE_KEY] = f"Could not keep this data set on disk ({exc}); a restart loses it."
    st.session_state[STORED_DATA_KEY] = (key, data_id)
    st.query_params.pop("run", None)  # a run link belongs to the data set it ran on
    sync_url()
    return data_id


def keep_run(kind: str, payload: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> str | None:
    """Keep a finished run on the current data set; its id, or None when it cannot be kept."""
    data_id = keep_current_dataset()
    if data_id is None:
        return None
    try:
        return run_store().save_run(kind, payload, data_id=data_id,
                                    dataset_key=str(st.session_state.get(DATASET_ID_KEY)), arrays=arrays)
    except OSError:
        return None


def sync_url() -> None:
    """``?data=<id>`` of the current data set in the URL (page changes drop query parameters)."""
    stored = st.session_state.get(STORED_DATA_KEY)
    if stored is not None and stored[1] is not None and st.query_params.get("data") != stored[1]:
        st.query_params["data"] = stored[1]


def run_link(run_id: str) -> str:
    """This page's address with ``?run=<id>`` (relative when the browser's address is unknown, e.g. in tests)."""
    return f"{st.context.url or ''}?run={run_id}"


def show_run_link(run_id: str | None) -> None:
    """Say where the run is kept (a link that works after a restart) and put it in the URL."""
    if run_id is None:
        st.caption("This run is not kept on disk (its data set is too large for the run store, or the store "
                   "cannot be written): a server restart loses it.")
        return
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
    days = run_store().max_age_seconds / 86400
    st.caption(f"Kept on this server for {days:g} days: [link to this run]({run_link(run_id)}) — it opens this "
               "result again after a restart (anyone with the link can open it).")


def _install_dataset(key: str, data_id: str, dataset: Dataset) -> None:
    set_dataset(dataset, key, keep=False)
    st.session_state[STORED_DATA_KEY] = (key, data_id)


def _restore_dataset(data_id: str) -> bool:
    try:
        stored = run_store().load_dataset(data_id)
    except KeyError:
        return False
    if stored.reference is not None:
        from seqattn.data.builtins import BUILTIN_DATASETS

        name = stored.reference.get("builtin")
        if name not in BUILTIN_DATASETS:
            return False
        dataset = load_builtin_cached(name)
    else:
        dataset = stored.dataset
    _install_dataset(stored.key, data_id, dataset)
    return True


def _install_run(run: StoredRun) -> None:
    if run.kind == "sa":
        from seqattn.trace import SelectionTrace

        st.session_state[SA_TRACE_KEY] = SelectionTrace.from_dict(run.payload)
        st.session_state[SA_RUN_ID_KEY] = run.run_id
    elif run.kind == "compare":
        from seqattn.evaluation.compare import Comparison

        st.session_state.setdefault(RESTORED_KEY, {})["compare"] = (Comparison.from_dict(run.payload, run.arrays),
                                                                   run.run_id)


def restore_from_url() -> None:
    """Once per session: bring back the run (``?run=``) or the data set (``?data=``) the URL names."""
    if st.session_state.get(RESTORE_DONE_KEY):
        return
    st.session_state[RESTORE_DONE_KEY] = True
    run_id, data_id = st.query_params.get("run"), st.query_params.get("data")
    if is_valid_id(run_id):
        try:
            run = run_store().load_run(run_id)
        except KeyError:
            run = None
        if run is not None and _restore_dataset(run.data_id):
            _install_run(run)
            return
        st.session_state[RESTORE_NOTICE_KEY] = (
            "The run in this link is no longer kept (runs are kept for a limited time and space), so it "
            "could not be shown.")
        st.query_params.pop("run", None)
    elif run_id is not None:
        st.session_state[RESTORE_NOTICE_KEY] = "This link's run id is not valid."
        st.query_params.pop("run", None)
    if is_valid_id(data_id) and not _restore_dataset(data_id):
        st.session_state[RESTORE_NOTICE_KEY] = "The data set in this link is no longer kept; pick one on the Data page."
        st.query_params.pop("data", None)


def take_restored(kind: str) -> tuple[Any, str] | None:
    """The run of ``kind`` a link restored (result, run id), once; None when there is none."""
    return st.session_state.get(RESTORED_KEY, {}).pop(kind, None)


def show_restore_notice() -> None:
    """Why a link could not be followed (once)."""
    notice = st.session_state.pop(RESTORE_NOTICE_KEY, None)
    if notice:
        st.warning(notice, icon=":material/link_off:")
