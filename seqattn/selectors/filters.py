"""Univariate filters: one score per feature, computed once, ranked into a trace.

* :func:`mutual_info_select` — estimated mutual information with the target;
* :func:`anova_select` — ANOVA F (classification) / f_regression;
* :func:`variance_select` — the raw column variance (target-blind sanity floor).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from seqattn.data import Dataset
from seqattn.scoring import DEFAULT_MAX_SAMPLES, prescreen_scores
from seqattn.selectors.ranking import Callback, ranking_trace
from seqattn.trace import SelectionTrace


def _dense_rows(dataset: Dataset, max_samples: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense X and y, rows subsampled to ``max_samples`` (filters on big data stay quick)."""
    rows = np.arange(dataset.n_samples)
    if len(rows) > max_samples:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, max_samples, replace=False))
    X = dataset.X[rows]
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return X.astype(np.float64), dataset.y[rows]


def mutual_info_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                       callback: Callback | None = None, n_neighbors: int = 3,
                       max_samples: int = DEFAULT_MAX_SAMPLES,
                pinned: Sequence[int] = (), banned: Sequence[int] = ()) -> SelectionTrace:
    """Rank by estimated mutual information with the target (k-NN estimator; univariate)."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    started = time.perf_counter()
    X, y = _dense_rows(dataset, max_samples, random_state)
    estimator = mutual_info_classif if dataset.task == "classification" else mutual_info_regression
    scores = estimator(X, y, discrete_features=False, n_neighbors=n_neighbors, random_state=random_state)
    settings = {"k": k, "n_neighbors": n_neighbors, "rows_used": len(y), "random_state": random_state,
                "score": "mutual information (nats)"}
    return ranking_trace("mutual_info", dataset, scores, k, settings=settings, random_state=random_state,
                         started=started, callback=callback, pinned=pinned, banned=banned)


def anova_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                 callback: Callback | None = None, max_samples: int = 100_000,
                pinned: Sequence[int] = (), banned: Sequence[int] = ()) -> SelectionTrace:
    """Rank by the ANOVA F statistic (classification) or f_regression (regression); univariate."""
    started = time.perf_counter()
    X, y = _dense_rows(dataset, max_samples, random_state)
    view = Dataset(X=X, y=y, feature_names=dataset.feature_names, task=dataset.task)
    scores = prescreen_scores(view, range(dataset.n_features))
    kind = "ANOVA F" if dataset.task == "classification" else "f_regression F"
    settings = {"k": k, "rows_used": len(y), "score": f"{kind} (constant features score 0)"}
    return ranking_trace("anova", dataset, scores, k, settings=settings, random_state=random_state,
                         started=started, callback=callback, pinned=pinned, banned=banned)


def variance_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                    callback: Callback | None = None,
                pinned: Sequence[int] = (), banned: Sequence[int] = ()) -> SelectionTrace:
    """Rank by raw (unstandardised) variance: ignores the target entirely, a sanity floor."""
    started = time.perf_counter()
    X = dataset.X
    if sp.issparse(X):
        mean = np.asarray(X.mean(axis=0)).ravel()
        scores = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean ** 2
    else:
        scores = np.asarray(X, dtype=np.float64).var(axis=0)
    settings = {"k": k, "score": "variance of the raw column (target not used)"}
    return ranking_trace("variance", dataset, scores, k, settings=settings, random_state=random_state,
                         started=started, callback=callback, pinned=pinned, banned=banned)
