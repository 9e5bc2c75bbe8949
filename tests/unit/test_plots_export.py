"""Figures that survive export (seqattn.plots.export): the figures the notebooks show carry a light offline
HTML rendering beside plotly's JSON, and a figure the light renderer would draw wrongly keeps plotly's JSON only
(nbconvert then drops it, as before, rather than showing a wrong picture). Drawing is checked in chromium by
tests/test_notebooks.py."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from seqattn.genomics import fraction_expressing_by_type, make_planted_counts, mean_expression_by_type
from seqattn.plots.export import PLOTLY_MIME, ExportableFigure, light_figure_spec, light_html
from seqattn.plots.genomics import dot_plot, per_type_recall_figure
from seqattn.plots.sparsity import pattern_heatmaps, psa_budget_figure
from seqattn.sparsity import attention_patterns as ap


@pytest.fixture
def jupyter_renderer(monkeypatch):
    import plotly.io as pio

    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # what a Jupyter kernel uses


def _bundle(fig: go.Figure) -> dict:
    return fig._repr_mimebundle_()


@pytest.mark.parametrize("figure", [
    go.Figure(go.Bar(x=[1.0, 2.0], y=["a", "b"], orientation="h")),
    go.Figure(go.Bar(x=["a", "b"], y=[1.0, 2.0], error_y={"type": "data", "array": [0.1, 0.2]})),
    go.Figure([go.Bar(x=["a"], y=[1.0]), go.Bar(x=["a"], y=[2.0])], layout={"barmode": "stack"}),
    go.Figure(go.Heatmap(z=[[1.0, 2.0]], x=["gene A", "gene B"], y=["type 1"])),
    go.Figure(go.Box(y=[1.0, 2.0, 3.0])),
], ids=["horizontal bars", "error bars", "stacked bars", "labelled heatmap", "box"])
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
