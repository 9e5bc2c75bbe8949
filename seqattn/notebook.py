"""Jupyter helper: a live view of a selection while it trains.

``view = LiveSelectionView(selector)`` is a progress line plus a ranked bar chart of the
candidates' scores at the latest pick; pass it as the fit callback
(``selector.fit(X, y, callback=view)``), after ``display(view)`` or without it (the first report
displays it). The ranking is the app's animation panel for that pick
(:func:`seqattn.plots.selection.ranked_candidates`).

It is drawn as plain HTML and SVG and updated in place through IPython display ids
(``update_display_data``, which JupyterLab, Notebook 7 and VS Code apply live). No widget state
and no plotly.js are stored: the saved notebook keeps only the final picture (a few kB; the
plotly ``FigureWidget`` this replaces stored 5 MB of plotly.js per view), and ``jupyter nbconvert
--to html`` shows it offline. Needs IPython only.
"""
from __future__ import annotations

import html
import time
import uuid
from typing import Any

import numpy as np

from seqattn.plots.selection import (CANDIDATE_COLOR, PICK_COLOR, ranked_candidates, relative_to_uniform,
                                     score_axis_label)
from seqattn.progress import ProgressTracker
from seqattn.trace import SelectionTrace

#: Progress redraws are at most this often (a pick always redraws at once).
PROGRESS_INTERVAL_S = 0.25
ROW_PX, LABEL_PX, BAR_PX, VALUE_PX = 16, 170, 330, 70
MAX_NAME_CHARS = 26


class LiveSelectionView:
    """Progress and the attention over the candidates, updated at every pick while a selector fits.

    ``selector`` is anything whose ``trace_`` grows during ``fit`` (the
    :class:`~seqattn.SequentialAttentionSelector` does). Calling the view with
    ``(step, total, message)`` updates the progress line (monotone, "about … (estimated)" while
    SA's automatic budget only estimates its length) and, for every new pick in
    ``selector.trace_``, the chart; it never asks training to stop. ``shown`` lists the picks drawn
    so far, in order; ``chart_html`` and ``progress_html`` are what is on screen.
    """

    def __init__(self, selector: Any, *, max_bars: int = 30, description: str = "training"):
        self.selector = selector
        self.max_bars = max(1, int(max_bars))
        self.description = str(description)
        self.shown: list[str] = []
        self.progress = ProgressTracker()
        self.message = "waiting for the first report…"
        self.chart_html = "<p><i>no pick yet</i></p>"
        self._trace: SelectionTrace | None = None
        self._id = "seqattn-live-" + uuid.uuid4().hex[:12]
        self._displayed = False
        self._last_progress = 0.0

    # ------------------------------------------------------------------ callback
    def __call__(self, step: int, total: int, message: str) -> bool:
        trace = getattr(self.selector, "trace_", None)
        trace = trace if isinstance(trace, SelectionTrace) else None
        if trace is not None and trace is not self._trace:  # a new fit: start over
            self._trace, self.shown, self.progress = trace, [], ProgressTracker()
        self.progress.update(step, total)
        self.message = str(message)
        picked = False
        while trace is not None and len(self.shown) < trace.k:
            self.show_step(trace, len(self.shown))
            picked = True
        now = time.monotonic()
        if picked or now - self._last_progress >= PROGRESS_INTERVAL_S or self.progress.fraction >= 1.0:
            self._last_progress = now
            self._push("progress", self.progress_html())
        return False

    def show_step(self, trace: SelectionTrace, t: int) -> None:
        """Draw the candidates' scores at pick ``t`` (0-based), the pick in red."""
        self.chart_html = ranked_bars_html(trace, t, self.max_bars)
        self.shown.append(trace.steps[t].name)
        self._push("chart", self.chart_html)

    # ------------------------------------------------------------------ display
    def progress_html(self) -> str:
        percent = 100 * self.progress.fraction
        return (f"<div class='seqattn-live-progress'><progress value='{self.progress.fraction:.3f}' max='1' "
                f"style='width: 260px; vertical-align: middle'></progress> "
                f"{html.escape(self.description)} {percent:.0f}% · step {html.escape(self.progress.label())} · "
                f"{html.escape(self.message)}</div>")

    def _repr_html_(self) -> str:
        return self.progress_html() + self.chart_html

    def _ipython_display_(self) -> None:
        """Two outputs with display ids, so the callback can update them in place."""
        from IPython.display import display

        display({"text/html": self.progress_html(), "text/plain": self._plain_progress()}, raw=True,
                display_id=f"{self._id}-progress")
        display({"text/html": self.chart_html, "text/plain": f"picks so far: {', '.join(self.shown) or '—'}"},
                raw=True, display_id=f"{self._id}-chart")
        self._displayed = True

    def _plain_progress(self) -> str:
        return f"{self.description} {100 * self.progress.fraction:.0f}% · step {self.progress.label()} · {self.message}"

    def _push(self, part: str, markup: str) -> None:
        """Redraw one part on screen; the first redraw displays the view if nobody did."""
        from IPython import get_ipython

        if getattr(get_ipython(), "kernel", None) is None:  # not a Jupyter kernel (plain Python, IPython in a
            return  # terminal): nothing to draw on, the attributes still follow the fit
        if not self._displayed:
            self._ipython_display_()
            return
        from IPython.display import update_display

        plain = self._plain_progress() if part == "progress" else f"picks so far: {', '.join(self.shown)}"
        update_display({"text/html": markup, "text/plain": plain}, raw=True, display_id=f"{self._id}-{part}")


