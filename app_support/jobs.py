"""Background jobs for the pages: a thread per long computation, and its progress-and-Stop panel.

The job's thread never touches Streamlit (``st.*`` calls belong to the script
run); it only records progress that the page's fragment polls.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import streamlit as st

from seqattn.progress import ProgressTracker
from seqattn.safe_text import escape_markdown


class BackgroundJob:
    """Runs ``fn(..., callback=job.callback)`` in a thread so the page stays responsive.

    The thread never touches Streamlit: the callback only records progress
    (``step``, ``total``, ``message``) and returns ``stop_requested``, which a
    Stop button sets; seqattn selectors then stop and keep their picks so far.
    Poll ``done`` from the page (e.g. in an ``st.fragment(run_every=...)``).

    ``meta`` holds what the page needs to file the result when the job is done
    (e.g. the data set key and settings it was started for); it is given at
    construction and read-only afterwards, so pages never bolt attributes on.
    ``partial_kwarg="on_partial"`` passes :meth:`publish` to ``fn`` under that
    name, so ``fn`` can hand over results while it runs (kept in ``partial``).
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, meta: Mapping[str, Any] | None = None,
                 partial_kwarg: str | None = None, **kwargs: Any) -> None:
        self.meta: Mapping[str, Any] = MappingProxyType(dict(meta or {}))
        self.message = "starting…"
        self.started = self.updated = time.monotonic()  # when it started, when it last reported progress
        self._progress = ProgressTracker()  # the bar never moves back when a run revises its estimated total
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
        self._progress.update(step, total)
        self.message = str(message)
        self.updated = time.monotonic()
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
        """The bar's position: monotone, and below 100% until a run with an estimated total ends."""
        return self._progress.fraction

    @property
    def steps_text(self) -> str:
        """``"470/615"``, or ``"470 of about 615 (estimated)"`` while the run only estimates its total."""
        return self._progress.label()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished (tests); True when done."""
        self._thread.join(timeout)
        return self.done

    def quiet_seconds(self) -> float:
        """Seconds since the job last reported progress (or started)."""
        return time.monotonic() - self.updated


#: A job silent this long gets "still working…" under its bar, so the page never looks frozen.
QUIET_SECONDS = 8.0


def take_finished_job(job_key: str, *, error_key: str, what: str, dataset_key: str | None = None,
                      plain_errors: tuple[type[BaseException], ...] = (ValueError,)) -> BackgroundJob | None:
    """The job at ``st.session_state[job_key]`` once it has finished, removed from session state for the page
    to file its result; None while it runs or when there is none.

    A job started for another data set than ``dataset_key`` (the user switched while it ran) is dropped: its
    result belongs to other data. A failed job's error is kept under ``error_key`` as "<what> failed — …"
    (:func:`show_job_error` shows it; ``plain_errors`` read well without their type's name) and None is
    returned; a success clears that error.
    """
    job: BackgroundJob | None = st.session_state.get(job_key)
    if job is None or not job.done:
        return None
    st.session_state.pop(job_key)
    if dataset_key is not None and job.meta.get("dataset_key") != dataset_key:
        return None
    if job.error is not None:
        prefix = "" if isinstance(job.error, plain_errors) else f"{type(job.error).__name__}: "
        st.session_state[error_key] = f"{what} failed — {prefix}{job.error}"
        return None
    st.session_state.pop(error_key, None)
    return job


def show_job_error(error_key: str) -> None:
    """The last failed job's message (kept by :func:`take_finished_job`), as plain text."""
    if error_key in st.session_state:
        st.error(escape_markdown(st.session_state[error_key]))


def job_progress_panel(job_key: str, *, stop_key: str, stopping: str, text: Callable[[BackgroundJob], str],
                       stop_help: str | None = None, details: Callable[[BackgroundJob], None] | None = None,
                       run_every: float = 1.0) -> None:
    """Progress bar and Stop button for the ``BackgroundJob`` at ``st.session_state[job_key]``.

    Redrawn every ``run_every`` seconds as a fragment (the rest of the page is
    not re-run); when the job is done a full rerun lets the page collect it.
    The progress text is shown as plain text (messages name features, which are user text).
    ``details`` may draw more (e.g. the picks so far) under the bar.
    """

    @st.fragment(run_every=run_every)
    def panel() -> None:
        job: BackgroundJob | None = st.session_state.get(job_key)
        if job is None:
            return
        if job.done:
            st.rerun()
        st.progress(job.fraction, text=escape_markdown(text(job)))  # messages name features: user text
        quiet = job.quiet_seconds()
        if quiet >= QUIET_SECONDS:  # a long step without progress reports: say it is alive, and for how long
            st.caption(f"Still working on this step: {quiet:.0f} s since its last progress report, "
                       f"{time.monotonic() - job.started:.0f} s in all.")
        if details is not None:
            details(job)
        if job.stop_requested:
            st.caption(stopping)
        elif st.button("Stop", key=stop_key, help=stop_help):
            job.stop_requested = True
            st.caption(stopping)

    panel()
