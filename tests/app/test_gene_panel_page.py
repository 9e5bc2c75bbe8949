"""Gene panel page: the analysts' h5ad flow through the app (AppTest).

Upload a synthetic h5ad (planted markers + MT- decoys) → obs-column picker →
layer choice → preprocessing → SA with MT- genes banned → Gene panel page
(dot plot, heatmap, accuracies, t-test overlap, downloads).
"""
from __future__ import annotations

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from seqattn.genomics import make_planted_counts, mitochondrial_genes
from seqattn.data.h5ad import save_h5ad
from seqattn.plots.genomics import MAX_DOT_SIZE
from tests.app.test_app_pages import goto, run_sa_and_wait, start



# ------------------------------------------------------------------ app flow
def _h5ad_bytes(tmp_path, dataset) -> bytes:
    import anndata

    path = save_h5ad(dataset, tmp_path / "cells.h5ad")
    adata = anndata.read_h5ad(path)
    adata.layers["counts"] = adata.X.copy()  # a layer to choose
    adata.obs["batch"] = ["a", "b"] * (adata.n_obs // 2)
    adata.write_h5ad(path)
    return path.read_bytes()


def _plotly(at: AppTest, key: str) -> dict:
    charts = [c for c in at.get("plotly_chart") if key in c.proto.id]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_h5ad_flow_upload_ban_mt_run_sa_then_gene_panel(tmp_path):
    counts = make_planted_counts(n_cells=240, n_genes=60, n_types=3, markers_per_type=3, n_mito=2, random_state=1)
    mito = [counts.feature_names[j] for j in mitochondrial_genes(counts.feature_names)]
    assert len(mito) == 2
    at = goto(start(), "gene_panel")
    goto(at, "data")
    at.radio(key="data_source").set_value("Upload").run()
    at.get("file_uploader")[0].upload("cells.h5ad", _h5ad_bytes(tmp_path, counts), "application/octet-stream").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    target = next(s for s in at.selectbox if s.key.startswith("target:"))
    assert target.value == "cell_type" and set(target.options) >= {"cell_type", "batch"}
    layer = next(s for s in at.selectbox if s.key.startswith("layer:"))
    assert layer.options == ["X", "counts"]
    layer.select("counts").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["dataset"].extra["matrix"] == "layer 'counts'"

    # preprocessing: log1p + top 40 variable genes; the record travels with the data set
    at.checkbox(key="pp_log1p").check()
    at.checkbox(key="pp_hvg").check().run()  # the gene count is editable once the filter is on
    at.number_input(key="pp_top_genes").set_value(40).run()
    assert not at.exception, [e.value for e in at.exception]
    dataset = at.session_state["dataset"]
    assert dataset.n_features == 40 and "|pp=log1p:1,top:40,std:0" in at.session_state["dataset_key"]
    assert dataset.extra["preprocessing"]["top_genes"] == 40 and dataset.extra["preprocessing"]["log1p"]
    mito_kept = [g for g in mito if g in dataset.feature_names]
    assert mito_kept, "MT- decoys have high counts, so they survive the variance filter"

    goto(at, "sequential_attention")
    assert at.toggle(key="sa_panel").value is True  # expression data with cell types: a panel by default
    at.toggle(key="sa_panel").set_value(False)  # one plain run, whose stability the Gene panel page checks
    at.number_input(key="sa_k").set_value(4)
    at.number_input(key="sa_epochs").set_value(8)
    marker = next(g for g in (counts.feature_names[j] for j in counts.informative) if g in dataset.feature_names)
    at.multiselect(key="sa_pinned").select(marker)
    at.button(key="sa_ban_mt").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="sa_banned").value == mito_kept
    assert at.button(key="sa_ban_mt").disabled  # all banned already
    run_sa_and_wait(at)
    trace = at.session_state["sa_trace"]
    assert [trace.feature_names[j] for j in trace.banned] == mito_kept
    assert [trace.feature_names[j] for j in trace.pinned] == [marker]
    assert not set(mito_kept) & set(trace.selected_names)
    assert trace.settings["preprocessing"]["top_genes"] == 40

    goto(at, "gene_panel")
    assert not at.error, [e.value for e in at.error]
    panel = [d.value for d in at.dataframe if "gene" in d.value.columns and "order" in d.value.columns][0]
    assert list(panel["gene"]) == [marker, *trace.selected_names]
    heat = _plotly(at, "gp_heatmap")["data"][0]
    assert np.asarray(heat["z"], dtype=float).shape == (3, trace.k + 1)
    dots = _plotly(at, "gp_dotplot")["data"][0]
    sizes = np.asarray(dots["marker"]["size"], dtype=float)
    assert sizes.shape == (3 * (trace.k + 1),) and 0 <= sizes.min() and sizes.max() <= MAX_DOT_SIZE
    metrics = _metrics(at)
    sa_label = next(label for label in metrics if label.startswith("SA panel"))
    assert 0 <= float(metrics[sa_label]) <= 1 and float(metrics["All genes (40)"]) > 0.9
    assert any(label.startswith("t-test panel") for label in metrics)
    shared, k = metrics["Genes in both panels (picks)"].split(" of ")
    assert int(k) == trace.k and 0 <= int(shared) <= trace.k
    assert 0 <= float(metrics["Jaccard overlap"]) <= 1
    downloads = {b.proto.label for b in at.get("download_button")}
    assert downloads == {"Panel (CSV)", "Trace (JSON)", "Per-cell-type expression (CSV)"}
    at.toggle(key="gp_order").set_value(False).run()  # the view's choices outlive a visit to another page
    goto(goto(at, "home"), "gene_panel")
    assert at.toggle(key="gp_order").value is False

    # stability: one run's picks are checked over a panel's runs (panel_runs(k): 16 for small k) on request;
    # "picked in b/B", "kept" per panel gene, the unstable flag and the warning agree with the library's
    # stability check of the same run
    from seqattn.evaluation.narrative import unstable_genes_warning
    from seqattn.genomics import panel_stability, stability_check
    from seqattn.selectors.defaults import panel_runs

    runs = panel_runs(trace.k)
    assert "picked in" not in panel.columns
    assert any("not been checked against other seeds" in c.value for c in at.caption)
    at.button(key="gp_check_stability").click().run()
    assert not at.exception, [e.value for e in at.exception]
    panel = [d.value for d in at.dataframe if "gene" in d.value.columns and "order" in d.value.columns][0]
    expected = panel_stability(list(panel["gene"]), stability_check(at.session_state["dataset"], trace))
    assert list(panel["picked in"]) == list(expected["picked in"])
    assert panel["picked in"].iloc[0] == f"{runs}/{runs}" and panel["kept"].iloc[0] == 1.0  # the pinned marker
    assert list(panel["kept"]) == list(expected["kept"])
    assert list(panel["unstable"]) == list(expected["unstable"])
    flagged = expected[expected["unstable"]]
    warned = [w.value for w in at.warning if "are unstable" in w.value]
    if len(flagged):
        text = unstable_genes_warning(list(flagged["gene"]), list(flagged["picked in"]), list(flagged["kept"]),
                                      trace.k + 1, runs)
        assert warned and warned[0].replace("\\", "") == text.replace("\\", "")
    else:
        assert not warned
    stability_view = _plotly(at, "gp_stability")["data"][0]
    assert stability_view["x"] == [f"run {r}" for r in range(1, runs + 1)]
    assert len(stability_view["y"]) >= trace.k  # the panel's picks first, then genes only other runs picked


