"""Figures for the Sparsity page: SA++ block masks, attention patterns, PSA budgets, latency.

Animated frames carry plain nested lists (``None`` for pruned blocks), never
numpy arrays: plotly would encode those as typed arrays that
``Plotly.animate`` does not decode, and the heatmap would go blank.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from seqattn.plots.animation import play_controls
from seqattn.plots.export import ExportableFigure
from seqattn.sparsity.attention_patterns import PatternSuite, cumulative_mass_curve, exponential_schedule
from seqattn.sparsity.block_pruning import BlockPruningResult
from seqattn.sparsity.latency import LatencyReport

PHASE_COLORS = {
    "warm-up": "rgba(150,150,150,0.15)",
    "sparsify": "rgba(214,39,40,0.12)",
    "sparse": "rgba(31,119,180,0.12)",
    "dense": "rgba(44,160,44,0.12)",
    "final sparsify": "rgba(214,39,40,0.22)",
    "fine-tune": "rgba(31,119,180,0.22)",
}


def _plain(values: np.ndarray, digits: int = 4) -> list:
    values = np.round(np.asarray(values, dtype=np.float64), digits)
    return np.where(np.isfinite(values), values, None).tolist()


def _masked_attention(attention: np.ndarray, mask: np.ndarray) -> list:
    return _plain(np.where(mask, attention, np.nan))


def block_mask_animation(result: BlockPruningResult, layer: int = 0) -> go.Figure:
    """Heatmap of block attention ``A`` on kept blocks (pruned blocks blank), one frame per snapshot."""
    if not result.snapshots:
        raise ValueError("The SA++ run has no snapshots (it was stopped before the first phase ended).")
    snaps = result.snapshots
    vmax = max(float(np.max(s.attention[layer])) for s in snaps)
    rows, cols = snaps[0].attention[layer].shape

    def title(s) -> str:
        return (f"{s.label}: {100 * s.sparsity:.1f}% blocks pruned (target {100 * s.target_sparsity:.1f}%), "
                f"val acc {s.val_accuracy:.3f}")

    heat = dict(colorscale="Viridis", zmin=0.0, zmax=vmax, colorbar=dict(title="A (mean 1)"),
                hovertemplate="block row %{y}, col %{x}<br>A = %{z:.3f}<extra></extra>")
    fig = ExportableFigure(go.Heatmap(z=_masked_attention(snaps[0].attention[layer], snaps[0].mask[layer]), **heat))
    fig.frames = [
        go.Frame(data=[go.Heatmap(z=_masked_attention(s.attention[layer], s.mask[layer]))], name=str(i),
                 layout=go.Layout(title_text=title(s)))
        for i, s in enumerate(snaps)
    ]
    shape = result.layer_shapes[layer] if result.layer_shapes else None
    fig.update_layout(
        title=title(snaps[0]),
        xaxis_title=f"input block (of {cols})" + (f", weight {shape[0]}×{shape[1]}" if shape else ""),
        yaxis_title=f"output block (of {rows})",
        yaxis_autorange="reversed",
        # the x tick labels and the axis title take about 55 px under the plot area: the buttons start below
        **play_controls([frame.name for frame in fig.frames], plot_px=320, top_px=80, below_px=75),
    )
    return fig


def schedule_figure(result: BlockPruningResult) -> go.Figure:
    """Target block sparsity per optimizer step, phases shaded, snapshot accuracies on a second axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=_plain(result.schedule_steps), y=_plain(result.schedule_sparsity), mode="lines",
                             name="target sparsity s(t)"), secondary_y=False)
    if result.snapshots:
        fig.add_trace(go.Scatter(x=[s.step for s in result.snapshots], y=[s.sparsity for s in result.snapshots],
                                 mode="markers", name="achieved sparsity"), secondary_y=False)
        fig.add_trace(go.Scatter(x=[s.step for s in result.snapshots], y=[s.val_accuracy for s in result.snapshots],
                                 mode="lines+markers", name="validation accuracy", line=dict(dash="dot")),
                      secondary_y=True)
    for phase in result.phases:  # after the traces: plotly skips shapes on subplots that are still empty
        fig.add_vrect(x0=phase.start, x1=phase.start + phase.steps, fillcolor=PHASE_COLORS.get(phase.name, "white"),
                      line_width=0, layer="below", annotation_text=phase.name, annotation_position="top left",
                      annotation_font_size=9, annotation_textangle=-90)
    fig.update_yaxes(title_text="block sparsity", range=[0, 1], secondary_y=False)
    fig.update_yaxes(title_text="validation accuracy", range=[0, 1.02], secondary_y=True)
    fig.update_layout(title="SA++ schedule: s(t) = s·(1−e^(−ct))/(1−e^(−c)), c = 4, inside each sparsify phase",
                      xaxis_title="optimizer step", height=380, legend=dict(orientation="h", y=-0.25))
    return fig


