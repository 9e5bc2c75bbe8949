"""Figures for the Compare page: every method drawn the same way, one colour per method.

* :func:`accuracy_vs_k_figure` — the key chart: test metric of a fresh model on
  each method's top-k, mean line with a ±1 std band over seeds;
* :func:`matrix_heatmap` — Jaccard@k overlap or rank correlation between methods;
* :func:`pixel_masks_figure` — selected pixels of every method side by side (image data);
* :func:`step_scores_figure` — SA attention vs OMP correlation vs true greedy gain
  of the same candidates at one step;
* :func:`shap_bar_figure` / :func:`shap_beeswarm_figure` — the SHAP summary, in plotly;
* :func:`timing_figure`, :func:`recovery_figure`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from seqattn.stats import spearman
from seqattn.evaluation.retrain import summarize_accuracy
from seqattn.safe_text import escape_plot_text, escape_plot_texts
from seqattn.selectors import METHOD_LABELS
from seqattn.trace import SelectionTrace

METHOD_COLORS = {
    "sa": "#d62728",
    "omp": "#1f77b4",
    "shap": "#9467bd",
    "greedy": "#2ca02c",
    "mutual_info": "#ff7f0e",
    "anova": "#8c564b",
    "variance": "#7f7f7f",
}
_EXTRA_COLORS = ["#17becf", "#bcbd22", "#e377c2", "#aec7e8", "#98df8a"]


def method_color(method: str, position: int = 0) -> str:
    return METHOD_COLORS.get(method, _EXTRA_COLORS[position % len(_EXTRA_COLORS)])


def label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _plot_label(method: str) -> str:
    """The method's label for a plotly label or hover text (a caller's own label may hold markup)."""
    return escape_plot_text(label(method))


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def accuracy_vs_k_figure(accuracy: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Mean test metric vs k per method, with a shaded ±1 std band over seeds.

    ``accuracy`` is the tidy frame of :func:`seqattn.evaluation.retrain.accuracy_vs_k`.
    """
    fig = go.Figure()
    if accuracy.empty:
        fig.update_layout(title="No results yet")
        return fig
    metric = str(accuracy["metric"].iloc[0])
    summary = summarize_accuracy(accuracy)
    n_seeds = int(summary["n"].max())
    for position, (method, part) in enumerate(summary.groupby("method", sort=False)):
        part = part.sort_values("k")
        color = method_color(method, position)
        ks, mean, std = part["k"].to_numpy(), part["mean"].to_numpy(), part["std"].to_numpy()
        fig.add_trace(go.Scatter(
            x=np.concatenate([ks, ks[::-1]]), y=np.concatenate([mean + std, (mean - std)[::-1]]),
            mode="lines", fill="toself", fillcolor=_rgba(color, 0.15), line={"width": 0}, hoverinfo="skip",
            showlegend=False, legendgroup=method, name=f"{_plot_label(method)} ±1 std",
        ))
        fig.add_trace(go.Scatter(
            x=ks, y=mean, mode="lines+markers", name=_plot_label(method), legendgroup=method,
            line={"color": color, "width": 2.5 if method == "sa" else 1.8}, marker={"size": 7},
            customdata=np.stack([std, part["n"].to_numpy()], axis=1),
            hovertemplate=(f"<b>%{{fullData.name}}</b><br>k=%{{x}}<br>{metric} %{{y:.3f}} ± %{{customdata[0]:.3f}}"
                           "<br>%{customdata[1]} seeds<extra></extra>"),
        ))
    fig.update_layout(
        title=title or f"Test {metric} of a fresh model on each method's top-k (mean ± std over {n_seeds} seeds)",
        xaxis_title="k (number of selected features)", yaxis_title=f"test {metric}",
        hovermode="x unified", legend={"orientation": "h", "y": -0.2}, margin={"t": 60},
    )
    fig.update_xaxes(tickmode="array", tickvals=sorted(summary["k"].unique()))
    return fig


def matrix_heatmap(matrix: pd.DataFrame, title: str, zmin: float = 0.0, zmax: float = 1.0,
                   colorscale: str = "Blues") -> go.Figure:
    """A labelled method × method heatmap with the numbers written in the cells."""
    names = [_plot_label(m) for m in matrix.index]
    fig = go.Figure(go.Heatmap(
        z=matrix.to_numpy(dtype=float), x=names, y=names, zmin=zmin, zmax=zmax, colorscale=colorscale,
        texttemplate="%{z:.2f}", hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
    ))
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, margin={"t": 60})
    return fig


