"""Jupyter helpers: a live view of a selection while it trains.

``view = LiveSelectionView(selector)`` is a progress bar plus a plotly
``FigureWidget`` of the candidates' scores at the latest pick; pass it as the
fit callback (``selector.fit(X, y, callback=view)``) and display it first
(``display(view)`` or leave it last in a cell). The bars are the app's
animation panel for that pick (one builder, ``seqattn.plots.selection``).
Needs ``ipywidgets`` and ``anywidget`` (the ``[notebook]`` extra); nothing
here is needed outside Jupyter.
"""
from __future__ import annotations

import html
from typing import Any

from seqattn.plots.selection import DEFAULT_MAX_BARS, relative_to_uniform, score_bars
from seqattn.safe_text import escape_plot_text
from seqattn.trace import SelectionTrace


class LiveSelectionView:
    """Progress and the attention over the candidates, updated at every pick while a selector fits.

    ``selector`` is anything whose ``trace_`` grows during ``fit`` (the
    :class:`~seqattn.SequentialAttentionSelector` does). Calling the view
    with ``(step, total, message)`` updates the bar and, when a new pick is in
    ``selector.trace_``, the figure; it never asks training to stop.
    ``shown`` lists the picks drawn so far, in order.
    """

    def __init__(self, selector: Any, *, max_bars: int = 30, description: str = "training"):
        import ipywidgets
        import plotly.graph_objects as go

        self.selector = selector
        self.max_bars = int(max_bars if max_bars else DEFAULT_MAX_BARS)
        self.shown: list[str] = []
        self._trace: SelectionTrace | None = None
        self.progress = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=description)
        self.status = ipywidgets.HTML(value="waiting for the first report…")
        self.figure = go.FigureWidget(
            go.Figure(go.Bar(x=[], y=[])),
            layout={"height": 320, "margin": {"t": 40, "b": 90}, "title": {"text": "no pick yet"},
                    "xaxis": {"tickangle": -45}},
        )
        self.widget = ipywidgets.VBox([ipywidgets.HBox([self.progress, self.status]), self.figure])

    def __call__(self, step: int, total: int, message: str) -> bool:
        if total:
            self.progress.value = min(1.0, step / total)
        self.status.value = html.escape(f"{step}/{total} · {message}")
        trace = getattr(self.selector, "trace_", None)
        if isinstance(trace, SelectionTrace):
            if trace is not self._trace:  # a new fit: start over
                self._trace, self.shown = trace, []
            while len(self.shown) < trace.k:
                self.show_step(trace, len(self.shown))
        return False

    def show_step(self, trace: SelectionTrace, t: int) -> None:
        """Draw the candidates' scores at pick ``t`` (0-based), the pick in red."""
        bars = score_bars(trace, t, self.max_bars)
        relative = relative_to_uniform(trace)
        with self.figure.batch_update():
            bar = self.figure.data[0]
            bar.x, bar.y, bar.customdata = bars["x"], bars["y"], bars["customdata"]
            bar.marker.color, bar.text, bar.textposition = bars["marker"]["color"], bars["text"], "outside"
            bar.hovertemplate = bars["hovertemplate"]
            self.figure.layout.title.text = (f"pick {t + 1}: {escape_plot_text(trace.steps[t].name)}"
                                             f" — top {len(bars['x'])} candidates")
            self.figure.layout.yaxis.title.text = "% vs uniform attention" if relative else "score"
        self.shown.append(trace.steps[t].name)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)