def ranked_bars_html(trace: SelectionTrace, t: int, max_bars: int) -> str:
    """Pick ``t``'s top candidates as horizontal SVG bars (names readable at any length; the pick red).

    SA's attention is drawn as % above/below the uniform share, from a zero line; a consensus's share of runs
    (in %) and other methods' scores from zero. Names are user text: escaped, long ones shortened with the full name on hover."""
    order, values = ranked_candidates(trace, t, max_bars)
    step = trace.steps[t]
    relative = relative_to_uniform(trace)
    low, high = min(0.0, float(np.nanmin(values))), max(0.0, float(np.nanmax(values)))
    span = (high - low) or 1.0
    zero = LABEL_PX + BAR_PX * (0.0 - low) / span
    rows = []
    for row, (feature, value) in enumerate(zip(order, values)):
        name = trace.feature_names[feature]
        short = name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"
        end = LABEL_PX + BAR_PX * (float(value) - low) / span
        y = row * ROW_PX
        colour = PICK_COLOR if feature == step.feature else CANDIDATE_COLOR
        shown = f"{value:+.0f}%" if relative else f"{value:.0f}%" if trace.is_consensus else f"{value:.3g}"
        rows.append(
            f"<g><title>{html.escape(name)}: {html.escape(shown)}</title>"
            f"<text x='{LABEL_PX - 6}' y='{y + 12}' text-anchor='end'>{html.escape(short)}</text>"
            f"<rect x='{min(zero, end):.1f}' y='{y + 2}' width='{abs(end - zero):.1f}' height='{ROW_PX - 4}' "
            f"fill='{colour}'/><text x='{max(zero, end) + 4:.1f}' y='{y + 12}'>{html.escape(shown)}</text></g>")
    height = len(order) * ROW_PX
    candidates = int(np.isfinite(step.scores).sum())
    title = (f"pick {t + 1}: <b>{html.escape(step.name)}</b> — top {len(order)} of {candidates} candidates "
             f"({score_axis_label(trace)})")
    return (f"<div class='seqattn-live-chart'><p style='margin: 4px 0'>{title}</p>"
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{LABEL_PX + BAR_PX + VALUE_PX}' height='{height}' "
            f"style='font: 11px sans-serif'><line x1='{zero:.1f}' x2='{zero:.1f}' y1='0' y2='{height}' "
            f"stroke='#999'/>{''.join(rows)}</svg></div>")
