"""Small helpers shared by the pages: session-state keys, cached data loading, background jobs.

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

This module is not a page (leading underscore); pages import it as
``from pages._state import ...``.
"""
from __future__ import annotations

import hashlib
import io
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import streamlit as st

from seqattn.builtins import load_builtin
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
    from seqattn.io import list_columns

    return list_columns(io.BytesIO(_data), file_name=file_name)


@st.cache_resource(show_spinner="Reading the upload…", max_entries=4)
def load_upload_cached(digest: str, file_name: str, target: str, task: str, _data: bytes,
                       layer: str | None = None) -> Dataset:
    """Parse an upload once per (content hash, name, target, task, h5ad layer); ``_data`` is not hashed again."""
    from seqattn.io import load_table

    return load_table(io.BytesIO(_data), target=target, file_name=file_name, task=task, layer=layer)


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


class BackgroundJob:
    """Runs ``fn(..., callback=job.callback)`` in a thread so the page stays responsive.

    The thread never touches Streamlit: the callback only records progress
    (``step``, ``total``, ``message``) and returns ``stop_requested``, which a
    Stop button sets; seqattn selectors then stop and keep their picks so far.
    Poll ``done`` from the page (e.g. in an ``st.fragment(run_every=...)``).
    ``partial_kwarg="on_partial"`` passes :meth:`publish` to ``fn`` under that
    name, so ``fn`` can hand over results while it runs (kept in ``partial``).
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, partial_kwarg: str | None = None, **kwargs: Any) -> None:
        self.step, self.total, self.message = 0, 1, "starting…"
        self.partial: Any = None
        if partial_kwarg is not None:
            kwargs[partial_kwarg] = self.publish
        self.messages: deque[str] = deque(maxlen=1000)  # every progress message, oldest dropped first
        self.stop_requested = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            self.result = fn(*args, callback=self.callback, **kwargs)
        except BaseException as exc:  # reported on the page, never lost in a thread
            self.error = exc

    def callback(self, step: int, total: int, message: str) -> bool:
        self.step, self.total, self.message = int(step), max(int(total), 1), str(message)
        self.messages.append(self.message)
        return self.stop_requested

    def publish(self, value: Any) -> None:
        """Results so far, for the page to show while the job runs."""
        self.partial = value

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    @property
    def fraction(self) -> float:
        return min(max(self.step / self.total, 0.0), 1.0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished (tests); True when done."""
        self._thread.join(timeout)
        return self.done


def job_progress_panel(job_key: str, *, stop_key: str, stopping: str, text: Callable[[BackgroundJob], str],
                       stop_help: str | None = None, details: Callable[[BackgroundJob], None] | None = None,
                       run_every: float = 1.0) -> None:
    """Progress bar and Stop button for the ``BackgroundJob`` at ``st.session_state[job_key]``.

    Redrawn every ``run_every`` seconds as a fragment (the rest of the page is
    not re-run); when the job is done a full rerun lets the page collect it.
    ``details`` may draw more (e.g. the picks so far) under the bar.
    """

    @st.fragment(run_every=run_every)
    def panel() -> None:
        job: BackgroundJob | None = st.session_state.get(job_key)
        if job is None:
            return
        if job.done:
            st.rerun()
        st.progress(job.fraction, text=text(job))
        if details is not None:
            details(job)
        if job.stop_requested:
            st.caption(stopping)
        elif st.button("Stop", key=stop_key, help=stop_help):
            job.stop_requested = True
            st.caption(stopping)

    panel()
