"""Gene panels judged as the field judges them, on held-out cells.

The metrics follow spapros's ``ProbesetEvaluator`` (Kuemmerle et al., Nature Methods 2024;
``spapros/evaluation/metrics.py``), computed on cells the panel was **not** selected on:

* **classification** — a classifier trained on the training cells' panel genes predicts the
  held-out cells' types: balanced accuracy, accuracy, macro F1 and per-type recall / F1. Two
  models: the Gene panel page's standardised logistic regression
  (:func:`seqattn.genomics.panel_model`) and gradient-boosted trees (scikit-learn's
  ``HistGradientBoostingClassifier`` with spapros's depth 3, learning rate 0.2, ≤ 250 rounds
  and balanced class weights; spapros uses XGBoost in 5-fold cross-validation instead);
* **kNN overlap** — per held-out cell, the share of its k nearest neighbours in the panel's
  PCA space that are also its neighbours in the all-genes PCA space (50 components; the panel
  gets min(50, p − 1), as spapros); k = 5, 10, …, 30 counts the cell itself as scanpy's
  ``n_neighbors`` does (k − 1 other cells); the summary is spapros's AUC (mean over k of the
  linearly interpolated curve);
* **cluster similarity** — Leiden clusterings (igraph, modularity, 2 iterations, on scanpy's
  15-neighbour UMAP connectivities) searched over resolutions for every cluster count from 5
  to 20, panel versus all genes; NMI per count, summary = spapros's ``nmi_5_20`` (mean of the
  interpolated curve, counts never reached count as 0);
* **redundancy** — among the panel's genes on the held-out cells: mean |Pearson r| (spapros
  reports 1 − this) and the share of genes whose largest |r| with another panel gene is below
  0.8 (spapros's smoothed threshold, ±0.05).

:func:`panel_metrics` scores several panels on one train/test split (the reference structure is
computed once); :func:`evaluate_panel_methods` selects with each method on the training cells of
several stratified splits and scores every panel with the same evaluator;
:func:`summarise_panel_metrics` gives mean ± sd over splits.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import DataError, Dataset, split_indices

KNN_KS = (5, 10, 15, 20, 25, 30)
CLUSTER_COUNTS = (5, 20)
N_PCS = 50
GRAPH_NEIGHBOURS = 15
CORRELATION_THRESHOLD = 0.8
CORRELATION_TOLERANCE = 0.05
CLASSIFIERS = ("logreg", "forest")

#: metric -> (label, higher is better, one-line meaning); per-type metrics carry a cell type.
PANEL_METRICS: dict[str, tuple[str, bool, str]] = {
    "balanced_accuracy_logreg": ("balanced accuracy (logistic regression)", True,
                                 "mean per-type recall of a logistic regression on held-out cells"),
    "accuracy_logreg": ("accuracy (logistic regression)", True, "share of held-out cells classified right"),
    "macro_f1_logreg": ("macro F1 (logistic regression)", True, "F1 averaged over cell types"),
    "balanced_accuracy_forest": ("balanced accuracy (boosted trees)", True,
                                 "as spapros's forest classification, on held-out cells"),
    "knn_overlap": ("kNN overlap (AUC over k = 5…30)", True,
                    "share of each cell's neighbours kept when only the panel is measured"),
    "cluster_nmi": ("cluster similarity (NMI, 5–20 clusters)", True,
                    "agreement of Leiden clusterings on the panel with those on all genes"),
    "mean_abs_correlation": ("redundancy: mean |r| among panel genes", False,
                             "lower is less redundant (spapros reports 1 − this)"),
    "share_uncorrelated": ("genes with max |r| < 0.8", True, "share of panel genes not near-duplicated"),
    "recall_logreg": ("recall per cell type (logistic regression)", True, "per cell type"),
    "f1_logreg": ("F1 per cell type (logistic regression)", True, "per cell type"),
    "recall_forest": ("recall per cell type (boosted trees)", True, "per cell type"),
}
SUMMARY_METRICS = tuple(m for m in PANEL_METRICS if m not in ("recall_logreg", "f1_logreg", "recall_forest"))

Selector = Callable[[Dataset, int], Sequence[str]]


# ------------------------------------------------------------------ matrices
def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


#: Above this many values a sparse matrix is not densified for PCA (arpack with implicit centring).
MAX_DENSE_PCA_VALUES = 20_000_000


def pca_coordinates(X: Any, n_components: int, random_state: int = 0) -> np.ndarray:
    """Centred PCA scores (scanpy's ``sc.tl.pca``: no scaling), at most ``n_components``; large
    sparse matrices stay sparse (scikit-learn's arpack solver centres implicitly, as scanpy does)."""
    from sklearn.decomposition import PCA

    n_rows, n_cols = X.shape
    n_components = int(max(1, min(n_components, n_rows - 1, n_cols)))
    if sp.issparse(X) and n_rows * n_cols > MAX_DENSE_PCA_VALUES and n_components < min(n_rows, n_cols):
        return PCA(n_components=n_components, svd_solver="arpack", random_state=random_state).fit_transform(
            sp.csr_matrix(X, dtype=np.float64))
    dense = _dense(X)
    if n_components >= min(dense.shape) - 1 or min(dense.shape) <= 200:
        return PCA(n_components=n_components, svd_solver="full").fit_transform(dense)
    return PCA(n_components=n_components, svd_solver="arpack", random_state=random_state).fit_transform(dense)


def neighbour_indices(coords: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest neighbours of every row, the row itself first (scanpy's convention):
    ``(indices, distances)``, both (n, k)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, coords.shape[0])
    distances, indices = NearestNeighbors(n_neighbors=k).fit(coords).kneighbors(coords)
    return indices, distances


# ------------------------------------------------------------------ kNN overlap
def knn_overlap_curve(panel_coords: np.ndarray, reference: "ReferenceStructure") -> dict[int, float]:
    """Mean share of each cell's k − 1 neighbours (k counting the cell) shared with the reference."""
    out = {}
    for k, ref in reference.neighbours.items():
        mine, _ = neighbour_indices(panel_coords, k)
        shared = [len(set(a[1:]) & set(b[1:])) / max(1, min(len(a), len(b)) - 1) for a, b in zip(mine, ref)]
        out[k] = float(np.mean(shared))
    return out


def curve_auc(curve: Mapping[int, float], low: int, high: int) -> float:
    """spapros's AUC: the curve on every integer in [low, high], linearly interpolated (held
    constant after its last point), averaged; points before its first value count as 0."""
    series = pd.Series(np.nan, index=range(low, high + 1), dtype=float)
    for x, y in curve.items():
        if low <= x <= high and np.isfinite(y):
            series.loc[x] = y
    return float(series.interpolate().fillna(0.0).mean())


# ------------------------------------------------------------------ clustering
def umap_connectivities(coords: np.ndarray, n_neighbors: int = GRAPH_NEIGHBOURS) -> sp.csr_matrix:
    """scanpy's default neighbour graph: UMAP fuzzy-set memberships on the k-NN (k counting the
    cell), symmetrised with the fuzzy union ``W + Wᵀ − W∘Wᵀ``."""
    indices, distances = neighbour_indices(coords, n_neighbors)
    n, k = indices.shape
    target = np.log2(max(k, 2))
    rows, cols, vals = [], [], []
    for i in range(n):
        d = distances[i, 1:]
        positive = d[d > 0]
        rho = positive[0] if len(positive) else 0.0
        sigma = _smooth_sigma(d, rho, target, float(distances.mean()))
        weights = np.where(d - rho <= 0, 1.0, np.exp(-np.maximum(d - rho, 0.0) / sigma))
        rows.extend([i] * len(d))
        cols.extend(indices[i, 1:].tolist())
        vals.extend(weights.tolist())
    W = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    return (W + W.T - W.multiply(W.T)).tocsr()


def _smooth_sigma(d: np.ndarray, rho: float, target: float, mean_all: float, iterations: int = 64) -> float:
    """UMAP's ``smooth_knn_dist`` for one cell: the bandwidth whose memberships sum to log2(k)."""
    low, high, mid = 0.0, np.inf, 1.0
    for _ in range(iterations):
        total = float(np.sum(np.where(d - rho > 0, np.exp(-np.maximum(d - rho, 0.0) / mid), 1.0)))
        if abs(total - target) < 1e-5:
            break
        if total > target:
            high = mid
            mid = (low + high) / 2.0
        else:
            low = mid
            mid = mid * 2 if high == np.inf else (low + high) / 2.0
    floor = 1e-3 * (float(np.mean(d)) if rho > 0 else mean_all)
    return max(mid, floor, 1e-12)


_IGRAPH_RNG = threading.Lock()


@contextmanager
def _seeded_igraph(seed: int) -> Iterator[None]:
    """igraph's random generator is process-wide: seed it for one clustering, then give igraph
    back its default (Python's ``random`` module); a lock keeps two threads from interleaving."""
    import igraph

    with _IGRAPH_RNG:
        igraph.set_random_number_generator(random.Random(seed))
        try:
            yield
        finally:
            igraph.set_random_number_generator(random)


def leiden(connectivities: sp.csr_matrix, resolution: float, seed: int = 0) -> np.ndarray:
    """scanpy's ``sc.tl.leiden(flavor="igraph", n_iterations=2)``: modularity, weighted, beta 0.01."""
    import igraph

    upper = sp.triu(connectivities, k=1).tocoo()
    graph = igraph.Graph(n=connectivities.shape[0], edges=list(zip(upper.row.tolist(), upper.col.tolist())),
                         edge_attrs={"weight": upper.data.tolist()})
    with _seeded_igraph(seed):
        partition = graph.community_leiden(objective_function="modularity", weights="weight",
                                           resolution=resolution, beta=0.01, n_iterations=2)
    return np.asarray(partition.membership)


def clusterings_by_count(connectivities: sp.csr_matrix, counts: tuple[int, int] = CLUSTER_COUNTS,
                         seed: int = 0, max_runs: int = 60) -> dict[int, np.ndarray]:
    """Leiden clusterings for as many cluster counts in ``counts`` (inclusive) as a resolution
    search finds — spapros's search: from resolution 1 halve until ≤ the fewest, double until ≥
    the most, then bisect between neighbouring resolutions whose counts skip a wanted one."""
    low, high = counts
    found: dict[int, np.ndarray] = {}
    tried: list[tuple[float, int]] = []

    def run(res: float) -> int:
        labels = leiden(connectivities, res, seed)
        n = int(labels.max()) + 1
        found.setdefault(n, labels)
        tried.append((res, n))
        tried.sort()
        return n

    res = 1.0
    n = run(res)
    while n > low and len(tried) < max_runs and res > 1e-4:
        res /= 2
        n = run(res)
    res = max(r for r, _ in tried)
    n = max(m for _, m in tried)
    while n < high and len(tried) < max_runs and res < 1e3:
        res *= 2
        n = run(res)
    searching = True
    while searching and len(tried) < max_runs and not set(range(low, high + 1)) <= set(found):
        searching = False
        for (r1, n1), (r2, n2) in zip(list(tried), list(tried)[1:]):
            wanted = any(n1 < m < n2 for m in range(low, high + 1) if m not in found)
            if wanted and r2 - r1 > 5e-5 and len(tried) < max_runs:
                run((r1 + r2) / 2)
                searching = True
    return {m: labels for m, labels in found.items() if low <= m <= high}


def cluster_nmi_curve(panel: Mapping[int, np.ndarray], reference: Mapping[int, np.ndarray]) -> dict[int, float]:
    """NMI (arithmetic mean normalisation, as spapros) for every cluster count both reached."""
    from sklearn.metrics import normalized_mutual_info_score

    return {n: float(normalized_mutual_info_score(reference[n], panel[n])) for n in sorted(panel) if n in reference}


# ------------------------------------------------------------------ redundancy
def panel_correlation(X: Any) -> dict[str, float]:
    """``mean_abs_correlation`` (mean |r| over gene pairs) and ``share_uncorrelated`` (genes whose
    largest |r| is below 0.8, smoothed linearly over 0.75–0.85 as spapros). Constant genes count
    as uncorrelated (r undefined)."""
    dense = _dense(X)
    if dense.shape[1] < 2:
        return {"mean_abs_correlation": 0.0, "share_uncorrelated": 1.0}
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(np.nan_to_num(np.corrcoef(dense, rowvar=False), nan=0.0))
    np.fill_diagonal(r, 0.0)
    upper = r[np.triu_indices_from(r, k=1)]
    low, high = CORRELATION_THRESHOLD - CORRELATION_TOLERANCE, CORRELATION_THRESHOLD + CORRELATION_TOLERANCE
    largest = r.max(axis=0)
    kept = np.clip((high - largest) / (high - low), 0.0, 1.0)
    return {"mean_abs_correlation": float(upper.mean()), "share_uncorrelated": float(kept.mean())}


# ------------------------------------------------------------------ classification
def _forest(X: Any, y: np.ndarray, random_state: int) -> Any:
    """Gradient-boosted trees with spapros's forest settings (depth 3, learning rate 0.2, ≤ 250
    rounds, balanced class weights); early stopping on 10 % of the training cells, never the test."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_depth=3, learning_rate=0.2, max_iter=250, early_stopping=True,
                                          validation_fraction=0.1, n_iter_no_change=5, class_weight="balanced",
                                          random_state=random_state).fit(_dense(X), y)


def classification_scores(X_train: Any, y_train: np.ndarray, X_test: Any, y_test: np.ndarray, n_classes: int,
                          model: str = "logreg", random_state: int = 0) -> dict[str, Any]:
    """Held-out balanced accuracy, accuracy, macro F1, and recall / F1 per class (arrays indexed by
    class code; NaN for a class without held-out cells)."""
    from sklearn.metrics import precision_recall_fscore_support

    from seqattn.genomics import panel_model

    if model == "logreg":
        fitted = panel_model(X_train, y_train, 2000)
        predicted = fitted.predict(X_test)
    elif model == "forest":
        predicted = _forest(X_train, y_train, random_state).predict(_dense(X_test))
    else:
        raise ValueError(f"model must be one of {CLASSIFIERS}, got {model!r}.")
    labels = list(range(n_classes))
    _, recall, f1, support = precision_recall_fscore_support(y_test, predicted, labels=labels, zero_division=0)
    present = support > 0
    recall = np.where(present, recall, np.nan)
    f1 = np.where(present, f1, np.nan)
    return {"balanced_accuracy": float(np.nanmean(recall)), "accuracy": float(np.mean(predicted == y_test)),
            "macro_f1": float(np.nanmean(f1)), "recall": recall, "f1": f1}


# ------------------------------------------------------------------ one split, several panels
@dataclass
class ReferenceStructure:
    """The all-genes structure of the held-out cells that every panel is compared with."""

    neighbours: dict[int, np.ndarray]
    clusterings: dict[int, np.ndarray]
    seconds: float


def reference_structure(X_test: Any, *, ks: Sequence[int] = KNN_KS, counts: tuple[int, int] = CLUSTER_COUNTS,
                        random_state: int = 0) -> ReferenceStructure:
    """kNN graphs and Leiden clusterings of the held-out cells on all genes (50 PCs, as spapros)."""
    start = time.perf_counter()
    coords = pca_coordinates(X_test, N_PCS, random_state)
    neighbours = {k: neighbour_indices(coords, k)[0] for k in ks}
    clusterings = clusterings_by_count(umap_connectivities(coords), counts, seed=random_state)
    return ReferenceStructure(neighbours, clusterings, time.perf_counter() - start)


def _structure_scores(X_panel_test: Any, reference: ReferenceStructure, counts: tuple[int, int],
                      random_state: int) -> dict[str, float]:
    coords = pca_coordinates(X_panel_test, min(N_PCS, X_panel_test.shape[1] - 1), random_state)
    ks = sorted(reference.neighbours)
    knn = curve_auc(knn_overlap_curve(coords, reference), ks[0], ks[-1])
    clusters = clusterings_by_count(umap_connectivities(coords), counts, seed=random_state)
    nmi = curve_auc(cluster_nmi_curve(clusters, reference.clusterings), *counts)
    return {"knn_overlap": knn, "cluster_nmi": nmi}


def panel_metrics(dataset: Dataset, panels: Mapping[str, Sequence[str | int]], train: np.ndarray,
                  test: np.ndarray, *, classifiers: Sequence[str] = CLASSIFIERS,
                  counts: tuple[int, int] = CLUSTER_COUNTS, random_state: int = 0,
                  reference: ReferenceStructure | None = None, structure: bool | None = None) -> pd.DataFrame:
    """Score each panel (name → genes) on one split: classifiers fitted on ``train`` rows, every
    metric measured on ``test`` rows. Returns a tidy table ``panel, metric, cell_type, value,
    n_genes`` (``cell_type`` is ``""`` for whole-panel metrics; see :data:`PANEL_METRICS`).

    The structure metrics (kNN overlap, cluster similarity) need more held-out cells than the
    largest neighbourhood; ``structure=None`` skips them on smaller splits and says why in
    ``table.attrs["structure_skipped"]``, ``structure=True`` raises instead."""
    from seqattn.device import single_threaded
    from seqattn.genomics import genes_to_indices

    if dataset.task != "classification":
        raise DataError("Panel metrics need cell types (a classification target).")
    train, test = np.asarray(train), np.asarray(test)
    needed = max(counts[1], GRAPH_NEIGHBOURS, max(KNN_KS)) + 1
    skipped = ""
    if len(test) < needed:
        skipped = (f"Only {len(test)} held-out cells: the structure metrics (kNN overlap, cluster "
                   f"similarity) need at least {needed}.")
        if structure:
            raise DataError(skipped)
    measure_structure = structure is not False and not skipped
    types = dataset.class_names or [str(c) for c in range(dataset.n_classes)]
    rows: list[dict[str, Any]] = []
    with single_threaded():
        if reference is None and measure_structure:
            reference = reference_structure(dataset.X[test], counts=counts, random_state=random_state)
        for name, genes in panels.items():
            idx = genes_to_indices(dataset.feature_names, list(genes))
            if len(idx) < 2:
                raise DataError(f"Panel {name!r} has {len(idx)} gene(s); panel metrics need at least 2.")
            X = dataset.X[:, idx]
            values: dict[str, float] = {}
            for model in classifiers:
                scores = classification_scores(X[train], dataset.y[train], X[test], dataset.y[test],
                                               dataset.n_classes, model, random_state)
                values[f"balanced_accuracy_{model}"] = scores["balanced_accuracy"]
                if model == "logreg":
                    values.update(accuracy_logreg=scores["accuracy"], macro_f1_logreg=scores["macro_f1"])
                    rows += _per_type(name, "f1_logreg", scores["f1"], types, len(idx))
                rows += _per_type(name, f"recall_{model}", scores["recall"], types, len(idx))
            if measure_structure:
                values.update(_structure_scores(X[test], reference, counts, random_state))
            values.update(panel_correlation(X[test]))
            rows += [{"panel": name, "metric": m, "cell_type": "", "value": v, "n_genes": len(idx)}
                     for m, v in values.items()]
    order = {m: i for i, m in enumerate(PANEL_METRICS)}
    frame = pd.DataFrame(rows, columns=["panel", "metric", "cell_type", "value", "n_genes"])
    frame["_order"] = frame["metric"].map(order)
    frame = frame.sort_values(["panel", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    frame.attrs["structure_skipped"] = skipped
    return frame


def _per_type(panel: str, metric: str, values: np.ndarray, types: Sequence[str], n_genes: int) -> list[dict]:
    return [{"panel": panel, "metric": metric, "cell_type": str(t), "value": float(v), "n_genes": n_genes}
            for t, v in zip(types, values)]


# ------------------------------------------------------------------ several splits, several methods
def evaluate_panel_methods(
    dataset: Dataset,
    selectors: Mapping[str, Selector],
    sizes: Sequence[int] = (20,),
    *,
    n_splits: int = 5,
    test_fraction: float = 0.25,
    seeds: Sequence[int] | None = None,
    classifiers: Sequence[str] = CLASSIFIERS,
    callback: Callable[[int, int, str], Any] | None = None,
) -> pd.DataFrame:
    """Each selector (name → ``f(training_dataset, k) -> genes``) picks a panel of every size on the
    training cells of each stratified split (seeds 0..n_splits−1 of
    :func:`seqattn.data.split_indices`); :func:`panel_metrics` scores all panels of a split on its
    held-out cells. Returns the tidy table with ``split``, ``size`` and the selection's
    ``seconds`` added. Selection never sees the held-out cells."""
    from seqattn.evaluation.retrain import subset_dataset

    seeds = list(range(n_splits)) if seeds is None else list(seeds)
    tables = []
    total, done = len(seeds) * len(sizes) * len(selectors), 0
    for seed in seeds:
        train, _, test = split_indices(dataset.n_samples, dataset.y, val_fraction=0.0, test_fraction=test_fraction,
                                       random_state=seed)
        training = subset_dataset(dataset, train)
        training.extra["split_seed"] = seed  # provenance for selectors that cache by split (the benchmark's)
        reference = reference_structure(dataset.X[test], random_state=seed)
        for size in sizes:
            panels, seconds = {}, {}
            for name, select in selectors.items():
                if callback:
                    callback(done, total, f"split {seed}: {name}, {size} genes")
                start = time.perf_counter()
                panels[name] = list(select(training, size))
                seconds[name] = time.perf_counter() - start
                done += 1
            table = panel_metrics(dataset, panels, train, test, classifiers=classifiers, random_state=seed,
                                  reference=reference)
            table["seconds"] = table["panel"].map(seconds)
            table.insert(0, "size", size)
            table.insert(0, "split", seed)
            tables.append(table)
    if callback:
        callback(total, total, "done")
    return pd.concat(tables, ignore_index=True)


def summarise_panel_metrics(table: pd.DataFrame, *, per_type: bool = False) -> pd.DataFrame:
    """Mean and sample sd over splits of every (size, panel, metric[, cell_type])."""
    keys = [c for c in ("size", "panel", "metric") if c in table]
    frame = table if per_type else table[table["cell_type"] == ""]
    if per_type:
        keys.append("cell_type")
    grouped = frame.groupby(keys, sort=False)["value"]
    return grouped.agg(mean="mean", sd="std", n_splits="count").reset_index()


def held_out_panel_metrics(dataset: Dataset, panels: Mapping[str, Sequence[str | int]], *,
                           test_fraction: float = 0.25, random_state: int = 0,
                           classifiers: Sequence[str] = CLASSIFIERS) -> pd.DataFrame:
    """:func:`panel_metrics` on the Gene panel page's split: the same stratified train/test split
    as :func:`seqattn.genomics.panel_accuracy` (``split_indices``, seed ``random_state``)."""
    train, _, test = split_indices(dataset.n_samples, dataset.y, val_fraction=0.0, test_fraction=test_fraction,
                                   random_state=random_state)
    table = panel_metrics(dataset, panels, train, test, classifiers=classifiers, random_state=random_state)
    table.attrs.update(n_train=int(len(train)), n_test=int(len(test)))
    return table