def schedule_shape_figure(target: float, c_values: Sequence[float] = (1.0, 4.0, 8.0)) -> go.Figure:
    """The exponential ramp for a few c (c = 4 is SA++'s choice)."""
    t = np.linspace(0, 1, 101)
    fig = go.Figure([go.Scatter(x=_plain(t), y=_plain(exponential_schedule(t, target, c)), name=f"c = {c:g}")
                     for c in c_values])
    fig.update_layout(title="Sparsity ramp within a phase", xaxis_title="phase progress t",
                      yaxis_title="sparsity", height=320)
    return fig


def accuracy_figure(result: BlockPruningResult) -> go.Figure:
    """Test accuracy per method, with the achieved block sparsity in the label."""
    methods = list(result.accuracy)
    fig = go.Figure(go.Bar(
        x=[f"{m}<br>({100 * result.sparsity.get(m, 0):.0f}% blocks pruned)" for m in methods],
        y=[result.accuracy[m] for m in methods], text=[f"{result.accuracy[m]:.3f}" for m in methods],
        textposition="outside", marker_color=["#d62728", "#1f77b4", "#7f7f7f"][: len(methods)],
    ))
    low = min(result.accuracy.values()) if result.accuracy else 0.0
    fig.update_layout(title="Test accuracy (same steps, same block size)", yaxis_title="accuracy",
                      yaxis_range=[max(0.0, low - 0.1), 1.02], height=360)
    return fig


def pattern_heatmaps(suite: PatternSuite, head: int = 0, names: Sequence[str] | None = None) -> go.Figure:
    """Block masks of one head on top of the true block attention mass (log scale).

    Each panel's title gives that head's own kept fraction and captured mass (the table's numbers are
    averages over every head and layer), so adaptive patterns read differently per head.
    """
    names = list(names or suite.results)
    n_cols = min(3, len(names))
    n_rows = math.ceil(len(names) / n_cols)
    titles = [f"{n}: keep {suite.results[n].head_kept_fraction(head):.0%}, "
              f"mass {float(suite.results[n].per_head_mass[head]):.2f}" for n in names]
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles, horizontal_spacing=0.05,
                        vertical_spacing=0.12, figure=ExportableFigure())
    mass = suite.block_mass[head].numpy()
    log_mass = np.log10(np.clip(mass, 1e-6, None))
    causal = np.tril(np.ones_like(mass, dtype=bool))
    for i, name in enumerate(names):
        r = suite.results[name]
        kept = r.mask[head].numpy()
        z = np.where(kept, log_mass, np.nan)
        row, col = divmod(i, n_cols)
        if r.compressed is not None:  # grey underlay: blocks seen only through one pooled token
            grey = np.where(r.compressed[head].numpy() & causal, 1.0, np.nan)
            fig.add_trace(go.Heatmap(z=_plain(grey), colorscale=[[0, "#c8c8c8"], [1, "#c8c8c8"]], showscale=False,
                                     hovertemplate="q block %{y}, k block %{x}<br>compressed<extra></extra>"),
                          row=row + 1, col=col + 1)
        fig.add_trace(go.Heatmap(z=_plain(z, 3), colorscale="Magma", zmin=-6, zmax=0, showscale=(i == 0),
                                 colorbar=dict(title="log10 mass"),
                                 hovertemplate="q block %{y}, k block %{x}<br>log10 mass %{z}<extra>" + name
                                               + "</extra>"),
                      row=row + 1, col=col + 1)
        fig.update_yaxes(autorange="reversed", row=row + 1, col=col + 1)
    fig.update_layout(height=330 * n_rows, title=f"Kept blocks of {suite.inputs.head_labels[head]}, coloured by true "
                                                  f"attention mass (blank = skipped, grey = compressed); "
                                                  f"titles: this head's kept share and mass")
    fig.update_annotations(font_size=11)
    return fig


