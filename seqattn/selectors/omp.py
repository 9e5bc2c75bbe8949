"""Orthogonal Matching Pursuit: the greedy baseline SA provably matches.

Each step picks the feature most correlated with the current residual
(``argmax |X_iᵀ r|``), then refits least squares on all picks so the residual
is orthogonal to them. Classification uses *simultaneous* OMP on the one-hot
target: the score of a feature is the ℓ2 norm of its correlations with the
residuals of all classes.

Group OMP (Lozano et al., 2009) when ``groups`` are given: the group whose
columns capture the most residual is picked, i.e. the largest norm of the
residual's projection onto the span of the group's centred columns,
``sqrt(Σ_classes c_gᵀ G_g⁺ c_g)`` with ``c_g = X_gᵀ r`` and ``G_g`` the
group's Gram matrix. For a group of one this is ``|x_iᵀ r| / ‖x_i‖``, the
usual OMP score, so singleton groups pick exactly as plain OMP.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from seqattn.data import (DataError, Dataset, check_pinned_banned, dense_columns, encode_target, infer_task,
                          split_indices, validate_k)
from seqattn.scoring import metric_name, subset_metric
from seqattn.trace import SelectionTrace


def _matrix(X):
    """float64 dense array, or CSR kept sparse (large single-cell data must not be densified)."""
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float64)
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    return np.asarray(X, dtype=np.float64)


def omp_select(
    X,
    y,
    k: int,
    feature_names: Sequence[str] | None = None,
    *,
    task: str = "auto",
    standardize: bool = True,
    fit_intercept: bool = True,
    banned: Sequence[int] = (),
    pinned: Sequence[int] = (),
    validation_fraction: float = 0.2,
    random_state: int | None = 0,
    dataset_name: str = "",
    groups=None,
) -> SelectionTrace:
    """Pick ``k`` features by OMP and return the per-step trace.

    ``standardize`` scales columns to unit norm (after centring when
    ``fit_intercept``) so no feature wins by its units; with both flags off the
    picks equal scikit-learn's ``orthogonal_mp`` on the raw ``X``. Scores per
    step are ``|X_iᵀ r|`` (row norm over classes for classification). The
    validation metric per step comes from a refit on a held-out split and does
    not influence the picks. ``groups`` (a :class:`~seqattn.data.groups.FeatureGroups`
    or ``{name: [columns]}``) makes group OMP: picks, ``pinned``, ``banned``
    and scores are then per group.
    """
    if feature_names is None:
        feature_names = list(map(str, X.columns)) if hasattr(X, "columns") else None
    A = _matrix(X)
    y = np.asarray(y)
    if A.ndim != 2 or A.shape[0] != len(y):
        raise DataError(f"X has shape {A.shape} but y has {len(y)} values.")
    values = A.data if sp.issparse(A) else A
    if not np.all(np.isfinite(values)):
        raise DataError("X contains NaN or infinite values; clean or impute them first.")
    n, d = A.shape
    names = [str(f) for f in feature_names] if feature_names is not None else [f"x{i}" for i in range(d)]
    task = infer_task(y) if task == "auto" else task
    y_codes, _ = encode_target(y, task)
    if groups is not None:
        return _group_omp(A, y_codes, k, names, groups, task=task, standardize=standardize,
                          fit_intercept=fit_intercept, banned=banned, pinned=pinned,
                          validation_fraction=validation_fraction, random_state=random_state,
                          dataset_name=dataset_name)
    pinned, banned = check_pinned_banned(d, pinned, banned)
    k = validate_k(k, d, n_pinned=len(pinned), n_banned=len(banned))

    Y = np.eye(int(y_codes.max()) + 1)[y_codes] if task == "classification" else y_codes.astype(np.float64)[:, None]
    # Centring is implicit: with a centred target every residual sums to zero, so
    # Xᵀr equals X_centredᵀr; only the column norms need the means. Sparse X stays sparse.
    mean = np.asarray(A.mean(axis=0)).ravel() if fit_intercept else np.zeros(d)
    if fit_intercept:
        Y = Y - Y.mean(axis=0)
    sq = np.asarray(A.multiply(A).sum(axis=0)).ravel() if sp.issparse(A) else (A * A).sum(axis=0)
    norms = np.sqrt(np.maximum(sq - n * mean**2, 0.0))
    usable = norms > 1e-12
    scale = np.where(usable & standardize, norms, 1.0)
    pickable = usable.copy()
    pickable[pinned + banned] = False
    if pickable.sum() < k:  # constant columns have no correlation with anything: never picked
        raise DataError(f"Only {int(pickable.sum())} candidate feature(s) vary (the others are constant, pinned "
                        f"or banned); choose k ≤ {int(pickable.sum())} or drop the constant columns.")

    start = time.perf_counter()
    train, val, _ = split_indices(n, y_codes if task == "classification" else None, validation_fraction, 0.0,
                                  random_state)
    X_train, y_train, X_val, y_val = A[train], y_codes[train], A[val], y_codes[val]  # sliced once, not per step
    trace = SelectionTrace(method="omp", feature_names=names, dataset=dataset_name, task=task,
                           metric_name=metric_name(task), pinned=pinned, banned=banned,
                           settings={"k": int(k), "standardize": standardize, "fit_intercept": fit_intercept,
                                     "simultaneous": task == "classification"})
    trace.base_metric = subset_metric(X_train, y_train, X_val, y_val, pinned, task, random_state)
    previous = trace.base_metric
    chosen = list(pinned)
    residual = _residual(A, Y, chosen, mean, scale)
    for _ in range(int(k)):
        scores = np.linalg.norm(np.asarray(A.T @ residual), axis=1) / scale
        scores[~pickable] = np.nan
        feature = int(np.nanargmax(scores))
        chosen.append(feature)
        pickable[feature] = False
        residual = _residual(A, Y, chosen, mean, scale)
        metric = subset_metric(X_train, y_train, X_val, y_val, chosen, task, random_state)
        trace.add_step(feature, scores, metric - previous, metric, time.perf_counter() - start)
        previous = metric
    return trace


def _residual(A, Y: np.ndarray, chosen: list[int], mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Least-squares residual of Y on the chosen (centred, scaled) columns; only those are densified."""
    if not chosen:
        return Y.copy()
    columns = (dense_columns(A, chosen) - mean[chosen]) / scale[chosen]
    coef, *_ = np.linalg.lstsq(columns, Y, rcond=None)
    return Y - columns @ coef