def pixel_masks_figure(traces: Mapping[str, SelectionTrace], image_shape: tuple[int, int], k: int,
                       background: np.ndarray | None = None, columns: int = 4) -> go.Figure:
    """Each method's first ``k`` pixels on the image grid (numbered in pick order).

    ``background`` (e.g. the mean image) is drawn in grey underneath.
    """
    rows_n, cols_n = image_shape
    methods = list(traces)
    ncols = min(columns, max(1, len(methods)))
    nrows = int(np.ceil(len(methods) / ncols)) if methods else 1
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[_plot_label(m) for m in methods],
                        horizontal_spacing=0.03, vertical_spacing=0.08)
    base = np.zeros(image_shape) if background is None else np.asarray(background, dtype=float).reshape(image_shape)
    for position, method in enumerate(methods):
        r, c = position // ncols + 1, position % ncols + 1
        fig.add_trace(go.Heatmap(z=base, colorscale="Greys", showscale=False, hoverinfo="skip"), row=r, col=c)
        chosen = traces[method].selected[:k]
        ys, xs = np.divmod(np.asarray(chosen, dtype=int), cols_n)
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers+text", text=[str(i + 1) for i in range(len(chosen))],
            textfont={"color": "white", "size": 10},
            marker={"color": method_color(method, position), "size": 16, "symbol": "square",
                    "line": {"color": "white", "width": 1}},
            hovertext=escape_plot_texts(traces[method].feature_names[i] for i in chosen),
            hovertemplate="pick %{text}: %{hovertext}<extra></extra>", showlegend=False,
        ), row=r, col=c)
        fig.update_xaxes(range=[-0.5, cols_n - 0.5], showticklabels=False, row=r, col=c)
        fig.update_yaxes(range=[rows_n - 0.5, -0.5], showticklabels=False, scaleanchor=f"x{position + 1}"
                         if position else "x", row=r, col=c)
    fig.update_layout(title=f"First {k} selected pixels of each method (numbers = pick order)",
                      height=260 * nrows + 80, margin={"t": 80})
    return fig


def step_scores_figure(frame: pd.DataFrame, top: int = 20) -> go.Figure:
    """Three bar panels for the same candidates at one step, ordered by true greedy gain.

    ``frame`` comes from :func:`seqattn.evaluation.compare.step_scores`. Panel titles
    give Spearman ρ of SA attention and of OMP correlation against the gains
    (over all candidates, not only the ``top`` drawn).
    """
    ordered = frame.sort_values("greedy_gain", ascending=False).head(top).iloc[::-1]
    rho_sa = spearman(frame["sa_attention"].to_numpy(float), frame["greedy_gain"].to_numpy(float))
    rho_omp = spearman(frame["omp_correlation"].to_numpy(float), frame["greedy_gain"].to_numpy(float))
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03, subplot_titles=[
        "True greedy gain (refit)", f"SA attention (ρ vs gain = {rho_sa:.2f})",
        f"OMP |Xᵀr| (ρ vs gain = {rho_omp:.2f})",
    ])
    picked = ordered["sa_pick"].to_numpy()
    # Dots, not bars: SA's softmax weights sit in a narrow band far from 0, and only their order matters.
    for col, (column, color) in enumerate((("greedy_gain", METHOD_COLORS["greedy"]),
                                           ("sa_attention", "#7f9fc7"), ("omp_correlation", METHOD_COLORS["omp"])),
                                          start=1):
        fig.add_trace(go.Scatter(
            x=ordered[column], y=escape_plot_texts(ordered["name"]), mode="markers", showlegend=False,
            marker={"color": np.where(picked, METHOD_COLORS["sa"], color).tolist(),
                    "size": np.where(picked, 13, 9).tolist(), "symbol": "circle"},
            hovertemplate="%{y}: %{x:.4g}<extra></extra>",
        ), row=1, col=col)
    step = frame.attrs.get("step")
    title = "Candidates at one step, scored three ways" if step is None else (
        f"Step {step + 1}: the same candidates scored three ways ({_given(step, frame.attrs.get('selected_before'))}; "
        f"red = SA's pick)")
    fig.update_layout(title=title, height=max(320, 22 * len(ordered) + 120), margin={"t": 80})
    return fig


def _given(step: int, selected_before: list[int] | None) -> str:
    """What the candidates at ``step`` were scored against: "nothing selected yet", "given SA's first pick",
    "given SA's first 3 picks and 2 pinned features"."""
    pinned = len(selected_before or []) - step
    parts = ([] if step == 0 else ["SA's first pick" if step == 1 else f"SA's first {step} picks"])
    if pinned > 0:
        parts.append(f"{pinned} pinned feature{'s' if pinned != 1 else ''}")
    return "given " + " and ".join(parts) if parts else "nothing selected yet"


def shap_bar_figure(explanation, top: int = 20) -> go.Figure:
    """Mean |SHAP value| per feature, stacked by output (class), the top features only."""
    by_output = explanation.importance_by_output()
    order = np.argsort(-explanation.importance)[:top][::-1]
    fig = go.Figure()
    for j, name in enumerate(explanation.output_names):
        fig.add_trace(go.Bar(
            x=by_output[order, j], y=escape_plot_texts(explanation.feature_names[i] for i in order),
            orientation="h", name=escape_plot_text(name),
            hovertemplate="%{fullData.name}<br>%{y}: %{x:.4g}<extra></extra>",
        ))
    fig.update_layout(barmode="stack", title=f"SHAP: mean |SHAP value| ({explanation.explainer} explainer)",
                      xaxis_title="mean |SHAP value| (model output units)",
                      height=max(320, 22 * len(order) + 120), legend={"title": "output"})
    return fig