def psa_budget_figure(suite: PatternSuite, name: str = "PSA adaptive") -> go.Figure:
    """Mean key blocks kept per query block, per head (PSA budgets adapt; top-k's do not)."""
    r = suite.results[name]
    labels = suite.inputs.head_labels
    fig = ExportableFigure(go.Bar(x=labels, y=_plain(r.per_head_kept, 2), name=name,
                           text=[f"{m:.2f}" for m in r.per_head_mass], textposition="outside",
                           hovertemplate="%{x}<br>blocks kept per query block: %{y}<br>mass captured %{text}"
                                         "<extra></extra>"))
    if "Quest top-k" in suite.results:
        fig.add_trace(go.Bar(x=labels, y=_plain(suite.results["Quest top-k"].per_head_kept, 2), name="Quest top-k"))
    fig.update_layout(title=f"PSA budget per head (τ = {suite.tau})<br><sup>labels: mass captured</sup>",
                      yaxis_title="key blocks per query block", barmode="group", height=380)
    return fig


def cumulative_mass_figure(suite: PatternSuite, query_block: int | None = None,
                           heads: Sequence[int] | None = None) -> go.Figure:
    """Sorted cumulative block score for one query block, per head, with the τ line (PSA's stopping rule)."""
    n = suite.psa_scores.shape[1]
    qb = n - 1 if query_block is None else int(query_block)
    heads = list(heads if heads is not None else range(suite.inputs.n_heads))
    fig = go.Figure()
    for h in heads:
        curve = cumulative_mass_curve(suite.psa_scores, h, qb)
        needed = int(np.searchsorted(curve, suite.tau - 1e-6) + 1)
        fig.add_trace(go.Scatter(x=list(range(1, len(curve) + 1)), y=_plain(curve), mode="lines",
                                 name=f"{suite.inputs.head_labels[h]}: {needed} blocks"))
    fig.add_hline(y=suite.tau, line_dash="dash", annotation_text=f"τ = {suite.tau}")
    fig.update_layout(title=f"Cumulative mass, query block {qb}",
                      xaxis_title="key blocks kept", yaxis_title="cumulative estimated mass",
                      yaxis_range=[0, 1.02], height=380)
    return fig


def progressive_figure(suite: PatternSuite) -> go.Figure:
    """Progressive sparsity: kept fraction, captured mass and output error along the schedule."""
    steps = [s for s, _, _ in suite.progressive]
    fig = go.Figure([
        go.Scatter(x=steps, y=[sp for _, sp, _ in suite.progressive], name="sparsity (target)", mode="lines+markers"),
        go.Scatter(x=steps, y=[r.mass_captured for _, _, r in suite.progressive], name="mass captured",
                   mode="lines+markers"),
        go.Scatter(x=steps, y=[r.output_error for _, _, r in suite.progressive], name="output rel. error",
                   mode="lines+markers"),
    ])
    fig.update_layout(title="Progressive sparsity schedule (top blocks by score per query block)",
                      xaxis_title="schedule step", yaxis_range=[0, 1.02], height=340)
    return fig


