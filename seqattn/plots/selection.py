"""Figures for the Sequential Attention page: the step-by-step animation and the teaching view.

:func:`selection_animation` draws one frame per pick with a play button and a
slider. Panels:

* **scores** — each candidate's score when the pick was made (SA: the softmax
  attention weight over the unselected features; the consensus of several runs:
  the share of the runs that picked it, :attr:`~seqattn.trace.SelectionTrace.is_consensus`): a sorted bar chart of the
  top ``max_bars`` candidates with the pick highlighted. Image data with more
  pixels than that gets a heatmap on the image grid instead, with the picks so
  far numbered on top; other data never gets a grid (positions on it would
  mean nothing: 765 genes are a ranked list, not a 28×28 picture).
* **gains** — marginal gain (bars) and validation metric (line) per step; the
  x axis is the pick order, so this panel is also the list of selected features.
* **image** (image data only) — the average image with the selected pixels
  marked, numbered in pick order.

Frames only carry what changes; hover texts, the average image and axis
layout sit in the base figure once. On the heatmap each frame ships the
scores as whole percentages of that step's top score (0–100: two or three
bytes each, 101 colour levels), and grids above ``MAX_GRID_CELLS`` cells are
max-pooled into b×b blocks (the picks stay at their exact cells), so a frame
stays under 10 kB up to 5,000+ features (``benchmarks/bench_plots.py``
measures build time, payload and the browser's play time).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from seqattn.plots.animation import play_controls
from seqattn.plots.export import ExportableFigure
from seqattn.safe_text import escape_plot_text, escape_plot_texts
from seqattn.stats import spearman

if TYPE_CHECKING:  # annotations only: the trace imports this module for trace.plot(), not the other way
    import pandas as pd

    from seqattn.trace import SelectionTrace

PICK_COLOR = "#d62728"  # the feature picked at this step
EARLIER_COLOR = "#ff7f0e"  # features picked at earlier steps
PINNED_COLOR = "#2ca02c"  # pinned by the user: selected from the start
CANDIDATE_COLOR = "#1f77b4"
DEFAULT_MAX_BARS = 80
MAX_GRID_CELLS = 2048  # above this the heatmap max-pools b×b blocks of the feature grid
SIG_DIGITS = 4  # scores are rounded for the payload; four digits is more than a chart shows
MAX_LABEL_CHARS = 28  # longer tick labels are shortened (the hover keeps the full name)
PLOT_HEIGHT_PX = 280  # height of the chart panels; the rows below grow with the tick labels


def short_labels(names: Sequence[str], limit: int = MAX_LABEL_CHARS) -> list[str]:
    """Tick labels of at most ``limit`` characters, still unique (a clash keeps the full names), escaped
    for plotly (a name is user text: ``<a href>`` in it must show as text, not become a link)."""
    short = [n if len(n) <= limit else n[: limit - 1] + "…" for n in map(str, names)]
    counts: dict[str, int] = {}
    for label in short:
        counts[label] = counts.get(label, 0) + 1
    return escape_plot_texts(label if counts[label] == 1 else str(name) for label, name in zip(short, names))


def _rotated_label_px(labels: Sequence[str], font_px: int = 9) -> int:
    """Vertical room a -60° tick label needs (about 0.6 em per character)."""
    longest = max((len(str(label)) for label in labels), default=0)
    return int(math.ceil(0.6 * font_px * longest * math.sin(math.radians(60)))) + 12


def _round(values: np.ndarray) -> np.ndarray:
    """Round to ``SIG_DIGITS`` significant digits (keeps NaN): smaller JSON, same picture."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.where(np.isfinite(values) & (values != 0), np.floor(np.log10(np.abs(values))), 0)
    factor = 10.0 ** (SIG_DIGITS - 1 - magnitude)
    return np.round(values * factor) / factor


