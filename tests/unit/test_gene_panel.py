"""Gene panel: plot builders (shapes, dot-size mapping) and panel accuracy.

The analysts' h5ad flow through the app is in ``tests/app/test_gene_panel_page.py``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqattn.genomics import (
    fraction_expressing_by_type,
    make_planted_counts,
    mean_expression_by_type,
    panel_accuracy,
)
from seqattn.plots.genomics import (
    MAX_DOT_SIZE,
    dot_plot,
    expression_heatmap,
    expression_long_frame,
    panel_frame,
    panel_genes,
    panels_side_by_side,
)
from seqattn.trace import SelectionTrace


# ------------------------------------------------------------------ plot builders
@pytest.fixture(scope="module")
def counts():
    return make_planted_counts(n_cells=240, n_genes=60, n_types=3, markers_per_type=3, n_mito=2, random_state=1)


def test_heatmap_is_types_by_panel_genes_in_panel_order(counts):
    genes = [counts.feature_names[j] for j in counts.extra["markers_by_type"]["type 2"]] + ["GENE00000"]
    mean = mean_expression_by_type(counts, genes)
    fig = expression_heatmap(mean)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (3, len(genes))  # n_types × k
    assert list(fig.data[0].x) == genes and list(fig.data[0].y) == ["type 0", "type 1", "type 2"]
    np.testing.assert_allclose(z, mean.to_numpy())
    # type 2's markers are highest in type 2 (planted 6× up)
    assert (z[:, :3].argmax(axis=0) == 2).all()
    # per-gene scaling maps every gene's range to exactly 0..1, keeping the unscaled mean in the hover
    scaled = np.asarray(expression_heatmap(mean, scale_per_gene=True).data[0].z)
    np.testing.assert_allclose(scaled.min(axis=0), 0.0)
    np.testing.assert_allclose(scaled.max(axis=0), 1.0)
    np.testing.assert_allclose(np.asarray(expression_heatmap(mean, scale_per_gene=True).data[0].customdata),
                               mean.to_numpy())


def test_dot_plot_sizes_are_fraction_expressing_times_max_size(counts):
    genes = counts.feature_names[:7]
    mean = mean_expression_by_type(counts, genes)
    fraction = fraction_expressing_by_type(counts, genes)
    fig = dot_plot(mean, fraction)
    trace = fig.data[0]
    sizes = np.asarray(trace.marker.size, dtype=float)
    assert sizes.shape == (3 * 7,)
    # one dot per (type, gene), row-major: size = fraction × MAX_DOT_SIZE, colour = mean expression
    np.testing.assert_allclose(sizes, fraction.to_numpy().ravel() * MAX_DOT_SIZE)
    assert sizes.min() >= 0 and sizes.max() <= MAX_DOT_SIZE
    np.testing.assert_allclose(np.asarray(trace.marker.color, dtype=float), mean.to_numpy().ravel())
    assert list(trace.x[:7]) == genes and list(trace.y[:7]) == ["type 0"] * 7
    # a gene expressed in every cell gets the full-size dot, one in no cell none
    full = pd.DataFrame([[1.0, 0.0]], index=["t"], columns=["a", "b"])
    sized = np.asarray(dot_plot(full, full, max_size=10).data[0].marker.size, dtype=float)
    np.testing.assert_allclose(sized, [10.0, 0.0])


def test_dot_plot_rejects_mismatched_or_non_fraction_tables(counts):
    mean = mean_expression_by_type(counts, counts.feature_names[:3])
    with pytest.raises(ValueError, match="same cell types"):
        dot_plot(mean, fraction_expressing_by_type(counts, counts.feature_names[1:4]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dot_plot(mean, mean * 0 + 2.0)


def test_panel_frame_lists_pins_then_picks_and_tables_match(counts):
    names = counts.feature_names
    trace = SelectionTrace(method="sa", feature_names=names, pinned=[5], banned=[6])
    scores = np.linspace(0, 1, len(names))
    trace.add_step(10, scores, marginal_gain=0.2)
    trace.add_step(3, scores, marginal_gain=None)
    frame = panel_frame(trace)
    assert list(frame["order"]) == ["pinned", "1", "2"]
    assert list(frame["gene"]) == [names[5], names[10], names[3]] == panel_genes(trace)
    assert frame["score"].iloc[1] == pytest.approx(scores[10]) and np.isnan(frame["marginal_gain"].iloc[2])

    genes = panel_genes(trace)
    long = expression_long_frame(mean_expression_by_type(counts, genes), fraction_expressing_by_type(counts, genes))
    assert len(long) == 3 * 3 and list(long.columns) == ["cell_type", "gene", "mean_expression",
                                                         "fraction_expressing"]
    assert long["fraction_expressing"].between(0, 1).all()

    side = panels_side_by_side(["A", "B", "C"], ["C", "D"])
    assert list(side["SA"]) == ["A", "B", "C"] and list(side["t-test"]) == ["C", "D", ""]
    assert list(side["SA gene also in t-test"]) == [False, False, True]
    assert list(side["t-test gene also in SA"]) == [True, False, False]


def test_panel_accuracy_can_skip_the_all_genes_fit(counts):
    genes = [counts.feature_names[j] for j in counts.informative]
    both = panel_accuracy(counts, genes)
    panel_only = panel_accuracy(counts, genes, all_genes=False)
    assert panel_only["all_genes_accuracy"] is None
    assert panel_only["panel_accuracy"] == both["panel_accuracy"]  # same split, same fit
    assert both["panel_accuracy"] > 0.9  # the planted markers separate the types