def latency_figure(reports: Sequence[LatencyReport], kind: str) -> go.Figure:
    """Each candidate's time relative to the baseline: one statistic for bar, whisker and label.

    Bar = the median over rounds of (candidate time ÷ baseline time in the same round), the paired ratio the
    rounds are interleaved for; whiskers = its p25–p75 over rounds; label = the bar's value, written above the
    upper whisker so no whisker crosses it. The baseline is the 1× line, its own median in milliseconds in its
    label (every candidate's milliseconds are in the table and the hover). A candidate whose ratio spread
    crosses 1.0× is hatched and labelled *unreliable*. The axis is logarithmic when the ratios span over 10×.
    """
    reports = [r for r in reports if r.kind == kind]
    if not reports:
        raise ValueError(f"No {kind} measurements to plot.")
    size_key = {"prefill": "seq_len", "decode": "context_len", "linear": "block_sparsity"}[kind]
    names: list[str] = []
    for r in reports:
        names += [t.name for t in r.timings if t.name not in names]
    fig = ExportableFigure()
    ratios: list[float] = []  # every bar's median, whisker ends and label height, for the axis
    any_unreliable = False
    for name in names:
        bars = _ratio_bars(reports, name, size_key)
        if not bars["x"]:
            continue
        lows = [y - d for y, d in zip(bars["y"], bars["down"])]
        ratios += [v for v in [*bars["y"], *lows, *bars["label_y"]] if v > 0 and math.isfinite(v)]
        any_unreliable |= "/" in bars["patterns"]
        fig.add_trace(go.Bar(x=bars["x"], y=bars["y"], name=name, offsetgroup=name, customdata=bars["ms"],
                             marker={"pattern": {"shape": bars["patterns"]}},
                             hovertemplate=f"{name}: %{{y:.2f}}× the baseline (median %{{customdata:.3g}} ms)"
                                           "<extra></extra>",
                             error_y=dict(type="data", symmetric=False, array=bars["up"], arrayminus=bars["down"])))
        fig.add_trace(go.Scatter(x=bars["x"], y=bars["label_y"], text=bars["labels"], mode="text", name=name,
                                 offsetgroup=name, textposition="top center", showlegend=False, hoverinfo="skip",
                                 cliponaxis=False))
    baseline = reports[0].baseline
    fig.add_hline(y=1.0, line_dash="dot", line_color="#7f7f7f")
    titles = {"prefill": "Prefill latency", "decode": "Decode latency (one query)",
              "linear": "Block-sparse linear latency"}
    env = reports[-1].env
    medians = [t.ratio_quantile(0.5) for r in reports for t in r.timings if t.name != r.baseline and t.ratios]
    log = bool(medians) and max(medians + [1.0]) > 10 * min(medians + [1.0])
    fig.update_layout(barmode="group", scattermode="group", xaxis_title=size_key, xaxis_type="category",
                      yaxis_title=f"time ÷ {baseline}" + (" (log scale)" if log else ""),
                      yaxis_type="log" if log else "linear", yaxis_range=_ratio_range(ratios, log),
                      title=f"{titles[kind]}, relative to {baseline}"
                            + f"<br><sup>bar = label: median over rounds of time ÷ {baseline} in the same round; "
                              f"whiskers p25–p75<br>"
                            + ("hatched: spread crosses 1×, unreliable · " if any_unreliable else "")
                            + f"{env['device']}, load {env['load_average_1_5_15min']}</sup>",
                      height=480, margin={"t": 110}, legend=dict(orientation="h", y=-0.25))
    return fig


def _ratio_bars(reports: Sequence[LatencyReport], name: str, size_key: str) -> dict[str, list]:
    """One candidate's bars over the reports (sizes): x, median ratio, whisker lengths, label and its height."""
    out: dict[str, list] = {key: [] for key in ("x", "y", "up", "down", "labels", "label_y", "patterns", "ms")}
    for r in reports:
        t = next((t for t in r.timings if t.name == name), None)
        if t is None or not t.times:
            continue
        is_baseline = name == r.baseline
        mid, low, high = (1.0, 1.0, 1.0) if is_baseline else (
            t.ratio_quantile(0.5), t.ratio_quantile(0.25), t.ratio_quantile(0.75))
        out["x"].append(str(r.config[size_key]))
        out["y"].append(mid)
        out["up"].append(high - mid)
        out["down"].append(mid - low)
        out["label_y"].append(high)
        out["ms"].append(1e3 * t.median)
        out["labels"].append(f"baseline<br>{1e3 * t.median:.3g} ms" if is_baseline else
                             f"{mid:.2f}×" + ("" if t.reliable else "<br>unreliable"))
        out["patterns"].append("" if is_baseline or t.reliable else "/")
    return out


def _ratio_range(ratios: list[float], log: bool) -> list[float] | None:
    """Room above the tallest whisker for its label (plotly's autorange ignores text)."""
    if not ratios:
        return None
    if log:
        return [math.log10(min(ratios + [1.0])) - 0.15, math.log10(max(ratios + [1.0])) + 0.45]
    return [0.0, max(ratios + [1.0]) * 1.35]