def _plain(values: np.ndarray) -> list:
    """Nested lists with None for NaN. Frames must not carry numpy arrays: plotly
    serialises those as base64 typed arrays, which ``Plotly.animate`` does not
    decode, so an animated heatmap would go blank."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values), values, None).tolist()


def grid_shape(n_features: int, image_shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """Rows × columns to lay features out on: the image grid, else near-square."""
    if image_shape is not None and image_shape[0] * image_shape[1] == n_features:
        return int(image_shape[0]), int(image_shape[1])
    cols = max(1, math.ceil(math.sqrt(n_features)))
    return math.ceil(n_features / cols), cols


def _on_grid(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Features in index order, row-major on the grid, padded with NaN."""
    padded = np.full(shape[0] * shape[1], np.nan, dtype=object if values.dtype == object else np.float64)
    padded[: len(values)] = values
    return padded.reshape(shape)


def pool_size(shape: tuple[int, int]) -> int:
    """Side b of the square blocks the heatmap max-pools so it has at most ``MAX_GRID_CELLS`` cells."""
    cells = shape[0] * shape[1]
    return 1 if cells <= MAX_GRID_CELLS else math.ceil(math.sqrt(cells / MAX_GRID_CELLS))


def _pooled(grid: np.ndarray, b: int, reduce) -> np.ndarray:
    """Reduce b×b blocks of a (rows, cols) grid (padded at the edges); ``reduce(blocks)`` gets (R, C, b·b)."""
    if b == 1:
        return grid
    rows, cols = -(-grid.shape[0] // b), -(-grid.shape[1] // b)
    padded = np.full((rows * b, cols * b), np.nan if grid.dtype != object else "", dtype=grid.dtype)
    padded[: grid.shape[0], : grid.shape[1]] = grid
    blocks = padded.reshape(rows, b, cols, b).transpose(0, 2, 1, 3).reshape(rows, cols, b * b)
    return reduce(blocks)


def _percent_grid(scores: np.ndarray, shape: tuple[int, int], b: int) -> list:
    """Scores on the grid as whole % of the step's largest |score| (max over each b×b block), None where empty."""
    scores = np.asarray(scores, dtype=np.float64)
    top = np.nanmax(np.abs(scores)) if np.isfinite(scores).any() else 0.0
    percent = np.round(scores * (100.0 / top)) if top > 0 else np.where(np.isfinite(scores), 0.0, np.nan)
    grid = _pooled(_on_grid(percent, shape), b, _block_max)
    return [[None if v != v else int(v) for v in row] for row in grid.tolist()]


def _block_max(blocks: np.ndarray) -> np.ndarray:
    """Max over the last axis ignoring NaN; NaN where a block holds no candidate (no all-NaN warning)."""
    filled = np.where(np.isnan(blocks), -np.inf, blocks).max(axis=-1)
    return np.where(np.isfinite(filled), filled, np.nan)


def _block_names(names: np.ndarray) -> np.ndarray:
    """Hover text of a pooled cell: the names of the features it holds."""
    return np.array([[", ".join(n for n in cell if isinstance(n, str) and n) for cell in row] for row in names],
                    dtype=object)


def _colorbar_below(domain: Sequence[float]) -> dict:
    """A horizontal colour bar under the first panel, so it cannot cover the gains panel's axis."""
    return {"title": {"text": "% of the step's top score", "side": "top"}, "orientation": "h", "thickness": 10,
            "x": (domain[0] + domain[1]) / 2, "xanchor": "center", "len": 0.8 * (domain[1] - domain[0]),
            "y": -0.06, "yanchor": "top"}


def _gain_values(trace: SelectionTrace) -> tuple[np.ndarray, np.ndarray]:
    gains = np.array([np.nan if s.marginal_gain is None else s.marginal_gain for s in trace.steps])
    metrics = np.array([np.nan if s.val_metric is None else s.val_metric for s in trace.steps])
    return gains, metrics


def _padded_range(values: np.ndarray, include_zero: bool) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    low, high = float(finite.min()), float(finite.max())
    if include_zero:
        low, high = min(low, 0.0), max(high, 0.0)
    pad = 0.08 * (high - low) or 0.05 * max(abs(high), 1e-3)
    return [low - pad, high + pad]


def relative_to_uniform(trace: SelectionTrace) -> bool:
    """SA's attention is a softmax over m candidates; its differences show best against uniform (1/m). A
    consensus's scores are shares of runs, not attention: they are drawn as they are (in %)."""
    return trace.method == "sa" and not trace.is_consensus


def score_axis_label(trace: SelectionTrace) -> str:
    """What the score bars measure, for the figure's axis and the notebook's live view."""
    if trace.is_consensus:
        return f"share of the {trace.n_runs} runs that picked it (%)"
    return "attention vs the uniform share (%)" if relative_to_uniform(trace) else "score"


def _bar_values(scores: np.ndarray, trace: SelectionTrace) -> np.ndarray:
    """Scores as drawn: raw; SA attention as % above/below uniform (``(a·m − 1)·100``); a consensus's share
    of runs in %."""
    if trace.is_consensus:
        return scores * 100.0
    if not relative_to_uniform(trace):
        return scores
    m = int(np.isfinite(scores).sum())
    return (scores * m - 1.0) * 100.0


def ranked_candidates(trace: SelectionTrace, t: int, max_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``max_bars`` candidates at step ``t`` (best first; the pick always among them) and their
    values as drawn (:func:`score_axis_label`). One ranking for the animation and the notebook's live view."""
    step = trace.steps[t]
    scores = step.scores
    candidates = np.flatnonzero(np.isfinite(scores))
    order = candidates[np.argsort(-scores[candidates], kind="stable")][:max_bars]
    if step.feature not in order and np.isfinite(scores[step.feature]):  # the pick is always drawn
        order = np.append(order[: max_bars - 1], step.feature)
    return order, _bar_values(scores, trace)[order]


def score_bars(trace: SelectionTrace, t: int, max_bars: int, labels: Sequence[str] | None = None) -> dict:
    """Sorted bars of the top ``max_bars`` candidates' scores at step ``t`` (the pick always among them,
    highlighted and labelled #t)."""
    labels = short_labels(trace.feature_names) if labels is None else labels
    step = trace.steps[t]
    scores = step.scores
    order, shown = ranked_candidates(trace, t, max_bars)
    is_pick = order == step.feature
    if trace.is_consensus:
        hover = f"%{{hovertext}}<br>picked in %{{customdata:.0f}} of {trace.n_runs} runs<extra></extra>"
        custom = scores[order] * trace.n_runs  # the count of runs
    elif relative_to_uniform(trace):
        hover, custom = "%{hovertext}<br>%{y:+.3g}% vs uniform<br>attention %{customdata:.4g}<extra></extra>", \
            scores[order]
    else:
        hover, custom = "%{hovertext}<br>score %{y:.4g}<extra></extra>", scores[order]
    return {
        "type": "bar",
        "x": [labels[i] for i in order],
        "hovertext": escape_plot_texts(trace.feature_names[i] for i in order),
        "y": _plain(_round(shown)),
        "customdata": _plain(_round(custom)),
        "marker": {"color": np.where(is_pick, PICK_COLOR, CANDIDATE_COLOR).tolist()},
        "text": np.where(is_pick, f"#{t + 1}", "").tolist(),
        "textposition": "outside",
        "hovertemplate": hover,
    }


def _picks_scatter(trace: SelectionTrace, t: int, shape: tuple[int, int]) -> dict:
    """Markers numbered in pick order for the picks up to step ``t`` (and pinned features)."""
    features = list(trace.pinned) + trace.selected[: t + 1]
    labels = ["P"] * len(trace.pinned) + [str(i + 1) for i in range(t + 1)]
    colors = [PINNED_COLOR] * len(trace.pinned) + [EARLIER_COLOR] * t + [PICK_COLOR]
    rows, cols = np.divmod(np.asarray(features, dtype=np.int64), shape[1])
    return {
        "type": "scatter",
        "x": cols.tolist(),
        "y": rows.tolist(),
        "mode": "markers+text",
        "text": labels,
        "textfont": {"color": "white", "size": 10},
        "marker": {"size": 16, "color": colors, "line": {"color": "black", "width": 1}, "symbol": "square"},
        "hovertext": escape_plot_texts(trace.feature_names[i] for i in features),
        "hovertemplate": "%{hovertext}<extra>pick %{text}</extra>",
        "showlegend": False,
    }


def _gain_traces(trace: SelectionTrace, t: int) -> tuple[dict, dict]:
    """Gain bars and metric line, filled up to step ``t`` (NaN after, so the axes stay put)."""
    gains, metrics = _gain_values(trace)
    shown = np.arange(trace.k) <= t
    colors = np.where(np.arange(trace.k) == t, PICK_COLOR, EARLIER_COLOR)
    return (
        {"type": "bar", "y": _plain(np.where(shown, _round(gains), np.nan)), "marker": {"color": colors.tolist()}},
        {"type": "scatter", "y": _plain(np.where(shown, _round(metrics), np.nan))},
    )


@dataclass(frozen=True)
class _Panels:
    """What the animation draws for one trace: scores as ranked bars or (image data) a heatmap on the image
    grid, and whether the pixel panel is there."""

    use_bars: bool
    is_image: bool
    shape: tuple[int, int]
    block: int
    max_bars: int

    @classmethod
    def for_trace(cls, trace: SelectionTrace, image_shape: tuple[int, int] | None, max_bars: int) -> "_Panels":
        n = trace.n_features
        is_image = image_shape is not None and image_shape[0] * image_shape[1] == n
        # A grid means something only for pixels; any other data is a ranked list of its top candidates.
        use_bars = not is_image or n <= max_bars
        shape = grid_shape(n, image_shape if is_image else None)
        return cls(use_bars, is_image, shape, pool_size(shape), int(max_bars))

    def score_title(self, trace: SelectionTrace) -> str:
        what = ("Attention over the candidates" if relative_to_uniform(trace) else
                f"Share of the {trace.n_runs} runs that picked each candidate" if trace.is_consensus else
                "Scores of the candidates")
        if not self.use_bars:
            pooled = f" (max of {self.block}×{self.block} blocks)" if self.block > 1 else ""
            return f"{what}<br>on the image grid{pooled}"
        candidates = max(int(np.isfinite(s.scores).sum()) for s in trace.steps)
        return what + (f"<br>(top {self.max_bars} of {candidates}, sorted)" if candidates > self.max_bars
                       else "<br>(sorted)")


def selection_animation(
    trace: SelectionTrace,
    *,
    image_shape: tuple[int, int] | None = None,
    mean_image: np.ndarray | None = None,
    max_bars: int = DEFAULT_MAX_BARS,
    frame_ms: int = 800,
) -> go.Figure:
    """Animated figure, one frame per pick: scores, gains/metric, and (image data) the pixel mask.

    ``image_shape`` (rows, cols) turns on the image panel when it matches the
    number of features; ``mean_image`` (flat or 2-D) is drawn beneath the
    picks. Scores are sorted bars of the top ``max_bars`` candidates, except
    for images with more pixels than that: a heatmap on the image grid.
    The figure is an :class:`~seqattn.plots.export.ExportableFigure`: besides
    plotly's JSON it carries a light HTML rendering, so exported notebooks keep it.
    """
    if trace.k == 0:
        raise ValueError("The trace has no steps yet; run a selection first.")
    panels = _Panels.for_trace(trace, image_shape, max_bars)
    fig = _subplots(trace, panels)
    bar_labels = short_labels(trace.feature_names)
    step_labels = [f"{i + 1}. {name}" for i, name in enumerate(short_labels(trace.selected_names))]
    animated = _add_score_panel(fig, trace, panels, bar_labels)
    animated += _add_gain_panel(fig, trace, step_labels)
    if panels.is_image:
        animated += _add_image_panel(fig, trace, panels, mean_image)
    frames = [_frame(trace, t, panels, bar_labels, animated) for t in range(trace.k)]
    fig.update_layout(frames[0]["layout"])
    fig.frames = frames  # plain dicts: plotly validates them once here (go.Frame + assignment did it twice)
    _add_controls(fig, [f.name for f in fig.frames], frame_ms,
                  _rotated_label_px(step_labels + (bar_labels if panels.use_bars else [])))
    return fig


def _subplots(trace: SelectionTrace, panels: _Panels) -> go.Figure:
    """The empty panels side by side, with their two-line titles."""
    metric = trace.metric_name or "metric"
    # two-line titles: three one-line titles run into each other on a laptop-width page
    titles = [panels.score_title(trace), f"Marginal gain (Δ validation {metric})<br>and validation {metric}"]
    specs: list[dict] = [{}, {"secondary_y": True}]
    widths = [0.5, 0.5]
    if panels.is_image:
        titles.append("Selected pixels<br>over the average image")
        specs.append({})
        widths = [0.4, 0.35, 0.25]
    # wide gaps: the gains panel carries a second y axis (metric) on its right-hand side
    fig = make_subplots(rows=1, cols=len(specs), specs=[specs], subplot_titles=titles, column_widths=widths,
                        horizontal_spacing=0.11 if panels.is_image else 0.09, figure=ExportableFigure())
    fig.update_annotations(font_size=13)
    return fig


def _add_score_panel(fig: go.Figure, trace: SelectionTrace, panels: _Panels, bar_labels: list[str]) -> list[int]:
    """Step one's scores in the first panel; returns the indices of the traces the frames replace."""
    if panels.use_bars:
        bars = score_bars(trace, 0, panels.max_bars, bar_labels)
        fig.add_trace(go.Bar(**{k: v for k, v in bars.items() if k != "type"}, name="score", showlegend=False),
                      row=1, col=1)
        fig.update_yaxes(title_text=score_axis_label(trace), row=1, col=1)
        fig.update_xaxes(tickangle=-60, tickfont={"size": 9}, ticklabelstandoff=6, row=1, col=1)
        return [len(fig.data) - 1]
    block, shape = panels.block, panels.shape
    names = _pooled(_on_grid(np.array(escape_plot_texts(trace.feature_names), dtype=object), shape), block,
                    _block_names)
    z_range = [-100, 100] if any(np.nanmin(s.scores, initial=0.0) < 0 for s in trace.steps) else [0, 100]
    what = "best of " + (f"{block}×{block} cells: " if block > 1 else "")
    fig.add_trace(go.Heatmap(z=_percent_grid(trace.steps[0].scores, shape, block), customdata=names,
                             x0=(block - 1) / 2, dx=block, y0=(block - 1) / 2, dy=block,
                             zmin=z_range[0], zmax=z_range[1],
                             colorscale="Viridis", colorbar=_colorbar_below(fig.layout.xaxis.domain),
                             hovertemplate="%{customdata}<br>" + what + "%{z}% of the top score<extra></extra>",
                             name="score"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(**{k: v for k, v in _picks_scatter(trace, 0, shape).items() if k != "type"}),
                  row=1, col=1)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showgrid=False, zeroline=False,
                     row=1, col=1)
    fig.update_xaxes(showgrid=False, zeroline=False, constrain="domain", row=1, col=1)
    return [len(fig.data) - 2, len(fig.data) - 1]


def _add_gain_panel(fig: go.Figure, trace: SelectionTrace, step_labels: list[str]) -> list[int]:
    """Marginal gain bars and the validation metric line (second y axis), x = the picks in order."""
    metric = trace.metric_name or "metric"
    gain_bar, metric_line = _gain_traces(trace, 0)
    first = len(fig.data)
    fig.add_trace(go.Bar(x=step_labels, y=gain_bar["y"], marker=gain_bar["marker"], name=f"marginal gain (Δ {metric})",
                         hovertemplate="%{x}<br>gain %{y:.4g}<extra></extra>"), row=1, col=2, secondary_y=False)
    fig.add_trace(go.Scatter(x=step_labels, y=metric_line["y"], mode="lines+markers", name=f"validation {metric}",
                             line={"color": "black"}, hovertemplate="%{x}<br>" + metric + " %{y:.4g}<extra></extra>"),
                  row=1, col=2, secondary_y=True)
    gains, metrics = _gain_values(trace)
    fig.update_yaxes(title_text=f"marginal gain (Δ {metric})", range=_padded_range(gains, True), row=1, col=2,
                     secondary_y=False)
    metric_values = np.append(metrics, np.nan if trace.base_metric is None else trace.base_metric)
    fig.update_yaxes(title_text=metric, range=_padded_range(metric_values, False), row=1, col=2, secondary_y=True)
    fig.update_xaxes(tickangle=-60, tickfont={"size": 9}, ticklabelstandoff=6, row=1, col=2)
    return [first, first + 1]


def _add_image_panel(fig: go.Figure, trace: SelectionTrace, panels: _Panels,
                     mean_image: np.ndarray | None) -> list[int]:
    """The picks numbered on the pixel grid, over the average image when given."""
    shape = panels.shape
    if mean_image is not None:
        fig.add_trace(go.Heatmap(z=_round(np.asarray(mean_image, dtype=np.float64).reshape(shape)),
                                 colorscale="Greys", showscale=False, hoverinfo="skip"), row=1, col=3)
    fig.add_trace(go.Scatter(**{k: v for k, v in _picks_scatter(trace, 0, shape).items() if k != "type"}),
                  row=1, col=3)
    image_axes = fig.get_subplot(1, 3)
    # constrain="domain": keep square pixels by shrinking the panel, not by padding the axis range
    # no tick labels: pixel coordinates are in the hover, and labels here crowd the metric axis
    fig.update_xaxes(showgrid=False, zeroline=False, range=[-0.5, shape[1] - 0.5], constrain="domain",
                     showticklabels=False, row=1, col=3)
    fig.update_yaxes(showgrid=False, zeroline=False, range=[shape[0] - 0.5, -0.5], constrain="domain",
                     showticklabels=False, scaleanchor=image_axes.yaxis.anchor, row=1, col=3)
    return [len(fig.data) - 1]


def _frame(trace: SelectionTrace, t: int, panels: _Panels, bar_labels: list[str], animated: list[int]) -> dict:
    """Frame ``t``: only the animated traces, only what changes (scores, gains so far, picks, title)."""
    step = trace.steps[t]
    data: list[dict] = []
    layout: dict = {}
    if panels.use_bars:
        bars = score_bars(trace, t, panels.max_bars, bar_labels)
        data.append(bars)
        layout["yaxis"] = {"range": _bar_range([v for v in bars["y"] if v is not None], relative_to_uniform(trace))}
    else:
        data.append({"type": "heatmap", "z": _percent_grid(step.scores, panels.shape, panels.block)})
        data.append(_picks_scatter(trace, t, panels.shape))
    data += list(_gain_traces(trace, t))
    if panels.is_image:
        data.append(_picks_scatter(trace, t, panels.shape))
    remaining = int(np.isfinite(step.scores).sum())
    layout["title"] = {"text": f"Step {t + 1}/{trace.k}: picked {escape_plot_text(step.name)} among "
                               f"{remaining} candidates" + _confidence_note(trace, step)}
    return {"name": str(t + 1), "data": data, "traces": animated, "layout": layout}


def _bar_range(values: list[float], relative: bool) -> list[float]:
    """The score axis of one frame: room above the top bar for its label; SA's bars grow up/down from 0."""
    top = max(values) if values else 1.0
    if not relative:
        return [0, top * 1.18 or 1.0]
    bottom = min(min(values, default=0.0), 0.0)
    span = (max(top, 0.0) - bottom) or 1.0
    return [bottom - 0.05 * span, max(top, 0.0) + 0.18 * span]


def _add_controls(fig: go.Figure, names: list[str], frame_ms: int, labels_px: int) -> None:
    """Play/Pause (:func:`~seqattn.plots.animation.play_controls`) and the legend on one row below the
    charts, starting below the longest rotated tick label; the slider on its own full-width row beneath."""
    controls_px = labels_px + 16
    fig.update_layout(**play_controls(names, plot_px=PLOT_HEIGHT_PX, top_px=110, below_px=controls_px,
                                      prefix="step ", frame_ms=frame_ms))
    fig.update_layout(margin={"l": 60, "r": 30},
                      legend={"orientation": "h", "x": 0.3, "xanchor": "left", "y": -controls_px / PLOT_HEIGHT_PX,
                              "yanchor": "top"})


def _confidence_note(trace: SelectionTrace, step) -> str:
    """SA: ' — 3.40× the uniform share', plus ' (near-tie)' when the pick was uncertain; a consensus of several
    runs: ' — picked in 15/16 runs, kept 98%', plus ' (unstable)'; other methods: ''."""
    if trace.is_consensus:
        return f" — picked in {step.support}" + (" (unstable)" if step.unstable else "")
    if step.confidence is None or not relative_to_uniform(trace):
        return ""
    return f" — {step.confidence:.2f}× the uniform share" + (" (near-tie)" if step.near_tie else "")


#: Columns of ``trace.to_frame()`` that describe the attention inside one run: for a consensus they are
#: medians over the runs that made the pick (runner-up: the next pick) and answer a question the panel does not
#: ask, so its table leaves them out (the CSV and JSON downloads keep them).
WITHIN_RUN_COLUMNS = ("score", "confidence", "runner_up", "runner_up_weight", "separation", "near_tie", "flagged",
                      "seconds_since_start")


def picks_table(trace: SelectionTrace) -> "pd.DataFrame":
    """The Sequential Attention page's table of picks: ``trace.to_frame()``, for a consensus of several runs
    without the within-run columns (:data:`WITHIN_RUN_COLUMNS`): its verdict is "picked in" and "kept"."""
    frame = trace.to_frame()
    if trace.is_consensus:
        frame = frame.drop(columns=[c for c in WITHIN_RUN_COLUMNS if c in frame.columns])
    return frame


def true_gain_label(task: str) -> str:
    """What the teaching view's gain measures (greedy's criterion), unlike the animation's Δ metric."""
    loss = "cross-entropy" if task == "classification" else "mean squared error"
    return f"true gain (drop in validation {loss})"


def selection_figure(trace: SelectionTrace, dataset=None, **options) -> go.Figure:
    """The figure the app's Sequential Attention page shows and ``trace.plot()`` returns: the
    animation, with the pixel panel over the average image when ``dataset`` is image data."""
    if dataset is not None:
        from seqattn.plots.data import mean_image

        options.setdefault("image_shape", dataset.image_shape)
        options.setdefault("mean_image", mean_image(dataset))
    return selection_animation(trace, **options)


def attention_vs_gain_figure(
    names: Sequence[str], attention: Sequence[float], gains: Sequence[float], *, picked: str | None = None,
    gain_label: str = "true marginal gain",
) -> go.Figure:
    """Scatter of SA's attention score against the true greedy gain of each candidate at one step.

    If SA approximates greedy selection well, the points rise left to right
    and the picked feature sits at the top right; the title gives Spearman's ρ.
    Exported notebooks keep it (:class:`~seqattn.plots.export.ExportableFigure`).
    """
    attention = np.asarray(attention, dtype=np.float64)
    gains = np.asarray(gains, dtype=np.float64)
    rho = spearman(attention, gains)
    is_pick = np.array([name == picked for name in names])
    fig = ExportableFigure(go.Scatter(
        x=_round(attention), y=_round(gains), mode="markers", text=escape_plot_texts(names),
        marker={"color": np.where(is_pick, PICK_COLOR, CANDIDATE_COLOR).tolist(), "size": np.where(is_pick, 14, 8).tolist()},
        hovertemplate="%{text}<br>attention %{x:.4g}<br>gain %{y:.4g}<extra></extra>",
    ))
    rho_text = "undefined" if math.isnan(rho) else f"{rho:.2f}"
    fig.update_layout(title=f"Attention vs {gain_label} over {len(gains)} candidates — Spearman ρ = {rho_text}",
                      xaxis_title="attention score (SA)", yaxis_title=gain_label, height=420,
                      margin={"t": 60, "b": 50, "l": 60, "r": 20})
    return fig
