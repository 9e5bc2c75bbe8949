"""Background jobs for the pages: a thread per long computation, and its progress-and-Stop panel.

The job's thread never touches Streamlit (``st.*`` calls belong to the script
run); it only records progress that the page's fragment polls.
"""
from __future__ import annotations

import threading
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
        self.step, self.total, self.message = 0, 1, "starting…"
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
        if details is not None:
            details(job)
        if job.stop_requested:
            st.caption(stopping)
        elif st.button("Stop", key=stop_key, help=stop_help):
            job.stop_requested = True
            st.caption(stopping)

    panel()