def test_log1p_on_negative_values_is_refused_with_a_message(tmp_path):
    from seqattn.data import Dataset

    counts = make_planted_counts(n_cells=60, n_genes=20, n_types=2, markers_per_type=2, sparse=False)
    centred = counts.X - counts.X.mean(axis=0)  # already scaled data: negative values
    scaled = Dataset(X=centred, y=counts.y, feature_names=counts.feature_names, task="classification",
                     name="scaled", class_names=counts.class_names)
    data = save_h5ad(scaled, tmp_path / "scaled.h5ad").read_bytes()
    at = goto(start(), "data")
    at.radio(key="data_source").set_value("Upload").run()
    at.get("file_uploader")[0].upload("scaled.h5ad", data, "application/octet-stream").run()
    assert not at.error, [e.value for e in at.error]
    assert next(s for s in at.selectbox if s.key.startswith("layer:")).disabled  # only X in this file
    at.checkbox(key="pp_log1p").check().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("log1p needs non-negative counts" in e.value for e in at.error)
    assert "|pp=" not in at.session_state["dataset_key"]  # the unprocessed data stay current
    assert "preprocessing" not in at.session_state["dataset"].extra


def test_gene_panel_without_a_trace_points_to_sa():
    at = goto(start(), "data")
    at.selectbox(key="builtin_name").select("pbmc68k_reduced").run()
    goto(at, "gene_panel")
    assert any("run **Sequential Attention** first" in i.value for i in at.info)
    goto(at, "data")
    at.selectbox(key="builtin_name").select("diabetes").run()
    goto(at, "gene_panel")
    assert any("needs cell types" in i.value for i in at.info)


