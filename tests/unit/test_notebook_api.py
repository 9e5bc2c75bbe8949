"""Notebook-facing API: select_features (AnnData in/out), the trace's rich display and plot,
progress bars and the live view."""
from __future__ import annotations

import html
import io
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import seqattn
from seqattn import DataError, SequentialAttentionSelector, load_builtin, make_planted, run_method
from seqattn.anndata_api import select_features, trace_from_anndata
from seqattn.data.builtins import PBMC_FILE
from seqattn.notebook import LiveSelectionView
from seqattn.plots.selection import selection_animation
from seqattn.progress import EstimatedTotal, chain_callbacks, progress_bar


@pytest.fixture()
def pbmc() -> anndata.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file's old layout triggers FutureWarnings
        return anndata.read_h5ad(PBMC_FILE)


def test_select_features_writes_ranks_and_uns_that_survive_h5ad(pbmc, tmp_path) -> None:
    trace = select_features(pbmc, "bulk_labels", 6, method="omp", use_raw=True, pinned=["LYZ"],
                            banned=["HES4"], progress=False)
    # the same picks as the built-in (which reads the same file's raw with the same target)
    reference = run_method(load_builtin("pbmc68k_reduced"), "omp", 6,
                           pinned=[trace.feature_names.index("LYZ")], banned=[trace.feature_names.index("HES4")])
    assert trace.selected_names == reference.selected_names
    ranks = pbmc.var["seqattn_rank"]
    assert ranks.dtype.kind == "i" and (ranks > 0).sum() == 7
    # the whole panel is ranked: the pinned gene first (rank 1), then the picks 2..k+1 in pick order
    assert ranks[ranks > 0].sort_values().index.tolist() == ["LYZ"] + trace.selected_names
    assert ranks["LYZ"] == 1 and ranks["HES4"] == 0  # banned never picked
    assert pbmc.uns["seqattn"]["pinned_names"].tolist() == ["LYZ"]
    assert trace.settings["matrix"] == "raw" and pbmc.uns["seqattn"]["params"]["use_raw"]

    path = tmp_path / "panel.h5ad"
    pbmc.write_h5ad(path)
    back = anndata.read_h5ad(path)
    assert back.var["seqattn_rank"].tolist() == ranks.tolist()
    assert list(back.uns["seqattn"]["panel"]) == ["LYZ"] + trace.selected_names
    assert back.uns["seqattn"]["target"] == "bulk_labels" and back.uns["seqattn"]["matrix"] == "raw"
    restored = trace_from_anndata(back)
    assert restored.selected_names == trace.selected_names and restored.pinned == trace.pinned
    np.testing.assert_allclose(restored.score_matrix(), trace.score_matrix(), equal_nan=True)


def test_select_features_sa_with_key_added_and_layer(tmp_path) -> None:
    ds = make_planted(n_samples=300, n_features=12, n_informative=3, random_state=1)
    adata = anndata.AnnData(X=np.zeros_like(ds.X), obs=pd.DataFrame(
        {"label": pd.Categorical(np.array(["a", "b"])[ds.y])}, index=[f"c{i}" for i in range(ds.n_samples)]),
        var=pd.DataFrame(index=ds.feature_names))
    adata.layers["signal"] = sp.csr_matrix(ds.X)
    trace = select_features(adata, "label", 3, layer="signal", key_added="sa3", epochs=40, random_state=0,
                            progress=False)
    from seqattn.selectors.defaults import PANEL_DEFAULTS, panel_defaults, panel_runs

    assert "coverage" not in panel_defaults(ds)  # two types: no per-type turns (tests/unit/test_panel_coverage.py)
    direct = SequentialAttentionSelector(3, epochs=40, random_state=0, **panel_defaults(ds, k=3)).fit(
        ds.X, ds.y, feature_names=ds.feature_names)  # select_features uses the gene-panel defaults
    assert trace.selected_names == direct.trace_.selected_names  # X (all zeros) was not used
    assert trace.n_runs == panel_runs(3) == 16 and trace.settings["marker_pool"] == PANEL_DEFAULTS["marker_pool"]
    # 3 planted features: the runs find them (x10, the weakest, in 14 of 16), and none is flagged unstable
    assert all(step.picked_in >= 0.75 * trace.n_runs and step.kept_share == 1.0 for step in trace.steps)
    assert not any(step.unstable for step in trace.steps)
    assert set(trace.selected) == set(ds.informative.tolist())
    assert adata.var["sa3_rank"].max() == 3 and "seqattn_rank" not in adata.var
    adata.write_h5ad(tmp_path / "a.h5ad")
    assert trace_from_anndata(anndata.read_h5ad(tmp_path / "a.h5ad"), "sa3").selected == trace.selected


