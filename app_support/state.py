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
* ``load_failure`` — ``{"name", "message", "source"}`` of the last file that could not be
  loaded (the current data set stayed what it was); cleared when a data set
  loads or another file is attached. Pages other than Data say so beside
  the data set they use.
* ``stored_data``  — ``(dataset_key, id)`` of the current data set in the run
  store (``app_support/runs.py``), id ``None`` when it could not be kept

Helpers live in ``app_support/`` (never in ``pages/``, where Streamlit would
treat any file as a page); pages import ``from app_support.state import ...``.
"""
from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from seqattn.data.builtins import BUILTIN_DATASETS, load_builtin
from seqattn.data import Dataset
from seqattn.safe_text import escape_markdown

DATASET_KEY = "dataset"
DATASET_ID_KEY = "dataset_key"
SA_TRACE_KEY = "sa_trace"
DEVICE_KEY = "device"
LOAD_FAILURE_KEY = "load_failure"
#: The data set a session starts with (a good first one: SA runs on it in seconds).
DEFAULT_BUILTIN = "digits"
#: Longest a Sequential Attention run may train (wall clock) before it stops as if Stop
#: were pressed, keeping its picks: a forgotten run must not hold a shared CPU for hours.
MAX_TRAINING_SECONDS = 30 * 60


@st.cache_resource(show_spinner="Loading data set…")
def load_builtin_cached(name: str) -> Dataset:
    """One shared copy per built-in (cache_resource: large arrays are not re-pickled per rerun)."""
    return load_builtin(name)


@st.cache_resource(show_spinner="Preprocessing…", max_entries=4)
def preprocess_cached(source_key: str, log1p: bool, top_genes: int | None, standardize: bool,
                      _dataset: Dataset) -> Dataset:
    """``seqattn.genomics.preprocess`` once per (source data set, options); the record lands in
    ``dataset.extra["preprocessing"]``."""
    from seqattn.genomics import preprocess

    return preprocess(_dataset, log1p=log1p, top_genes=top_genes, standardize=standardize)[0]


@st.cache_resource(show_spinner="Opening the file…", max_entries=4)
def load_server_cached(relative: str, stamp: tuple, target: str, task: str, folder: str) -> Dataset:
    """A 'File on the server' loaded once per (file, modification time and size, target, task); large h5ad
    files open backed."""
    from pathlib import Path

    from seqattn.server_files import load_server_file

    return load_server_file(relative, Path(folder), target, task=task)


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# ------------------------------------------------------------------ dataset keys (the format documented above)
def builtin_key(name: str) -> str:
    return f"builtin:{name}"


def builtin_of(key: str, *, unmodified: bool = False) -> str:
    """The built-in's name in a dataset key (``builtin:pbmc68k_reduced|pp=...`` -> ``pbmc68k_reduced``);
    '' for other sources, and with ``unmodified`` also for a preprocessed built-in."""
    if not key.startswith("builtin:") or (unmodified and "|" in key):
        return ""
    return key.removeprefix("builtin:").split("|")[0]


def server_key(relative: str, modified_ns: int, target: str, task: str) -> str:
    """A server file's key: a new modification time is a new data set."""
    return f"server:{relative}:{modified_ns}:{target}:{task}"


def preprocessed_key(base_key: str, log1p: bool, top_genes: int | None, standardize: bool) -> str:
    """The key of ``base_key``'s data after the Data page's preprocessing (``|pp=...``)."""
    return f"{base_key}|pp=log1p:{int(bool(log1p))},top:{top_genes},std:{int(bool(standardize))}"


def set_dataset(dataset: Dataset, key: str, *, keep: bool = True) -> None:
    """Make ``dataset`` current; results computed on another data set are dropped, a failed load's
    message with them. A new data set is kept in the run store (``keep``; a restore passes False: it is
    kept already) so a link brings it back after a restart."""
    st.session_state.pop(LOAD_FAILURE_KEY, None)
    if st.session_state.get(DATASET_ID_KEY) == key:
        st.session_state[DATASET_KEY] = dataset
        return
    st.session_state.pop(SA_TRACE_KEY, None)
    st.session_state[DATASET_KEY] = dataset
    st.session_state[DATASET_ID_KEY] = key
    if keep:
        from app_support.runs import keep_current_dataset

        keep_current_dataset()


