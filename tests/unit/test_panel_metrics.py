"""The gene-panel evaluator (seqattn.evaluation.panels): spapros's kinds of metric on held-out cells,
checked against hand-computed values, scikit-learn and scanpy."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from seqattn.data import split_indices
from seqattn.evaluation import panels as P
from seqattn.genomics import hvg_panel, make_planted_counts, preprocess


@pytest.fixture(scope="module")
def cells():
    """Log counts: 4 types × 5 planted markers among 80 genes, 320 cells."""
    counts = make_planted_counts(n_cells=320, n_genes=80, n_types=4, markers_per_type=5, fold_change=8.0,
                                 random_state=0)
    data, _ = preprocess(counts, log1p=True)
    data.informative = counts.informative
    return data


def test_curve_auc_is_spaproses_interpolated_mean() -> None:
    assert P.curve_auc({5: 0.5, 10: 1.0}, 5, 10) == pytest.approx(np.mean([0.5, 0.6, 0.7, 0.8, 0.9, 1.0]))
    # a count never reached before the first point counts as 0; after the last point it is held
    assert P.curve_auc({7: 1.0}, 5, 8) == pytest.approx(0.5)
    assert P.curve_auc({5: 0.2, 7: 0.4}, 5, 8) == pytest.approx(np.mean([0.2, 0.3, 0.4, 0.4]))


def test_knn_overlap_by_hand() -> None:
    # points on a line: neighbours are known; swapping the order of the far half changes nothing nearby
    line = np.arange(12, dtype=float)[:, None]
    reference = P.ReferenceStructure({3: P.neighbour_indices(line, 3)[0]}, {}, 0.0)
    assert P.knn_overlap_curve(line, reference) == {3: 1.0}
    # a second coordinate that pulls cell 0 next to cell 11: cell 0 keeps 1 of its 2 neighbours ...
    moved = line.copy()
    moved[0, 0] = 12.5
    overlap = P.knn_overlap_curve(moved, reference)[3]
    shared = []
    for i, (a, b) in enumerate(zip(P.neighbour_indices(moved, 3)[0], reference.neighbours[3])):
        shared.append(len(set(a[1:]) & set(b[1:])) / 2)
    assert overlap == pytest.approx(np.mean(shared)) and overlap < 1.0


def test_panel_correlation_by_hand() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    X = np.column_stack([a, 2 * a + 1, rng.normal(size=500), np.ones(500)])  # a duplicate, noise, a constant
    r = np.abs(np.corrcoef(X[:, :3], rowvar=False))
    expected_mean = np.mean([r[0, 1], r[0, 2], r[1, 2], 0.0, 0.0, 0.0])  # the constant gene's r counts as 0
    result = P.panel_correlation(X)
    assert result["mean_abs_correlation"] == pytest.approx(expected_mean)
    assert result["share_uncorrelated"] == pytest.approx(0.5)  # the pair is redundant, noise and constant not


def test_classification_scores_match_scikit_learn(cells) -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from seqattn.genomics import panel_model

    train, _, test = split_indices(cells.n_samples, cells.y, 0.0, 0.25, random_state=0)
    X = cells.X[:, cells.informative]
    scores = P.classification_scores(X[train], cells.y[train], X[test], cells.y[test], cells.n_classes)
    predicted = panel_model(X[train], cells.y[train], 2000).predict(X[test])
    assert scores["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(cells.y[test], predicted))
    assert scores["macro_f1"] == pytest.approx(f1_score(cells.y[test], predicted, average="macro"))
    assert scores["balanced_accuracy"] > 0.9  # planted markers separate the types
    forest = P.classification_scores(X[train], cells.y[train], X[test], cells.y[test], cells.n_classes, "forest")
    assert forest["balanced_accuracy"] > 0.8 and forest["recall"].shape == (4,)
    with pytest.raises(ValueError, match="model must be one of"):
        P.classification_scores(X[train], cells.y[train], X[test], cells.y[test], 4, "svm")


def test_all_genes_score_one_markers_beat_a_random_panel(cells) -> None:
    train, _, test = split_indices(cells.n_samples, cells.y, 0.0, 0.25, random_state=0)
    markers = [cells.feature_names[j] for j in cells.informative]
    background = [g for j, g in enumerate(cells.feature_names) if j not in set(cells.informative.tolist())]
    random_panel = list(np.random.default_rng(1).choice(background, size=len(markers), replace=False))
    table = P.panel_metrics(cells, {"all": cells.feature_names, "markers": markers, "random": random_panel},
                            train, test, classifiers=("logreg",))
    summary = table[table["cell_type"] == ""].pivot(index="metric", columns="panel", values="value")
    assert summary.loc["knn_overlap", "all"] == pytest.approx(1.0)
    assert summary.loc["cluster_nmi", "all"] == pytest.approx(1.0)
    for metric in ("balanced_accuracy_logreg", "knn_overlap", "cluster_nmi"):
        assert summary.loc[metric, "markers"] > summary.loc[metric, "random"] + 0.1, metric
    recall = table[table["metric"] == "recall_logreg"]
    assert set(recall["cell_type"]) == set(cells.class_names) and (recall["n_genes"].isin([20, 80])).all()
    assert list(table.columns) == ["panel", "metric", "cell_type", "value", "n_genes"]


def test_panel_metrics_refuses_what_it_cannot_score(cells) -> None:
    from seqattn.data import DataError

    train, _, test = split_indices(cells.n_samples, cells.y, 0.0, 0.25, random_state=0)
    with pytest.raises(DataError, match="at least 2"):
        P.panel_metrics(cells, {"one": [cells.feature_names[0]]}, train, test)
    with pytest.raises(DataError, match="held-out cells"):
        P.panel_metrics(cells, {"two": cells.feature_names[:2]}, train, test[:10], structure=True)


def test_small_splits_keep_the_classification_metrics_and_say_why_structure_is_missing(cells) -> None:
    train, _, test = split_indices(cells.n_samples, cells.y, 0.0, 0.25, random_state=0)
    table = P.panel_metrics(cells, {"two": cells.feature_names[:2]}, train, test[:10])
    metrics = set(table["metric"])
    assert "balanced_accuracy_logreg" in metrics and "recall_logreg" in metrics
    assert not metrics & {"knn_overlap", "cluster_nmi"}
    assert "10 held-out cells" in table.attrs["structure_skipped"]
    assert P.panel_metrics(cells, {"two": cells.feature_names[:2]}, train, test).attrs["structure_skipped"] == ""


def test_evaluate_panel_methods_selects_on_training_cells_only(cells) -> None:
    dense = cells.dense_X()
    training_rows = []
    for seed in (0, 1):
        train, _, _ = split_indices(cells.n_samples, cells.y, 0.0, 0.25, random_state=seed)
        training_rows.append(sorted(dense[train].tobytes()[i * 320:(i + 1) * 320] for i in range(len(train))))
    seen: list[list[bytes]] = []

    def spy(training, k):
        X = training.dense_X()
        seen.append(sorted(X.tobytes()[i * 320:(i + 1) * 320] for i in range(training.n_samples)))
        return hvg_panel(training, k)

    table = P.evaluate_panel_methods(cells, {"hvg": spy}, sizes=(6, 10), n_splits=2, classifiers=("logreg",))
    # exactly the training rows of split 0 (twice: two sizes), then of split 1; never a held-out cell
    assert seen == [training_rows[0], training_rows[0], training_rows[1], training_rows[1]]
    assert set(table["split"]) == {0, 1} and set(table["size"]) == {6, 10}
    summary = P.summarise_panel_metrics(table)
    row = summary[(summary["size"] == 6) & (summary["metric"] == "knn_overlap")].iloc[0]
    values = table[(table["size"] == 6) & (table["metric"] == "knn_overlap")]["value"]
    assert row["mean"] == pytest.approx(values.mean()) and row["sd"] == pytest.approx(values.std(ddof=1))
    assert row["n_splits"] == 2 and (table["seconds"] >= 0).all()


@pytest.mark.slow  # importing scanpy (numba, umap) dominates
def test_graph_and_leiden_follow_scanpy(cells) -> None:
    sc = pytest.importorskip("scanpy")
    import anndata
    from sklearn.metrics import normalized_mutual_info_score

    coords = P.pca_coordinates(cells.X, 30)
    adata = anndata.AnnData(np.zeros((cells.n_samples, 1), dtype=np.float32))
    adata.obsm["X_pca"] = coords
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca")
        mine = P.umap_connectivities(coords)
        assert abs(mine - adata.obsp["connectivities"]).max() < 1e-4  # scanpy's UMAP connectivities
        sc.tl.leiden(adata, resolution=1.0, flavor="igraph", n_iterations=2, key_added="leiden", random_state=0)
    agreement = normalized_mutual_info_score(adata.obs["leiden"].astype(int), P.leiden(mine, 1.0, seed=0))
    assert agreement > 0.8
    found = P.clusterings_by_count(mine, (4, 8))
    assert set(found) <= set(range(4, 9)) and len(found) >= 3
    assert all(labels.max() + 1 == n for n, labels in found.items())


def test_igraph_random_generator_is_given_back() -> None:
    import random

    import igraph

    probe = P.umap_connectivities(np.random.default_rng(0).normal(size=(60, 3)))
    first = P.leiden(probe, 1.0, seed=3)
    assert np.array_equal(first, P.leiden(probe, 1.0, seed=3))  # seeded: the same clustering twice
    igraph.set_random_number_generator(random)  # what the context manager restores; no error


def test_summarise_per_type() -> None:
    table = pd.DataFrame({"split": [0, 1, 0, 1], "size": 5, "panel": "p", "metric": "recall_logreg",
                          "cell_type": ["a", "a", "b", "b"], "value": [0.5, 1.0, 0.0, 0.0], "n_genes": 5})
    per_type = P.summarise_panel_metrics(table, per_type=True)
    assert per_type.set_index("cell_type")["mean"].to_dict() == {"a": 0.75, "b": 0.0}
    assert P.summarise_panel_metrics(table).empty


def test_pca_coordinates_sparse_path_equals_dense(monkeypatch) -> None:
    import scipy.sparse as sp
    from sklearn.decomposition import PCA

    X = sp.random(300, 400, density=0.1, random_state=0, format="csr")
    exact = PCA(10, svd_solver="full").fit_transform(X.toarray())
    monkeypatch.setattr(P, "MAX_DENSE_PCA_VALUES", 10)  # force the sparse (arpack, implicit centring) path
    np.testing.assert_allclose(np.abs(P.pca_coordinates(X, 10)), np.abs(exact), atol=1e-8)
    monkeypatch.setattr(P, "MAX_DENSE_PCA_VALUES", 10**9)
    np.testing.assert_allclose(np.abs(P.pca_coordinates(X, 10)), np.abs(exact), atol=1e-8)