def test_select_features_bad_input_names_what_exists(pbmc) -> None:
    with pytest.raises(DataError, match=r"'cell_type' not found.*'bulk_labels'.*'louvain'"):
        select_features(pbmc, k=3, method="omp", progress=False)
    with pytest.raises(DataError, match=r"Layer 'counts' not found.*none \(only X\).*use_raw=True"):
        select_features(pbmc, "bulk_labels", 3, layer="counts", method="omp", progress=False)
    pbmc.layers["counts"] = pbmc.X.copy()
    with pytest.raises(DataError, match=r"Layer 'spliced' not found\. Available layers: 'counts'"):
        select_features(pbmc, "bulk_labels", 3, layer="spliced", method="omp", progress=False)
    with pytest.raises(DataError, match="either layer='counts' or use_raw=True"):
        select_features(pbmc, "bulk_labels", 3, layer="counts", use_raw=True, method="omp", progress=False)
    with pytest.raises(DataError, match="Unknown gene.*'LYZZ'.*LYZ"):
        select_features(pbmc, "bulk_labels", 3, pinned=["LYZZ"], method="omp", progress=False)

    rng = np.random.default_rng(0)
    ids = anndata.AnnData(X=rng.normal(size=(10_000, 4)).astype(np.float32),
                          obs=pd.DataFrame({"cell_id": np.arange(10_000), "kind": pd.Categorical(["x", "y"] * 5000)},
                                           index=[f"c{i}" for i in range(10_000)]))
    with pytest.raises(DataError, match=r"'cell_id' is numeric with 10,000 distinct values.*Label columns: 'kind'"):
        select_features(ids, "cell_id", 2, method="omp", progress=False)
    assert "seqattn_rank" not in ids.var  # nothing written on failure
    with pytest.raises(DataError, match=r"use_raw=True but adata.raw is empty"):
        select_features(ids, "kind", 2, use_raw=True, method="omp", progress=False)
    twins = ids[:50].copy()
    twins.var_names = ["g0", "g1", "g1", "g3"]
    with pytest.raises(DataError, match=r"Duplicate gene names: 'g1'.*var_names_make_unique"):
        select_features(twins, "kind", 2, method="omp", progress=False)


def _small_trace():
    ds = make_planted(n_samples=200, n_features=10, n_informative=2, random_state=0)
    ds.feature_names[3] = "<b>odd & name</b>"
    return run_method(ds, "omp", 3), ds


def test_repr_html_lists_the_picks_with_scores_gains_and_confidence() -> None:
    trace, _ = _small_trace()
    assert "<b>odd & name</b>" in trace.selected_names  # the awkward name is among the picks
    page = trace._repr_html_()
    for step in trace.steps:
        assert f"<td>{html.escape(step.name)}</td>" in page
        assert format(step.score, ".4g") in page and format(step.marginal_gain, "+.4f") in page
    assert "<b>odd" not in page  # names are escaped
    assert "omp" in page and trace.dataset in page and "validation accuracy" in page
    assert "confidence" not in page
    for i, step in enumerate(trace.steps):  # methods that report a confidence get a column
        step.confidence = 2.0 + i
    assert "<th>confidence</th>" in trace._repr_html_() and "<td>4</td>" in trace._repr_html_()
    assert repr(trace).startswith("SelectionTrace(method='omp'") and len(repr(trace)) < 300


def test_repr_html_of_one_sa_run_names_its_near_ties() -> None:
    """The app and the CLI name a near-tie pick; the notebook display showed the same trace without the flag."""
    from seqattn.trace import SelectionTrace

    trace = SelectionTrace(method="sa", feature_names=[f"f{i}" for i in range(12)], dataset="toy",
                           task="classification", metric_name="accuracy")
    clear = np.full(12, 0.01)
    clear[3] = 1 - clear.sum() + 0.01  # one candidate holds almost all the attention
    trace.add_step(3, clear, marginal_gain=0.3, val_metric=0.6)
    tied = np.linspace(0.08, 0.09, 12)
    tied[3] = np.nan  # already selected
    trace.add_step(11, tied / np.nansum(tied), marginal_gain=0.01, val_metric=0.61)
    assert [s.near_tie for s in trace.steps] == [False, True]
    page = trace._repr_html_()
    assert "<th>near-tie</th>" in page and page.count("<b>near-tie</b>") == 1
    rows = page.split("<tr>")[2:]  # after the header row
    assert "near-tie" not in rows[0] and "<b>near-tie</b>" in rows[1]
    omp, _ = _small_trace()  # methods without a confidence have no such verdict
    assert "near-tie" not in omp._repr_html_()


