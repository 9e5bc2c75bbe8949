"""Figures for the Structured pruning page: the unit masks phase by phase, survivors, quality vs latency.

The animation follows the idiom of :func:`seqattn.plots.sparsity.block_mask_animation`
and SA's selection animation: one frame per snapshot, ▶ Play / ❚❚ Pause and a
slider below; frames carry plain lists (``None`` = pruned), never numpy arrays.
Latency bars reuse :func:`seqattn.plots.sparsity.latency_figure` (:func:`structured_latency_figure`).
Every figure is an :class:`~seqattn.plots.export.ExportableFigure`, so notebook 04's HTML export keeps it.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from seqattn.plots.animation import play_controls
from seqattn.plots.export import ExportableFigure
from seqattn.plots.sparsity import latency_figure
from seqattn.sparsity.structured import UNIT_KINDS
from seqattn.sparsity.structured_study import StructuredPruningResult

METHOD_COLORS = {"SA++": "#d62728", "magnitude": "#1f77b4", "gradient": "#2ca02c", "random": "#7f7f7f"}
KIND_TITLES = {"heads": "attention heads (layer × head)", "mlp": "MLP blocks (layer × block)",
               "embed": "embedding-dimension blocks", "layers": "transformer blocks"}


def _grid_values(values: np.ndarray, mask: np.ndarray, shape: tuple[int, int]) -> list:
    z = np.where(mask, np.round(values.astype(np.float64), 4), np.nan).reshape(shape)
    return np.where(np.isfinite(z), z, None).tolist()


def _kind_labels(result: StructuredPruningResult, kind: str) -> tuple[list[str], list[str]]:
    rows, cols = result.grid[kind]
    if kind == "heads":
        return [f"L{l}" for l in range(rows)], [f"H{h}" for h in range(cols)]
    if kind == "mlp":
        width = len(result.unit_names[kind]) // rows
        names = result.unit_names[kind][:width]
        return [f"L{l}" for l in range(rows)], [n.split(".", 1)[1] for n in names]
    return [""], list(result.unit_names[kind])


def unit_mask_animation(result: StructuredPruningResult, fraction: float, seed: int | None = None) -> go.Figure:
    """Attention ``A`` (mean 1) on the kept units of every kind, pruned units blank, one frame per SA++ snapshot."""
    run = result.run("SA++", fraction, seed)
    snaps = run.snapshots
    if not snaps:
        raise ValueError("This SA++ run recorded no snapshots.")
    kinds = [k for k in UNIT_KINDS if k in run.masks]
    kept = [s.attention[k][s.mask[k]] for s in snaps for k in kinds if s.mask[k].any()]
    # the colour range spans the kept units' attention: it stays near 1, and a 0-based scale would hide it
    vmin, vmax = min(float(np.min(a)) for a in kept), max(float(np.max(a)) for a in kept)
    if vmax - vmin < 1e-3:
        vmin, vmax = vmin - 0.05, vmax + 0.05
    heights = [result.grid[k][0] + 1 for k in kinds]
    fig = make_subplots(rows=len(kinds), cols=1, subplot_titles=[KIND_TITLES[k] for k in kinds],
                        row_heights=heights, vertical_spacing=0.2, figure=ExportableFigure())

    def title(s) -> str:
        shares = ", ".join(f"{UNIT_KINDS[k]} {100 * (1 - s.mask[k].mean()):.0f}%" for k in kinds)
        return f"{s.label}: removed {shares} (target {100 * s.target:.0f}%), val loss {s.val_loss:.3f}"

    for i, kind in enumerate(kinds):
        ys, xs = _kind_labels(result, kind)
        fig.add_trace(go.Heatmap(z=_grid_values(snaps[0].attention[kind], snaps[0].mask[kind], result.grid[kind]),
                                 x=xs, y=ys, coloraxis="coloraxis", xgap=1, ygap=1,
                                 hovertemplate="%{y} %{x}<br>A = %{z:.3f}<extra>" + kind + "</extra>"),
                      row=i + 1, col=1)
        fig.update_yaxes(autorange="reversed", row=i + 1, col=1)
    fig.frames = [go.Frame(data=[go.Heatmap(z=_grid_values(s.attention[k], s.mask[k], result.grid[k])) for k in kinds],
                           traces=list(range(len(kinds))), name=str(j), layout=go.Layout(title_text=title(s)))
                  for j, s in enumerate(snaps)]
    # the buttons start below the lowest panel's tick labels (drawn upright, or turned when they crowd)
    labels_px = 20 + 7 * max(len(x) for x in _kind_labels(result, kinds[-1])[1])
    fig.update_layout(
        title=title(snaps[0]),
        coloraxis=dict(colorscale="Viridis", cmin=vmin, cmax=vmax, colorbar=dict(title="A (mean 1)")),
        **play_controls([frame.name for frame in fig.frames], plot_px=70 * sum(heights) - 50, top_px=100,
                        below_px=labels_px),
    )
    return fig


def survivors_figure(result: StructuredPruningResult, fraction: float, kind: str = "heads",
                     seed: int | None = None) -> go.Figure:
    """Which units each method kept at ``fraction`` (filled = kept), one panel per method."""
    methods = result.methods
    ys, xs = _kind_labels(result, kind)
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, horizontal_spacing=0.04,
                        figure=ExportableFigure())
    for i, method in enumerate(methods):
        kept = result.survivors(method, fraction, kind, seed)
        fig.add_trace(go.Heatmap(z=kept.tolist(), x=xs, y=ys, zmin=0, zmax=1, showscale=False, xgap=2, ygap=2,
                                 colorscale=[[0, "#f0f0f0"], [1, METHOD_COLORS.get(method, "#444")]],
                                 text=np.where(kept == 1, "kept", "removed").tolist(),
                                 hovertemplate="%{y} %{x}: %{text}<extra>" + method + "</extra>"),
                      row=1, col=i + 1)
        fig.update_yaxes(autorange="reversed", row=1, col=i + 1, showticklabels=i == 0)
    rows, _ = result.grid[kind]
    fig.update_layout(title=f"{KIND_TITLES[kind].split(' (')[0]} kept at {fraction:.0%} removed (filled = kept)",
                      height=160 + 40 * rows)
    return fig


def _mean_sd(result: StructuredPruningResult, method: str, fraction: float) -> tuple[float, float, int]:
    losses = [r.val_loss for r in result.runs if r.method == method and math.isclose(r.fraction, fraction)]
    return (float(np.mean(losses)), float(np.std(losses)), len(losses)) if losses else (math.nan, math.nan, 0)


def loss_vs_fraction_figure(result: StructuredPruningResult) -> go.Figure:
    """Validation loss after the fine-tune vs fraction removed, per method (mean, whiskers: ±sd over seeds)."""
    fig = ExportableFigure()
    for method in result.methods:
        stats = [_mean_sd(result, method, f) for f in result.fractions]
        fig.add_trace(go.Scatter(x=result.fractions, y=[s[0] for s in stats], mode="lines+markers", name=method,
                                 line=dict(color=METHOD_COLORS.get(method)),
                                 error_y=dict(type="data", array=[s[1] for s in stats]),
                                 customdata=[s[2] for s in stats],
                                 hovertemplate=f"{method}<br>%{{x:.0%}} removed<br>val loss %{{y:.4f}}"
                                               "<br>seeds: %{customdata}<extra></extra>"))
    fig.add_hline(y=result.dense_val_loss, line_dash="dash",
                  annotation_text=f"dense {result.dense_val_loss:.3f}", annotation_position="bottom right")
    seeds = len(result.settings.get("seeds", [0]))
    spread = f"mean ± sd over {seeds} seeds" if seeds > 1 else "one seed"
    fig.update_layout(title=f"Validation loss after the same fine-tune (nats/byte; lower is better)<br><sup>{spread}</sup>",
                      xaxis=dict(title="fraction of units removed (each pruned kind)", tickformat=".0%"),
                      yaxis_title="validation loss (nats per byte)", height=380)
    return fig


def frontier_figure(result: StructuredPruningResult) -> go.Figure:
    """Quality vs measured prefill latency: each method's pruned models and the dense model."""
    reports = [r for r in result.latency if r.kind == "prefill"]
    if not reports:
        raise ValueError("No prefill timings in this result (run it with latency=True).")
    report = max(reports, key=lambda r: r.config["seq_len"])
    timings = {t.name: t for t in report.timings}
    fig = ExportableFigure()
    for method in result.methods:
        xs, ys, sds, lo, hi, labels = [], [], [], [], [], []
        for fraction in result.fractions:
            t = timings.get(result.latency_label(method, fraction))
            if t is None:
                continue
            mean, sd, _ = _mean_sd(result, method, fraction)
            xs.append(t.ratio_quantile(0.5))
            lo.append(t.ratio_quantile(0.5) - t.ratio_quantile(0.25))
            hi.append(t.ratio_quantile(0.75) - t.ratio_quantile(0.5))
            ys.append(mean)
            sds.append(sd)
            labels.append(f"{fraction:.0%}")
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text+lines", name=method, text=labels,
                                 textposition="top center", marker=dict(size=10, color=METHOD_COLORS.get(method)),
                                 line=dict(width=1, dash="dot"),
                                 error_x=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
                                 error_y=dict(type="data", array=sds),
                                 hovertemplate=f"{method} %{{text}} removed<br>prefill %{{x:.2f}}× dense"
                                               "<br>val loss %{y:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[1.0], y=[result.dense_val_loss], mode="markers+text", name="dense",
                             text=["dense"], textposition="top center",
                             marker=dict(size=12, symbol="diamond", color="black")))
    env = report.env
    fig.update_layout(
        title=f"Quality vs prefill latency ({report.config['seq_len']} tokens; whiskers: p25–p75 of the paired "
              f"ratios, ±sd of the loss)<br><sup>{env['device']}, load {env['load_average_1_5_15min']}; "
              "lower-left is better</sup>",
        xaxis_title="prefill time / dense (median of paired rounds)", yaxis_title="validation loss (nats/byte)",
        height=420, margin={"t": 90})
    return fig


def structured_latency_figure(result: StructuredPruningResult, kind: str = "prefill") -> go.Figure:
    """Prefill or decode time of the dense, pruned and unstructured models, one group per sequence length."""
    fig = latency_figure(result.latency, kind)
    fig.update_xaxes(title="prompt tokens" if kind == "prefill" else "tokens in the KV cache")
    if any(r.config.get("clock") == "thread_cpu" for r in result.latency if r.kind == kind):
        # latency_figure titles the axis "time ÷ <baseline>"; say which clock those times are from
        fig.update_yaxes(title=f"{fig.layout.yaxis.title.text}, CPU time of one thread")
    return fig