def note_load_failure(name: str, message: str, *, source: str) -> None:
    """A file (``source``: the Data page's ``"upload"`` or ``"server"``) could not be loaded: the current
    data set stays, and every page says so."""
    st.session_state[LOAD_FAILURE_KEY] = {"name": str(name), "message": str(message), "source": source}


def load_failure() -> dict[str, str] | None:
    return st.session_state.get(LOAD_FAILURE_KEY)


def current_dataset(*, say_failed_load: bool = True) -> Dataset | None:
    """The current data set; a session that has none yet gets the built-in ``DEFAULT_BUILTIN`` (digits),
    as the Data page's first visit does, and the page says so with a link to the Data page.

    When the last upload failed, the page first says that it runs on the data set
    that was current before (``say_failed_load``; the Data page shows the error itself).
    ``None`` only when even the default cannot be loaded.
    """
    dataset = st.session_state.get(DATASET_KEY)
    failure = load_failure()
    if dataset is None:
        dataset = use_default_dataset()
        if dataset is not None and failure is None:
            st.info(f"No data set was chosen yet, so this page uses the built-in **{DEFAULT_BUILTIN}** "
                    f"({escape_markdown(BUILTIN_DATASETS[DEFAULT_BUILTIN][1])}). Pick or upload another one on "
                    "the **Data** page.", icon=":material/info:")
            st.page_link("pages/data.py", label="Go to the Data page", icon=":material/folder_open:")
    if failure is not None and say_failed_load:
        using = f"still uses **{escape_markdown(dataset.name)}**" if dataset is not None else "has no data set"
        st.warning(f"**{escape_markdown(failure['name'])}** could not be loaded, so this page {using}. "
                   "The Data page says why.", icon=":material/error:")
        st.page_link("pages/data.py", label="Go to the Data page", icon=":material/folder_open:")
    if dataset is None:
        st.info("No data set yet: pick a data set on the **Data** page.")
        st.page_link("pages/data.py", label="Go to the Data page", icon=":material/folder_open:")
    return dataset


def page_dataset() -> tuple[Dataset, str]:
    """A page's data set and its key; the page stops here when there is none (:func:`current_dataset` said why)."""
    dataset = current_dataset()
    if dataset is None:
        st.stop()
    return dataset, str(st.session_state.get(DATASET_ID_KEY))


def use_default_dataset() -> Dataset | None:
    """Make the built-in ``DEFAULT_BUILTIN`` the current data set (a session's first); None if it cannot load."""
    try:
        dataset = load_builtin_cached(DEFAULT_BUILTIN)
    except Exception:  # a broken installation: the pages then point to the Data page
        return None
    set_dataset(dataset, builtin_key(DEFAULT_BUILTIN))
    return dataset


def current_device() -> str:
    return str(st.session_state.get(DEVICE_KEY, "auto"))


#: The Data page's widgets whose values the user sets (besides each upload's own, see ``app_support/uploads.py``).
DATA_WIDGETS = ("data_source", "builtin_name", "pp_log1p", "pp_hvg", "pp_top_genes", "pp_standardize")
#: The Gene panel page's view choices.
GENE_PANEL_WIDGETS = ("gp_scale", "gp_order")


def keep_widget_state(*keys: str) -> None:
    """Keep these widgets' values when the user visits another page and comes back.

    Streamlit forgets the state of widgets that were not drawn in a run;
    re-assigning the value marks it as user state, which survives. It must run
    in the runs that do not draw them, so it is called once, for every page's
    widgets, before every page (:func:`app_support.shell.before_page`); a call
    on the page that draws them keeps nothing.
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