def test_plot_is_the_apps_animation() -> None:
    digits = load_builtin("digits")
    trace = run_method(digits, "omp", 3)
    figure = trace.plot(digits)
    reference = selection_animation(trace, image_shape=(8, 8), mean_image=digits.X.mean(axis=0))
    assert len(figure.frames) == 3 and len(figure.data) == len(reference.data) == 5  # image panel included
    assert figure.to_plotly_json()["frames"] == reference.to_plotly_json()["frames"]
    assert len(trace.plot().data) == 3  # without the data set: no image panel


def test_progress_bar_text_mode_and_chained_stop() -> None:
    out = io.StringIO()
    with progress_bar("sa", file=out, notebook=False) as update:
        for step in range(0, 11):
            update(step, 10, f"step {step}")
    assert "100%" in out.getvalue() and "sa" in out.getvalue()
    with progress_bar(enabled=False) as nothing:
        assert nothing is None
    calls: list[str] = []
    chained = chain_callbacks(None, lambda *a: calls.append("a"), lambda *a: True)
    assert chained(1, 2, "x") is True and calls == ["a"]
    assert chain_callbacks(None) is None


def test_live_view_follows_every_pick_without_widget_state() -> None:
    ds = make_planted(n_samples=300, n_features=15, n_informative=3, random_state=2)
    ds.feature_names[4] = "<img src=x onerror=alert(1)>"
    selector = SequentialAttentionSelector(3, epochs=30, random_state=0)
    view = LiveSelectionView(selector, max_bars=5)
    charts: list[str] = []
    original = view.show_step
    view.show_step = lambda trace, t: (original(trace, t), charts.append(view.chart_html))  # type: ignore[method-assign]
    selector.fit_dataset(ds, callback=view)
    assert view.shown == selector.trace_.selected_names  # every pick drawn, in order
    assert len(charts) == 3 and len(set(charts)) == 3  # the chart changed at every pick
    for t, chart in enumerate(charts):
        assert f"pick {t + 1}: <b>{html.escape(view.shown[t])}</b>" in chart
        assert chart.count("<rect") == 5 and chart.count("fill='#d62728'") == 1  # the pick in red among 5 bars
    assert "<img" not in view._repr_html_()  # names are user text
    assert view.progress.fraction == pytest.approx(1.0) and "done" in view.progress_html()
    assert len(view._repr_html_()) < 10_000  # what a saved notebook keeps: kB, not plotly.js's 5 MB
    # a second fit starts over
    selector.set_params(n_features_to_select=2).fit_dataset(ds, callback=view)
    assert view.shown == selector.trace_.selected_names and len(view.shown) == 2
    assert view.progress.fraction == pytest.approx(1.0)


def test_live_view_progress_never_goes_back_while_sa_estimates_its_total() -> None:
    """SA's automatic budget revises its total (470 → 615 → 910 steps): the bar keeps its place and the
    text says the total is estimated."""
    selector = SequentialAttentionSelector(2)
    view = LiveSelectionView(selector)
    fractions = []
    for step, total in [(100, 470), (200, 470), (300, 615), (400, 910), (600, 910), (900, 905)]:
        view(step, EstimatedTotal(total), "phase")
        fractions.append(view.progress.fraction)
        assert "about" in view.progress_html() and "estimated" in view.progress_html()
    assert fractions == sorted(fractions) and fractions[-1] < 1.0
    assert fractions[3] > fractions[2]  # it moves on after a revision (max(old, 400/910) would stall)
    view(950, 950, "done")
    assert view.progress.fraction == 1.0 and "950/950" in view.progress_html()


def test_public_names() -> None:
    for name in ("select_features", "trace_from_anndata", "progress_bar", "LiveSelectionView",
                 "reproduction_notebook"):
        assert callable(getattr(seqattn, name))