def test_gene_panel_on_pbmc68k_reduced_with_a_quick_sa_trace():
    at = goto(start(), "data")
    at.selectbox(key="builtin_name").select("pbmc68k_reduced").run()
    assert not at.exception
    goto(at, "sequential_attention")
    assert at.button(key="sa_ban_mt").label == "Ban mitochondrial (MT-) genes (1)"  # MT-ND3, not MTPN/MTDH
    at.number_input(key="sa_k").set_value(5)
    at.number_input(key="sa_epochs").set_value(4)
    run_sa_and_wait(at)
    trace = at.session_state["sa_trace"]
    assert [link.proto.page for link in at.main.get("page_link")] == ["gene_panel"]  # the next step is offered
    goto(at, "gene_panel")
    assert not at.error, [e.value for e in at.error]
    heat = _plotly(at, "gp_heatmap")["data"][0]
    assert np.asarray(heat["z"], dtype=float).shape == (10, 5)  # 10 cell types × 5 genes
    assert heat["x"] == trace.selected_names
    metrics = _metrics(at)
    assert float(metrics["All genes (765)"]) > 0.7
    assert metrics["Genes in both panels (picks)"].endswith("of 5")
    # the field's metrics for SA, t-test markers and HVG, with per-type recall, as the library computes them
    from seqattn.evaluation.panels import held_out_panel_metrics
    from seqattn.genomics import hvg_panel
    from seqattn.selectors.ttest import ttest_markers

    quality = next(d.value for d in at.dataframe if "metric" in d.value.columns and "HVG" in d.value.columns)
    assert list(quality.columns) == ["metric", "better", "SA", "t-test markers", "HVG"]
    assert "kNN overlap (AUC over k = 5…30)" in quality["metric"].tolist()
    values = quality[["SA", "t-test markers", "HVG"]].to_numpy(dtype=float)
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    recall = _plotly(at, "gp_recall")["data"]
    assert [bar["name"] for bar in recall] == ["SA", "t-test markers", "HVG"] and len(recall[0]["x"]) == 10
    from seqattn.data.builtins import load_builtin

    pbmc = load_builtin("pbmc68k_reduced")
    direct = held_out_panel_metrics(pbmc, {"SA": trace.selected_names,
                                           "t-test markers": ttest_markers(pbmc, 5).selected_names,
                                           "HVG": hvg_panel(pbmc, 5)})
    expected = direct[(direct["cell_type"] == "") & (direct["metric"] == "balanced_accuracy_logreg")]
    shown = quality.set_index("metric").loc["balanced accuracy (logistic regression)"]
    np.testing.assert_allclose(shown[["SA", "t-test markers", "HVG"]].to_numpy(dtype=float),
                               expected.set_index("panel").loc[["SA", "t-test markers", "HVG"], "value"])
    # toggling per-gene scaling redraws without recomputing anything
    at.toggle(key="gp_scale").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    scaled = np.asarray(_plotly(at, "gp_heatmap")["data"][0]["z"], dtype=float)
    np.testing.assert_allclose(scaled.max(axis=0), 1.0)


def test_gene_panel_on_grouped_data_says_why_not_run_sa_first():
    """A table with a text column is selected in feature groups; after an SA run on it the Gene panel page
    used to say "No Sequential Attention panel for this data set yet: run Sequential Attention first"
    (the trace names groups, the data set columns), though SA had just run."""
    from tests.support.app_helpers import run_sa, uploaded
    from tests.support.bad_inputs_corpus import csv, table

    frame = table(n=60, d=3).assign(site=["north", "south", "east"] * 20)
    at = run_sa(uploaded("sites.csv", csv(frame)), k=2, epochs=2)
    assert at.session_state["dataset"].groups is not None and at.session_state["sa_trace"].k == 2
    goto(at, "gene_panel")
    assert not at.error, [e.value for e in at.error]
    infos = " ".join(i.value for i in at.info)
    assert "run **Sequential Attention** first" not in infos, infos
    assert "feature groups" in infos and "site (3 columns)" in infos, infos


def test_an_h5ad_with_raw_starts_on_raw_as_the_builtin_and_select_features_do(tmp_path):
    """scanpy's pbmc68k_reduced stores scaled X (negative values) and the log-normalised expression in .raw; the
    built-in of the same file and select_features read .raw, but its upload started on X."""
    import anndata

    counts = make_planted_counts(n_cells=120, n_genes=30, n_types=3, markers_per_type=2, random_state=3)
    path = save_h5ad(counts, tmp_path / "scaled.h5ad")
    adata = anndata.read_h5ad(path)
    adata.raw = adata.copy()
    dense = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    adata.X = (dense - dense.mean(axis=0)) / (dense.std(axis=0) + 1e-6)  # sc.pp.scale
    adata.write_h5ad(path)
    at = goto(start(), "data")
    at.radio(key="data_source").set_value("Upload").run()
    at.get("file_uploader")[0].upload("scaled.h5ad", path.read_bytes(), "application/octet-stream").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    layer = next(s for s in at.selectbox if s.key.startswith("layer:"))
    assert layer.options == ["X", "raw"] and layer.value == "raw"
    dataset = at.session_state["dataset"]
    assert dataset.extra["matrix"] == "raw" and dataset.dense_X().min() >= 0
    layer.select("X").run()  # X stays one choice away
    assert at.session_state["dataset"].extra["matrix"] == "X"
