"""Figures that survive export (seqattn.plots.export): the figures the notebooks show carry a light offline
HTML rendering beside plotly's JSON, and a figure the light renderer would draw wrongly keeps plotly's JSON only
(nbconvert then drops it, as before, rather than showing a wrong picture). Drawing is checked in chromium by
tests/test_notebooks.py."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from seqattn.genomics import fraction_expressing_by_type, make_planted_counts, mean_expression_by_type
from seqattn.plots.export import PLOTLY_MIME, ExportableFigure, light_figure_spec, light_html
from seqattn.plots.genomics import dot_plot, per_type_recall_figure
from seqattn.plots.sparsity import latency_figure, pattern_heatmaps, psa_budget_figure
from seqattn.sparsity import attention_patterns as ap
from seqattn.sparsity.latency import LatencyReport, Timing


@pytest.fixture
def jupyter_renderer(monkeypatch):
    import plotly.io as pio

    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # what a Jupyter kernel uses


def _bundle(fig: go.Figure) -> dict:
    return fig._repr_mimebundle_()


@pytest.mark.parametrize("figure", [
    go.Figure(go.Bar(x=[1.0, 2.0], y=["a", "b"], orientation="h")),
    go.Figure(go.Bar(x=["a", "b"], y=[1.0, 2.0], error_y={"type": "percent", "value": 10})),
    go.Figure([go.Bar(x=["a"], y=[1.0]), go.Bar(x=["a"], y=[2.0])], layout={"barmode": "stack"}),
    go.Figure(go.Heatmap(z=[[1.0, 2.0]], x=[0.5, 3.0], y=["type 1"])),
    go.Figure(go.Heatmap(z=[[1.0, 2.0]], x=["a", "b"], y=["type 1"], texttemplate="%{z}")),
    go.Figure(go.Scatter(x=["2024-01-01", "2024-02-01"], y=[1.0, 2.0]), layout={"xaxis": {"type": "date"}}),
    go.Figure(go.Scatter(x=[1.0, 2.0], y=[1.0, 2.0])).add_vrect(x0=1.2, x1=1.5),
    go.Figure(go.Scatter(x=[1.0, 2.0], y=[1.0, 2.0])).add_annotation(x=1.0, y=1.0, text="an arrow"),
    go.Figure(go.Box(y=[1.0, 2.0, 3.0])),
], ids=["horizontal bars", "percent error bars", "stacked bars", "heatmap on numeric coordinates",
        "numbers written in heatmap cells", "date axis",
        "shaded band", "annotation with an arrow", "box"])
def test_a_figure_the_light_renderer_would_draw_wrongly_keeps_plotly_json_only(figure, jupyter_renderer):
    assert light_html(figure) is None
    bundle = _bundle(ExportableFigure(figure))
    assert PLOTLY_MIME in bundle and "text/html" not in bundle


def test_the_gene_panel_figures_carry_a_light_rendering(jupyter_renderer):
    counts = make_planted_counts(n_cells=120, n_genes=30, n_types=3, markers_per_type=2, n_mito=0, random_state=0)
    genes = counts.feature_names[:5]
    dots = dot_plot(mean_expression_by_type(counts, genes), fraction_expressing_by_type(counts, genes))
    table = pd.DataFrame({"metric": "recall_logreg", "panel": ["SA", "SA", "HVG", "HVG"],
                          "cell_type": ["T", "B", "T", "B"], "value": [0.9, 0.5, 0.7, 0.6]})
    bars = per_type_recall_figure(table)
    for fig in (dots, bars):
        assert isinstance(fig, ExportableFigure) and "seqattn-light-figure" in _bundle(fig)["text/html"]
    spec = light_figure_spec(dots)  # the renderer reads the gene and type order from the category arrays
    assert spec["layout"]["xaxis"]["categoryarray"] == list(genes)
    assert spec["layout"]["xaxis"]["categoryorder"] == "array"
    assert light_figure_spec(bars)["layout"]["barmode"] == "group"  # drawn side by side, one colour per panel


def test_the_sparsity_figures_carry_a_light_rendering(jupyter_renderer):
    inputs = ap.make_attention_inputs(seq_len=64, n_layers=1, n_heads=2, head_dim=16, block_size=16)
    suite = ap.run_patterns(inputs, window_blocks=1, topk_blocks=2, tau=0.9, psa_estimate="exact")
    for fig in (pattern_heatmaps(suite), psa_budget_figure(suite)):
        assert isinstance(fig, ExportableFigure) and "seqattn-light-figure" in _bundle(fig)["text/html"]


def _prefill_reports(slow_ratio: float) -> list[LatencyReport]:
    """Two prompt lengths: the dense baseline, a pruned model at ~0.5×, one at ``slow_ratio`` (spread across 1×
    when it is near 1, so it is hatched as unreliable)."""
    def timing(name: str, ratios: list[float]) -> Timing:
        return Timing(name, times=[1e-3 * r for r in ratios], ratios=ratios)

    env = {"device": "CPU (1 thread)", "load_average_1_5_15min": [0.5, 0.5, 0.5]}
    return [LatencyReport("prefill", {"seq_len": n}, "dense",
                          [timing("dense", [1.0] * 3), timing("pruned", [0.45, 0.5, 0.55]),
                           timing("other", [0.9 * slow_ratio, slow_ratio, 1.2 * slow_ratio])], env)
            for n in (16, 32)]


@pytest.mark.parametrize("slow_ratio", [1.0, 40.0], ids=["linear axis, one hatched", "log axis"])
def test_latency_bars_carry_a_light_rendering(slow_ratio, jupyter_renderer):
    """Grouped bars with p25-p75 whiskers, their labels grouped over them and the 1× line: drawable, on a linear
    or (ratios over 10× apart) log axis."""
    fig = latency_figure(_prefill_reports(slow_ratio), "prefill")
    spec = light_figure_spec(fig)
    assert spec["layout"]["yaxis"]["type"] == ("log" if slow_ratio > 10 else "linear")
    assert any("/" in trace["marker"]["pattern"]["shape"] for trace in spec["data"] if trace["type"] == "bar") \
        == (slow_ratio == 1.0)
    assert isinstance(fig, ExportableFigure) and "seqattn-light-figure" in _bundle(fig)["text/html"]


def test_subplot_grids_of_labelled_heatmaps_on_a_shared_colour_axis_are_drawable(jupyter_renderer):
    """What the structured pruning figures use: labelled heatmap panels in a grid, one colour axis, subplot
    titles, gaps between cells, frames that change the cells and the title."""
    fig = make_subplots(rows=2, cols=1, subplot_titles=["heads", "MLP blocks"], figure=ExportableFigure())
    fig.add_trace(go.Heatmap(z=[[1.0, None]], x=["H0", "H1"], y=["L0"], coloraxis="coloraxis", xgap=1), row=1, col=1)
    fig.add_trace(go.Heatmap(z=[[0.9, 1.1, 1.0]], x=["B0", "B1", "B2"], y=["L0"], coloraxis="coloraxis"), row=2, col=1)
    fig.update_layout(coloraxis={"colorscale": "Viridis", "cmin": 0.9, "cmax": 1.1})
    fig.frames = [go.Frame(data=[go.Heatmap(z=[[None, None]]), go.Heatmap(z=[[1.0, None, None]])], traces=[0, 1],
                           layout=go.Layout(title_text="pruned"))]
    spec = light_figure_spec(fig)
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["heads", "MLP blocks"]
    assert "seqattn-light-figure" in _bundle(fig)["text/html"]
