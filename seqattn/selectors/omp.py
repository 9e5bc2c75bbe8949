"""Orthogonal Matching Pursuit: the greedy baseline SA provably matches.

Each step picks the feature most correlated with the current residual
(``argmax |X_iᵀ r|``), then refits least squares on all picks so the residual
is orthogonal to them. Classification uses *simultaneous* OMP on the one-hot
target: the score of a feature is the ℓ2 norm of its correlations with the
residuals of all classes.

The least-squares refit is never solved from scratch: the Cholesky factor of
the picked columns' normal equations grows by one row per pick (float64), as
in scikit-learn's ``orthogonal_mp``, and all targets share it. Two ways to get
the correlations, chosen by cost (``precompute="auto"``):

* **direct**: ``Xᵀ R`` on the data each step (one pass over ``X`` per pick;
  sparse ``X`` stays sparse, only the picked columns are densified);
* **Gram**: ``G = XᵀX`` once (a BLAS-3 product), then each step only
  ``Xᵀy − G[:, S] Γ`` (``d·|S|`` work): far cheaper when ``n ≫ d`` or ``k`` is
  large relative to ``d``.

Centring (``fit_intercept``) and unit-norm scaling (``standardize``) are
applied implicitly, so sparse input is never densified. With ``backend="torch"``
(automatic on CUDA) the same algorithm runs on torch tensors on the device.

Group OMP (Lozano et al., 2009) when ``groups`` are given: the group whose
columns capture the most residual is picked, i.e. the largest norm of the
residual's projection onto the span of the group's centred columns,
``sqrt(Σ_classes c_gᵀ G_g⁺ c_g)`` with ``c_g = X_gᵀ r`` and ``G_g`` the
group's Gram matrix. For a group of one this is ``|x_iᵀ r| / ‖x_i‖``, the
usual OMP score, so singleton groups pick exactly as plain OMP.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from seqattn.data import (DataError, Dataset, check_pinned_banned, dense_columns, encode_target, infer_task,
                          split_indices, validate_k)
from seqattn.scoring import metric_name, subset_metric
from seqattn.trace import SelectionTrace

PRECOMPUTE_CHOICES = ("auto", True, False)
BACKENDS = ("auto", "numpy", "torch")
MAX_GRAM_FEATURES = 6000  # a float64 Gram of 6000² is 288 MB: above that the direct path is used
DEPENDENT = 1e-12  # a pick whose new Cholesky pivot² is below this share of its norm² lies in the span of the picks


def _matrix(X):
    """float64 dense array, or CSR kept sparse (large single-cell data must not be densified)."""
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float64)
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    return np.asarray(X, dtype=np.float64)


def use_gram(n_samples: int, n_features: int, n_picks: int, n_targets: int = 1, sparse: bool = False) -> bool:
    """Whether precomputing ``XᵀX`` is cheaper than one pass over ``X`` per pick.

    The Gram costs ``n·d²/2`` flops at BLAS-3 speed (≈20× the rate of the
    memory-bound ``Xᵀr`` pass, measured in ``benchmarks/bench_omp.py``); the
    direct path costs ``k`` passes of ``n·d·T``. Sparse products run at
    similar rates, so for sparse X the Gram needs a clear flop advantage.
    """
    if n_features > MAX_GRAM_FEATURES:
        return False
    direct = n_picks * n_samples * n_features * max(1, min(n_targets, 4))
    gram = n_samples * n_features * n_features / 2
    return gram < (1.0 if sparse else 20.0) * direct


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
    precompute: bool | str = "auto",
    validation: bool = False,
    validation_fraction: float = 0.2,
    random_state: int | None = 0,
    dataset_name: str = "",
    device: str = "cpu",
    backend: str = "auto",
    callback: Callable[[int, int, str], object] | None = None,
    groups=None,
) -> SelectionTrace:
    """Pick ``k`` features by OMP and return the per-step trace.

    ``standardize`` scales columns to unit norm (after centring when
    ``fit_intercept``) so no feature wins by its units; with both flags off the
    picks equal scikit-learn's ``orthogonal_mp`` on the raw ``X``. Scores per
    step are ``|X_iᵀ r|`` (row norm over classes for classification).

    ``precompute``: ``True`` uses the Gram matrix, ``False`` one pass over X
    per pick, ``"auto"`` whichever :func:`use_gram` estimates cheaper; the
    picks are the same. ``validation=True`` adds, per step, the validation
    metric of a logistic/ridge refit on a held-out split (the scorer every
    method's curve uses, :func:`seqattn.scoring.subset_metric`); it costs one
    refit per pick and never influences the picks, so it is off unless a curve
    is wanted. ``backend="torch"`` runs on torch tensors on ``device``
    (``"auto"``: torch exactly when the device is CUDA; MPS has no float64).
    ``callback(step, k, message)`` is called after each pick; returning
    ``True`` stops early (``trace.stopped_early``). ``groups`` (a
    :class:`~seqattn.data.groups.FeatureGroups` or ``{name: [columns]}``) makes
    group OMP (NumPy, a least-squares re-solve per pick): picks, ``pinned``,
    ``banned`` and scores are then per group.
    """
    A, y, names = _checked_input(X, y, feature_names, precompute, backend)
    n, d = A.shape
    task = infer_task(y) if task == "auto" else task
    y_codes, _ = encode_target(y, task)
    if groups is not None:
        return _group_omp(A, y_codes, y, k, names, groups, task=task, standardize=standardize,
                          fit_intercept=fit_intercept, banned=banned, pinned=pinned, validation=validation,
                          validation_fraction=validation_fraction, random_state=random_state,
                          dataset_name=dataset_name, callback=callback)
    pinned, banned = check_pinned_banned(d, pinned, banned, names)
    k = validate_k(k, d, n_pinned=len(pinned), n_banned=len(banned))
    Y, binary = _omp_target(y, y_codes, task, fit_intercept)
    mean, scale, pickable = _column_scales(A, fit_intercept, standardize)
    pickable[pinned + banned] = False
    if pickable.sum() < k:  # constant columns have no correlation with anything: never picked
        raise DataError(f"Only {int(pickable.sum())} candidate feature(s) vary (the others are constant, pinned "
                        f"or banned); choose k ≤ {int(pickable.sum())} or drop the constant columns.")

    start = time.perf_counter()
    gram = use_gram(n, d, k + len(pinned), Y.shape[1], sp.issparse(A)) if precompute == "auto" else bool(precompute)
    torch_device = _torch_device(device, backend)
    trace = SelectionTrace(method="omp", feature_names=names, dataset=dataset_name, task=task,
                           metric_name=metric_name(task), pinned=pinned, banned=banned,
                           device="cpu" if torch_device is None else str(torch_device),
                           settings={"k": k, "standardize": standardize, "fit_intercept": fit_intercept,
                                     "simultaneous": task == "classification", "precompute": gram,
                                     "validation": bool(validation)})
    scorer = _validation_scorer(A, y_codes, task, validation_fraction, random_state) if validation else None
    if scorer is not None:
        trace.base_metric = scorer(pinned)
    path = _OMPPath(A, Y, mean, scale, pickable, k + len(pinned), gram, torch_device)
    for feature in pinned:
        path.add(feature)
    _omp_steps(path, trace, k, scorer, np.sqrt(2.0) if binary else 1.0, callback, start)
    return trace


def _omp_steps(path: "_OMPPath", trace: SelectionTrace, k: int, scorer: Callable[[list[int]], float] | None,
               rescale: float, callback: Callable[[int, int, str], object] | None, start: float) -> None:
    """k picks along the OMP path, each with its read-out (when ``scorer``); the callback may stop them."""
    previous = trace.base_metric
    for step in range(k):
        feature, scores = path.pick()
        path.add(feature)
        metric = None if scorer is None else scorer(path.chosen)
        gain = None if metric is None else metric - previous
        trace.add_step(feature, scores * rescale, gain, metric, time.perf_counter() - start)
        previous = metric
        if callback is not None and callback(step + 1, k, f"picked {trace.feature_names[feature]}") is True:
            trace.stopped_early = step + 1 < k
            break


def _validation_scorer(A: Any, y_codes: np.ndarray, task: str, validation_fraction: float,
                       random_state: int | None) -> Callable[[list[int]], float]:
    """The read-out of every pick: :func:`subset_metric` on one held-out split, sliced once."""
    train, val, _ = split_indices(A.shape[0], y_codes if task == "classification" else None, validation_fraction,
                                  0.0, random_state)
    X_train, y_train, X_val, y_val = A[train], y_codes[train], A[val], y_codes[val]
    return lambda features: subset_metric(X_train, y_train, X_val, y_val, features, task, random_state)


def _checked_input(X, y, feature_names, precompute, backend) -> tuple[Any, np.ndarray, list[str]]:
    """(X as a float64 array or CSR matrix, y, feature names) after the input and option checks."""
    if feature_names is None:
        feature_names = list(map(str, X.columns)) if hasattr(X, "columns") else None
    A = _matrix(X)
    y = np.asarray(y)
    if A.ndim != 2 or A.shape[0] != len(y):
        raise DataError(f"X has shape {A.shape} but y has {len(y)} values.")
    values = A.data if sp.issparse(A) else A
    if not np.all(np.isfinite(values)):
        raise DataError("X contains NaN or infinite values; clean or impute them first.")
    if precompute not in PRECOMPUTE_CHOICES:
        raise ValueError(f"precompute must be one of {PRECOMPUTE_CHOICES}, got {precompute!r}.")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    names = [str(f) for f in feature_names] if feature_names is not None else [f"x{i}" for i in range(A.shape[1])]
    return A, y, names


def _omp_target(y: np.ndarray, y_codes: np.ndarray, task: str, fit_intercept: bool) -> tuple[np.ndarray, bool]:
    """OMP's target matrix (one-hot classes, centred with an intercept) and whether it is the binary shortcut."""
    # regression: the float64 target itself (encode_target's float32 copy would round it)
    Y = np.eye(int(y_codes.max()) + 1)[y_codes] if task == "classification" else y.astype(np.float64)[:, None]
    binary = task == "classification" and Y.shape[1] == 2 and fit_intercept
    if binary:  # centred two-class one-hot columns are ±copies: one carries the same picks at half the cost
        Y = Y[:, 1:]  # (its scores are 1/√2 of the one-hot ones and are rescaled below)
    if fit_intercept:
        Y = Y - Y.mean(axis=0)
    return Y, binary


def _column_scales(A: Any, fit_intercept: bool, standardize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column means, column scales, columns that vary) without centring A.

    Centring is implicit: with a centred target every residual sums to zero, so
    Xᵀr equals X_centredᵀr; only the column norms need the means. Sparse X stays sparse.
    """
    n, d = A.shape
    mean = np.asarray(A.mean(axis=0)).ravel() if fit_intercept else np.zeros(d)
    sq = np.asarray(A.multiply(A).sum(axis=0)).ravel() if sp.issparse(A) else np.einsum("ij,ij->j", A, A)
    norms = np.sqrt(np.maximum(sq - n * mean**2, 0.0))
    usable = norms > 1e-12
    scale = np.where(usable & standardize, norms, 1.0)
    return mean, scale, usable.copy()


def _torch_device(device, backend: str):
    """The torch device to run on, or None for the NumPy path."""
    if backend == "numpy":
        return None
    from seqattn.device import resolve_device

    resolved = resolve_device(device)
    if backend == "torch":
        if resolved.type == "mps":
            raise ValueError("OMP needs float64, which Apple MPS lacks; use device='cpu' or backend='numpy'.")
        return resolved
    return resolved if resolved.type == "cuda" else None


class _OMPPath:
    """The OMP state: picks, the growing Cholesky factor of their normal equations, the correlations.

    Works on NumPy arrays, or on torch tensors when ``torch_device`` is set
    (one code path; the few calls that differ go through ``_solve_lower``).
    """

    def __init__(self, A, Y: np.ndarray, mean: np.ndarray, scale: np.ndarray, pickable: np.ndarray,
                 max_picks: int, gram: bool, torch_device=None):
        self.A, self.mean, self.scale, self.gram = A, mean, scale, gram
        self.torch = torch_device
        self.pickable = pickable.copy()
        self.chosen: list[int] = []   # every pick, in order
        self.active: list[int] = []   # picks in the factorisation (a dependent pick adds nothing)
        n, T = Y.shape
        self.L = self._array(np.zeros((max_picks, max_picks)))
        self.B = self._array(np.zeros((max_picks, T)))    # picked columnsᵀ Y
        self.coef = None
        if gram and self.torch is not None and not sp.issparse(A):
            self.G, self.XY = self._device_gram(A, Y, mean, scale)  # the n·d² product on the device
            self.GS = self._array(np.zeros((A.shape[1], max_picks)))
            self.corr = self.XY
        elif gram:
            G, XY = _gram(A, Y, mean, scale)
            self.G, self.XY = self._array(G), self._array(XY)
            self.GS = self._array(np.zeros((len(G), max_picks)))  # G's columns of the active picks
            self.corr = self.XY
        else:
            self.Y = self._array(Y)
            self.Ft = self._array(np.zeros((max_picks, n)))   # picked columns (as rows), centred and scaled
            self.X = self._data(A)
            self.inv_scale = self._array(1.0 / scale)[:, None]
            self.corr = self._xt(self.Y) * self.inv_scale

    # ------------------------------------------------------------ backends
    def _device_gram(self, A: np.ndarray, Y: np.ndarray, mean: np.ndarray, scale: np.ndarray):
        """:func:`_gram` for dense data on the torch device."""
        X = self._array(A)
        if mean.any():
            X = X - self._array(mean)
        inv = self._array(1.0 / scale)
        G = (X.T @ X) * inv[:, None] * inv[None, :]
        return G, (X.T @ self._array(Y)) * inv[:, None]

    def _array(self, a: np.ndarray):
        if self.torch is None:
            return a
        import torch

        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64, device=self.torch)

    def _data(self, A):
        if self.torch is None:
            return A
        import torch

        if not sp.issparse(A):
            return self._array(A)
        At = sp.csr_matrix(A.T)  # Xᵀ as CSR: Xᵀ R is then a CSR × dense product on the device
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(torch.as_tensor(At.indptr, dtype=torch.int64),
                                           torch.as_tensor(At.indices, dtype=torch.int64),
                                           torch.as_tensor(At.data, dtype=torch.float64),
                                           size=At.shape, device=self.torch, check_invariants=True)

    def _xt(self, R):
        """Xᵀ R on the raw (uncentred, unscaled) data."""
        if self.torch is not None and self.X.layout != self._strided():
            return self.X @ R  # stored as Xᵀ
        return self.X.T @ R

    def _strided(self):
        import torch

        return torch.strided

    def _numpy(self, a) -> np.ndarray:
        return a if self.torch is None else a.detach().cpu().numpy()

    def _column(self, j: int):
        """Picked column j, centred and scaled, dense."""
        col = self.A[:, j]
        col = col.toarray().ravel() if sp.issparse(col) else np.asarray(col)
        return self._array((col - self.mean[j]) / self.scale[j])

    # ------------------------------------------------------------- the path
    def pick(self) -> tuple[int, np.ndarray]:
        """The next feature (first index among equal scores, like NumPy's argmax) and every score."""
        corr = self.corr
        scores = corr[:, 0].abs() if self.torch is not None and corr.shape[1] == 1 else (
            np.abs(corr[:, 0]) if corr.shape[1] == 1 else (corr * corr).sum(1) ** 0.5)
        scores = self._numpy(scores).astype(np.float64, copy=True)
        scores[~self.pickable] = np.nan
        return int(np.nanargmax(scores)), scores

    def add(self, j: int) -> None:
        """Add feature j: one new row of the Cholesky factor, a fresh solve, new correlations."""
        self.chosen.append(j)
        self.pickable[j] = False
        m = len(self.active)
        if self.gram:
            v, norm2, xty = self.GS[j, :m], float(self.G[j, j]), self.XY[j]
        else:
            f = self._column(j)
            self.Ft[m] = f
            v, norm2, xty = self.Ft[:m] @ f, float(f @ f), f @ self.Y
        if m:
            w = _solve_lower(self.L[:m, :m], v[:, None], transpose=False)[:, 0]
            pivot2 = norm2 - float(w @ w)
        else:
            w, pivot2 = None, norm2
        if pivot2 <= DEPENDENT * norm2:
            return  # in the span of the earlier picks: the fit (and the correlations) cannot change
        if m:
            self.L[m, :m] = w
        self.L[m, m] = pivot2 ** 0.5
        self.B[m] = xty
        if self.gram:
            self.GS[:, m] = self.G[:, j]
        self.active.append(j)
        m += 1
        L = self.L[:m, :m]
        self.coef = _solve_lower(L, _solve_lower(L, self.B[:m], transpose=False), transpose=True)
        if self.gram:
            self.corr = self.XY - self.GS[:, :m] @ self.coef
        else:
            residual = self.Y - self.Ft[:m].T @ self.coef
            self.corr = self._xt(residual) * self.inv_scale


def _solve_lower(L, b, transpose: bool):
    """Solve ``L x = b`` (or ``Lᵀ x = b``) for lower-triangular ``L``, NumPy or torch."""
    if isinstance(L, np.ndarray):
        return scipy.linalg.solve_triangular(L, b, lower=True, trans=1 if transpose else 0, check_finite=False)
    import torch

    return torch.linalg.solve_triangular(L.T if transpose else L, b, upper=transpose)


def _gram(A, Y: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G = X̃ᵀX̃`` and ``X̃ᵀY`` of the centred, scaled data ``X̃`` (``Y`` is already centred)."""
    n = A.shape[0]
    if sp.issparse(A):
        G = (A.T @ A).toarray() - n * np.outer(mean, mean)  # sparse X is centred in the product, not in memory
        XY = np.asarray(A.T @ Y)
    else:
        centred = A - mean if mean.any() else A
        G = centred.T @ centred  # NumPy runs XᵀX as one symmetric BLAS-3 product (syrk)
        XY = centred.T @ Y
    if np.any(scale != 1.0):
        G /= np.outer(scale, scale)
        XY = XY / scale[:, None]
    return G, XY


def _residual(A, Y: np.ndarray, chosen: list[int], mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Least-squares residual of Y on the chosen (centred, scaled) columns; only those are densified."""
    if not chosen:
        return Y.copy()
    columns = (dense_columns(A, chosen) - mean[chosen]) / scale[chosen]
    coef, *_ = np.linalg.lstsq(columns, Y, rcond=None)
    return Y - columns @ coef


def _group_omp(A, y_codes: np.ndarray, y: np.ndarray, k: int, column_names: list[str], groups, *, task: str, standardize: bool,
               fit_intercept: bool, banned: Sequence[int], pinned: Sequence[int], validation: bool,
               validation_fraction: float, random_state: int | None, dataset_name: str,
               callback: Callable[[int, int, str], object] | None = None) -> SelectionTrace:
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
    Y = np.eye(int(y_codes.max()) + 1)[y_codes] if task == "classification" else y.astype(np.float64)[:, None]
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
    trace = SelectionTrace(method="omp", feature_names=list(groups.names), dataset=dataset_name, task=task,
                           metric_name=metric_name(task), pinned=pinned, banned=banned,
                           settings={"k": int(k), "standardize": standardize, "fit_intercept": fit_intercept,
                                     "simultaneous": task == "classification", "group_omp": True,
                                     "validation": bool(validation)},
                           groups=[list(c) for c in groups.columns], column_names=list(column_names))
    if validation:
        train, val, _ = split_indices(n, y_codes if task == "classification" else None, validation_fraction, 0.0,
                                      random_state)
        X_train, y_train, X_val, y_val = A[train], y_codes[train], A[val], y_codes[val]
        trace.base_metric = subset_metric(X_train, y_train, X_val, y_val, groups.expand(pinned), task, random_state)
    previous = trace.base_metric
    chosen = list(pinned)
    residual = _residual(A, Y, groups.expand(chosen), mean, scale)
    for step in range(int(k)):
        corr = np.asarray(A.T @ residual) / scale[:, None]  # d × outputs, for scaled columns
        scores = np.full(n_units, np.nan)
        for g in np.flatnonzero(pickable):
            c = corr[list(groups.columns[g])]
            scores[g] = np.sqrt(max(float(np.einsum("io,ij,jo->", c, gram_pinv[g], c)), 0.0))
        unit = int(np.nanargmax(scores))
        chosen.append(unit)
        pickable[unit] = False
        residual = _residual(A, Y, groups.expand(chosen), mean, scale)
        metric = None
        if validation:
            metric = subset_metric(X_train, y_train, X_val, y_val, groups.expand(chosen), task, random_state)
        trace.add_step(unit, scores, None if metric is None else metric - previous, metric,
                       time.perf_counter() - start)
        previous = metric
        if callback is not None and callback(step + 1, k, f"picked {groups.names[unit]}") is True:
            trace.stopped_early = step + 1 < k
            break
    return trace


def run_omp(dataset: Dataset, k: int, *, device: str = "auto", random_state: int | None = 0,
            callback: Callable[[int, int, str], Any] | None = None, standardize: bool = True,
            fit_intercept: bool = True, banned: Sequence[int] = (), pinned: Sequence[int] = (),
            precompute: bool | str = "auto", validation: bool = True, validation_fraction: float = 0.2,
            backend: str = "auto") -> SelectionTrace:
    """Registry runner: OMP on a ``Dataset``, with its validation curve on (the app and CLI show it);
    group OMP when the data set has feature groups.

    ``validation=False`` skips the per-pick refits; on CUDA (``device``) the
    torch backend runs, elsewhere NumPy.
    """
    return omp_select(dataset.X, dataset.y, k, dataset.feature_names, task=dataset.task, standardize=standardize,
                      fit_intercept=fit_intercept, banned=banned, pinned=pinned, precompute=precompute,
                      validation=validation, validation_fraction=validation_fraction, random_state=random_state,
                      dataset_name=dataset.name, device=device, backend=backend, callback=callback,
                      groups=dataset.groups)