def _group_omp(A, y_codes: np.ndarray, k: int, column_names: list[str], groups, *, task: str, standardize: bool,
               fit_intercept: bool, banned: Sequence[int], pinned: Sequence[int], validation_fraction: float,
               random_state: int | None, dataset_name: str) -> SelectionTrace:
    """Group OMP: see the module docstring. Same split, refit and trace layout as plain OMP."""
    from seqattn.data.groups import FeatureGroups

    if not isinstance(groups, FeatureGroups):
        groups = FeatureGroups.from_mapping(groups, column_names)
    n, d = A.shape
    if groups.n_columns != d:
        raise DataError(f"groups cover {groups.n_columns} columns but X has {d}.")
    n_units = groups.n_groups
    pinned, banned = check_pinned_banned(n_units, pinned, banned)
    k = validate_k(k, n_units, n_pinned=len(pinned), n_banned=len(banned))
    Y = np.eye(int(y_codes.max()) + 1)[y_codes] if task == "classification" else y_codes.astype(np.float64)[:, None]
    mean = np.asarray(A.mean(axis=0)).ravel() if fit_intercept else np.zeros(d)
    if fit_intercept:
        Y = Y - Y.mean(axis=0)
    sq = np.asarray(A.multiply(A).sum(axis=0)).ravel() if sp.issparse(A) else (A * A).sum(axis=0)
    norms = np.sqrt(np.maximum(sq - n * mean**2, 0.0))
    usable = norms > 1e-12
    scale = np.where(usable & standardize, norms, 1.0)
    # per group: pseudo-inverse of the Gram matrix of its centred, scaled columns
    gram_pinv = []
    for cols in groups.columns:
        block = (dense_columns(A, list(cols)) - mean[list(cols)]) / scale[list(cols)]
        gram_pinv.append(np.linalg.pinv(block.T @ block, hermitian=True))
    pickable = np.array([bool(usable[list(cols)].any()) for cols in groups.columns])
    pickable[pinned + banned] = False
    if pickable.sum() < k:
        raise DataError(f"Only {int(pickable.sum())} candidate group(s) vary (the others are constant, pinned "
                        f"or banned); choose k ≤ {int(pickable.sum())}.")

    start = time.perf_counter()
    train, val, _ = split_indices(n, y_codes if task == "classification" else None, validation_fraction, 0.0,
                                  random_state)
    X_train, y_train, X_val, y_val = A[train], y_codes[train], A[val], y_codes[val]
    trace = SelectionTrace(method="omp", feature_names=list(groups.names), dataset=dataset_name, task=task,
                           metric_name=metric_name(task), pinned=pinned, banned=banned,
                           settings={"k": int(k), "standardize": standardize, "fit_intercept": fit_intercept,
                                     "simultaneous": task == "classification", "group_omp": True},
                           groups=[list(c) for c in groups.columns], column_names=list(column_names))
    trace.base_metric = subset_metric(X_train, y_train, X_val, y_val, groups.expand(pinned), task, random_state)
    previous = trace.base_metric
    chosen = list(pinned)
    residual = _residual(A, Y, groups.expand(chosen), mean, scale)
    for _ in range(int(k)):
        corr = np.asarray(A.T @ residual) / scale[:, None]  # d × outputs, for scaled columns
        scores = np.full(n_units, np.nan)
        for g in np.flatnonzero(pickable):
            c = corr[list(groups.columns[g])]
            scores[g] = np.sqrt(max(float(np.einsum("io,ij,jo->", c, gram_pinv[g], c)), 0.0))
        unit = int(np.nanargmax(scores))
        chosen.append(unit)
        pickable[unit] = False
        residual = _residual(A, Y, groups.expand(chosen), mean, scale)
        metric = subset_metric(X_train, y_train, X_val, y_val, groups.expand(chosen), task, random_state)
        trace.add_step(unit, scores, metric - previous, metric, time.perf_counter() - start)
        previous = metric
    return trace


def run_omp(dataset: Dataset, k: int, *, device: str = "auto", random_state: int | None = 0,
            callback: Callable[[int, int, str], Any] | None = None, standardize: bool = True,
            fit_intercept: bool = True, banned: Sequence[int] = (), pinned: Sequence[int] = (),
            validation_fraction: float = 0.2) -> SelectionTrace:
    """Registry runner: OMP on a ``Dataset`` (runs on the CPU; ``device`` does not apply); group OMP
    when the data set has feature groups."""
    trace = omp_select(dataset.X, dataset.y, k, dataset.feature_names, task=dataset.task, standardize=standardize,
                       fit_intercept=fit_intercept, banned=banned, pinned=pinned,
                       validation_fraction=validation_fraction, random_state=random_state,
                       dataset_name=dataset.name, groups=dataset.groups)
    if callback:
        callback(k, k, "done")
    return trace
