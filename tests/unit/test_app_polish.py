"""Polish checks that need no browser: gene-panel read-outs, ribosomal ban, Compare table headers,
teaching-view gain label."""
from __future__ import annotations

import numpy as np
import pytest

from seqattn.data.builtins import load_builtin
from seqattn.evaluation.compare import compare_methods
from seqattn.data import make_planted
from seqattn.genomics import (genes_by_marked_type, mean_expression_by_type, fraction_expressing_by_type,
                              panel_accuracy, panel_confusion, ribosomal_genes)
from seqattn.plots.genomics import SIZE_LEGEND_FRACTIONS, confusion_figure, dot_plot
from seqattn.plots.selection import true_gain_label


def test_ribosomal_genes_match_rps_rpl_but_not_kinases():
    names = ["RPS27A", "RPL10A", "RPLP0", "RPSA", "RPS4Y1", "Rpl13a", "RPS6KA1", "RPL", "CD3E", "MT-ND1", "RPL22L1"]
    assert [names[i] for i in ribosomal_genes(names)] == ["RPS27A", "RPL10A", "RPLP0", "RPSA", "RPS4Y1", "Rpl13a",
                                                          "RPL22L1"]


@pytest.fixture(scope="module")
def pbmc():
    return load_builtin("pbmc68k_reduced")


def test_confusion_matrix_agrees_with_the_panel_accuracy(pbmc):
    genes = list(pbmc.feature_names[:40])
    confusion = panel_confusion(pbmc, genes)
    counts = confusion.attrs["counts"]
    assert confusion.shape == (pbmc.n_classes, pbmc.n_classes)
    accuracy = panel_accuracy(pbmc, genes, all_genes=False)["panel_accuracy"]
    assert np.trace(counts) / counts.sum() == pytest.approx(accuracy)
    present = counts.sum(axis=1) > 0
    np.testing.assert_allclose(confusion.to_numpy()[present].sum(axis=1), 1.0)
    assert len(confusion_figure(confusion).data) == 1


def test_genes_ordered_by_the_type_they_mark_and_dot_size_legend(pbmc):
    genes = list(pbmc.feature_names[:30])
    mean, fraction = mean_expression_by_type(pbmc, genes), fraction_expressing_by_type(pbmc, genes)
    markers = genes_by_marked_type(mean)
    assert sorted(markers["gene"]) == sorted(genes)
    for gene, marks in zip(markers["gene"], markers["marks"]):
        assert mean[gene].idxmax() == marks
    type_rank = [list(mean.index).index(t) for t in markers["marks"]]
    assert type_rank == sorted(type_rank)  # grouped in the cell types' order
    fig = dot_plot(mean, fraction, gene_order=markers["gene"].tolist())
    assert list(fig.data[0].x[: len(genes)]) == markers["gene"].tolist()  # first cell type's row, in marker order
    assert fig.layout.xaxis.categoryarray == tuple(markers["gene"])
    legend = [d for d in fig.data if d.showlegend]
    assert [d.name for d in legend] == [f"{f:.0%} expressing" for f in SIZE_LEGEND_FRACTIONS]
    assert [d.marker.size for d in legend] == [f * 22.0 for f in SIZE_LEGEND_FRACTIONS]
    assert fig.layout.legend.itemsizing == "trace"


def test_compare_accuracy_table_spells_out_its_headers():
    ds = make_planted(n_samples=200, n_features=10, n_informative=2, random_state=0)
    result = compare_methods(ds, ["omp", "anova"], k=2, ks=[1, 2], seeds=[0], eval_model="logistic")
    table = result.accuracy_table()
    assert list(table.columns) == ["method (accuracy, mean ± std over seeds)", "k = 1", "k = 2"]
    assert table.iloc[:, 0].tolist() == ["OMP", "ANOVA F"]
    assert all(" ± " in v for v in table["k = 2"])


def test_teaching_gain_says_it_is_a_loss_drop():
    assert true_gain_label("classification") == "true gain (drop in validation cross-entropy)"
    assert true_gain_label("regression") == "true gain (drop in validation mean squared error)"


def test_latency_spread_crossing_one_is_flagged_unreliable_and_slow_references_go_log():
    from seqattn.plots.sparsity import latency_figure
    from seqattn.sparsity.latency import LatencyReport, Timing

    dense = Timing("dense", [0.05, 0.06, 0.05, 0.055], [1.0, 1.0, 1.0, 1.0])
    steady = Timing("flex", [0.02, 0.021, 0.02, 0.022], [0.4, 0.38, 0.42, 0.41])
    noisy = Timing("sparse", [0.7, 0.02, 0.03, 0.9], [0.3, 0.44, 1.6, 2.0])  # rounds disagree: faster or slower?
    eager = Timing("eager", [2.0, 2.1, 2.0, 2.2], [40.0, 38.0, 41.0, 39.0])
    assert dense.reliable and steady.reliable and eager.reliable and not noisy.reliable
    assert noisy.ratio_label().endswith("unreliable") and "unreliable" not in steady.ratio_label()
    report = LatencyReport(kind="decode", config={"context_len": 4096}, baseline="dense",
                           timings=[dense, steady, noisy, eager],
                           env={"device": "cpu", "load_average_1_5_15min": (1.0, 1.0, 1.0)})
    assert [row["reliable"] for row in report.rows()] == [True, True, False, True]
    fig = latency_figure([report], "decode")
    bars = {trace.name: trace for trace in fig.data if trace.type == "bar"}
    labels = {trace.name: trace for trace in fig.data if trace.type == "scatter"}  # text above each whisker
    assert bars["sparse"].marker.pattern.shape == ("/",) and bars["flex"].marker.pattern.shape == ("",)
    assert "unreliable" in labels["sparse"].text[0] and labels["dense"].text[0].startswith("baseline")
    assert fig.layout.yaxis.type == "log" and "hatched: spread crosses 1×" in fig.layout.title.text
