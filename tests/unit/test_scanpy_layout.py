"""select_features follows scanpy's conventions: `.raw` by default, `uns[key]` in rank_genes_groups's
layout, read by scanpy's own functions (before and after an h5ad round trip)."""
from __future__ import annotations

import warnings

import anndata
import matplotlib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

matplotlib.use("Agg")
sc = pytest.importorskip("scanpy")

from seqattn.anndata_api import (dataset_from_anndata, rank_genes_groups_layout, select_features,  # noqa: E402
                                 trace_from_anndata)
from seqattn.data.builtins import PBMC_FILE  # noqa: E402
from seqattn.genomics import benjamini_hochberg  # noqa: E402

TARGET = "bulk_labels"


@pytest.fixture()
def pbmc() -> anndata.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file's old layout triggers FutureWarnings
        return anndata.read_h5ad(PBMC_FILE)


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def test_default_reads_raw_like_scanpy_and_says_so(pbmc, capsys) -> None:
    trace = select_features(pbmc, TARGET, 5, method="ttest", progress=True)
    assert trace.settings["matrix"] == "raw"
    assert "adata.raw" in capsys.readouterr().err
    params = pbmc.uns["seqattn"]["params"]
    assert params["use_raw"] is True and params["layer"] is None and params["groupby"] == TARGET
    on_x = select_features(pbmc, TARGET, 5, method="ttest", use_raw=False, key_added="on_x", progress=False)
    assert on_x.settings["matrix"] == "X" and pbmc.uns["on_x"]["params"]["use_raw"] is False
    assert on_x.selected_names != trace.selected_names  # z-scores (X) and log expression (raw) differ

    pbmc.layers["logged"] = pbmc.raw.X.copy()
    layered = select_features(pbmc, TARGET, 5, method="ttest", layer="logged", key_added="lay", progress=False)
    assert layered.settings["matrix"] == "layer 'logged'" and pbmc.uns["lay"]["params"]["layer"] == "logged"
    assert layered.selected_names == trace.selected_names  # the same numbers as raw
    no_raw = anndata.AnnData(X=pbmc.raw.X.copy(), obs=pbmc.obs.copy(), var=pd.DataFrame(index=pbmc.var_names))
    assert select_features(no_raw, TARGET, 5, method="ttest", progress=False).settings["matrix"] == "X"


def test_rank_genes_groups_layout_matches_scanpys_own_t_test(pbmc) -> None:
    trace = select_features(pbmc, TARGET, 12, method="omp", pinned=["CD79A"], progress=False)
    panel = ["CD79A"] + trace.selected_names
    table = sc.get.rank_genes_groups_df(pbmc, None, key="seqattn")
    assert sorted(table["names"]) == sorted(panel)  # every panel gene exactly once, the pinned one too

    raw = pd.DataFrame(pbmc.raw.X.toarray(), columns=pbmc.raw.var_names, index=pbmc.obs_names)
    means = raw[panel].groupby(pbmc.obs[TARGET], observed=True).mean()
    for _, row in table.iterrows():
        assert row["group"] == means[row["names"]].idxmax()  # filed under the type it marks
    # scores, fold changes and p-values are scanpy's t-test of that gene in that group
    sc.tl.rank_genes_groups(pbmc, TARGET, method="t-test", use_raw=True, n_genes=pbmc.n_vars, key_added="rgg",
                            pts=True)
    theirs = sc.get.rank_genes_groups_df(pbmc, None, key="rgg").set_index(["group", "names"])
    mine = table.set_index(["group", "names"])
    matched = theirs.loc[mine.index]
    np.testing.assert_allclose(mine["scores"], matched["scores"], rtol=1e-3)
    np.testing.assert_allclose(mine["logfoldchanges"], matched["logfoldchanges"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(mine["pvals"], matched["pvals"], rtol=1e-3, atol=1e-300)
    np.testing.assert_allclose(mine["pct_nz_group"], matched["pct_nz_group"], atol=1e-6)
    np.testing.assert_allclose(mine["pct_nz_reference"], matched["pct_nz_reference"], atol=1e-6)
    assert (mine["pvals_adj"] >= mine["pvals"]).all()
    # within a type, the genes keep the panel's order (pinned first)
    order = {g: i for i, g in enumerate(panel)}
    for _, genes in table.groupby("group", observed=True, sort=False)["names"]:
        assert [order[g] for g in genes] == sorted(order[g] for g in genes)


def test_scanpy_plots_read_the_panel_before_and_after_h5ad(pbmc, tmp_path) -> None:
    trace = select_features(pbmc, TARGET, 10, method="ttest", pinned=["LYZ"], progress=False)
    panel = ["LYZ"] + trace.selected_names
    path = tmp_path / "panel.h5ad"
    pbmc.write_h5ad(path)
    back = _quiet(anndata.read_h5ad, path)
    for adata in (pbmc, back):
        figure = _quiet(sc.pl.rank_genes_groups_dotplot, adata, key="seqattn", show=False, return_fig=True)
        assert sorted(figure.var_names) == sorted(panel)  # each panel gene once, no padding
        table = sc.get.rank_genes_groups_df(adata, None, key="seqattn")
        assert sorted(table["names"]) == sorted(panel)
        figure = _quiet(sc.pl.dotplot, adata, var_names=list(adata.uns["seqattn"]["panel"]), groupby=TARGET,
                        show=False, return_fig=True)
        assert list(figure.var_names) == panel
        ranked = adata.var.query("seqattn_rank > 0").sort_values("seqattn_rank").index.tolist()
        assert ranked == panel
    restored = trace_from_anndata(back)
    assert restored.selected_names == trace.selected_names and restored.pinned == trace.pinned


def test_uneven_types_are_padded_with_empty_names_scanpy_merges_away() -> None:
    rng = np.random.default_rng(0)
    X = rng.poisson(0.3, size=(60, 8)).astype(np.float32)
    labels = np.repeat(["a", "b", "c"], 20)
    X[labels == "a", :3] += 4  # three markers for a, one for b, none for c
    X[labels == "b", 3] += 4
    adata = anndata.AnnData(X=sp.csr_matrix(X), obs=pd.DataFrame({"t": pd.Categorical(labels)},
                                                                  index=[f"c{i}" for i in range(60)]),
                            var=pd.DataFrame(index=[f"g{j}" for j in range(8)]))
    params = {"groupby": "t", "reference": "rest", "method": "test", "use_raw": False, "layer": None}
    adata.uns["seqattn"] = rank_genes_groups_layout(dataset_from_anndata(adata, "t"), ["g0", "g1", "g2", "g3"], params)
    names = adata.uns["seqattn"]["names"]
    assert names.dtype.names == ("a", "b", "c") and len(names) == 3
    assert list(names["c"]) == ["", "", ""] and np.isnan(adata.uns["seqattn"]["scores"]["c"]).all()
    table = sc.get.rank_genes_groups_df(adata, None, key="seqattn")
    assert table["names"].tolist() == ["g0", "g1", "g2", "g3"] and set(table["group"]) == {"a", "b"}


def test_benjamini_hochberg_matches_statsmodels() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(3).uniform(0, 0.2, 40)
    np.testing.assert_allclose(benjamini_hochberg(p), multitest.multipletests(p, method="fdr_bh")[1])