def shap_beeswarm_figure(explanation, top: int = 15, random_state: int = 0) -> go.Figure:
    """Beeswarm: one dot per explained row and feature, x = SHAP value, colour = feature value.

    For classification the SHAP value is the one for each row's *true* class
    (positive = pushes the model towards the right answer); for regression the
    single output. Feature values are min-max scaled per feature for colour.
    """
    values = explanation.values
    if values.shape[2] > 1 and explanation.labels is not None:
        per_row = values[np.arange(values.shape[0]), :, np.asarray(explanation.labels, dtype=int)]
        axis_title = "SHAP value for the row's true class"
    else:
        per_row = values[:, :, 0]
        axis_title = "SHAP value"
    order = np.argsort(-explanation.importance)[:top]
    rng = np.random.default_rng(random_state)
    xs, ys, colors, texts = [], [], [], []
    for position, feature in enumerate(order[::-1]):
        raw = explanation.data[:, feature]
        span = raw.max() - raw.min()
        colour = (raw - raw.min()) / span if span > 0 else np.full(len(raw), 0.5)
        xs.append(per_row[:, feature])
        ys.append(position + rng.uniform(-0.3, 0.3, len(raw)))
        colors.append(colour)
        shown = escape_plot_text(explanation.feature_names[feature])
        texts.extend(f"{shown} = {v:.3g}" for v in raw)
    fig = go.Figure(go.Scatter(
        x=np.concatenate(xs) if xs else [], y=np.concatenate(ys) if ys else [], mode="markers",
        marker={"color": np.concatenate(colors) if colors else [], "colorscale": "RdBu_r", "size": 5,
                "opacity": 0.8, "colorbar": {"title": "feature value", "tickvals": [0, 1],
                                              "ticktext": ["low", "high"]}},
        text=texts, hovertemplate="%{text}<br>SHAP %{x:.4g}<extra></extra>", showlegend=False,
    ))
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(order))),
                     ticktext=escape_plot_texts(explanation.feature_names[i] for i in order[::-1]))
    fig.add_vline(x=0, line={"color": "#888", "width": 1})
    fig.update_layout(title=f"SHAP beeswarm ({explanation.values.shape[0]} held-out rows)",
                      xaxis_title=axis_title, height=max(320, 26 * len(order) + 120))
    return fig


def timing_figure(timings: pd.DataFrame) -> go.Figure:
    """Wall time per method (horizontal bars; log scale when times span > 100×)."""
    frame = timings.sort_values("seconds")
    colors = [method_color(m, i) for i, m in enumerate(frame["method"])]
    text = [f"{s:.2f} s" + (" (reused)" if r else "") for s, r in zip(frame["seconds"], frame["reused"])]
    fig = go.Figure(go.Bar(x=frame["seconds"], y=[_plot_label(m) for m in frame["method"]], orientation="h",
                           marker={"color": colors}, text=text, textposition="auto",
                           hovertemplate="%{y}: %{x:.3f} s<extra></extra>"))
    positive = frame["seconds"][frame["seconds"] > 0]
    log = len(positive) > 1 and positive.max() / positive.min() > 100
    fig.update_layout(title="Wall time of each method on this data (includes its per-step validation refits)",
                      xaxis_title="seconds" + (" (log scale)" if log else ""), xaxis_type="log" if log else "linear",
                      height=max(260, 40 * len(frame) + 120))
    return fig


def recovery_figure(table: pd.DataFrame) -> go.Figure:
    """Share of the planted features in each method's top-k."""
    fig = go.Figure()
    for position, (method, part) in enumerate(table.groupby("method", sort=False)):
        fig.add_trace(go.Scatter(x=part["k"], y=part["recall"], mode="lines+markers", name=_plot_label(method),
                                 line={"color": method_color(method, position)}))
    fig.update_layout(title="Recovery of the planted informative features", xaxis_title="k",
                      yaxis_title="share of planted features found", yaxis_range=[-0.05, 1.05])
    return fig


def ranking_frame(traces: Mapping[str, SelectionTrace], k: int, truth: Sequence[int] | None = None) -> pd.DataFrame:
    """Side-by-side ranked feature names (a ✓ marks planted features when ``truth`` is given)."""
    truth = set(int(i) for i in truth) if truth is not None else set()
    columns = {}
    for method, trace in traces.items():
        names = [trace.feature_names[i] + (" ✓" if i in truth else "") for i in trace.selected[:k]]
        columns[label(method)] = names + [""] * (k - len(names))
    return pd.DataFrame(columns, index=pd.RangeIndex(1, k + 1, name="rank"))
