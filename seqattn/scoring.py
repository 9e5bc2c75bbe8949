"""How good is a feature subset? The selection-time refit scoring, in one place.

A fresh, small, convex model (logistic regression / ridge) is refit on the
subset: cheap enough to run k times, and independent of the network that did
the selecting. All of it uses the same 80/20 split of a seed
(:data:`VALIDATION_FRACTION`), so numbers line up across methods.

* :func:`refit` — the one cheap model (logistic / ridge, optionally with
  pairwise products, or a small MLP) returning validation loss and metric;
* :func:`subset_metric` / :class:`ValidationScorer` — :func:`refit`'s metric
  after each pick, reported by SA, OMP and the one-shot rankers (``val_metric``);
* :class:`RefitScorer` — :func:`refit` on columns standardised once up front,
  for callers that refit hundreds of times: greedy forward selection and
  :func:`candidate_gains` (the teaching view's true marginal gains);
* :func:`prescreen_scores` — ANOVA F / f_regression shortlists for both.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import Dataset, dense_columns, split_indices, standardise
from seqattn.device import single_threaded

Callback = Callable[[int, int, str], Any]

MAX_REFIT_ROWS = 5000  # bound the cost of a refit on large data (rows are subsampled)
GAIN_MODELS = ("linear", "mlp")  # SA's gain_model choices for its read-out
REFIT_MODELS = ("logistic", "quadratic")
VALIDATION_FRACTION = 0.2  # the validation share of every selection-time split (SA's default too)
DEFAULT_MAX_CANDIDATES = 100
DEFAULT_MAX_SAMPLES = 3000


def metric_name(task: str) -> str:
    return "accuracy" if task == "classification" else "R²"


def baseline_metric(y_train: np.ndarray, y_val: np.ndarray, task: str) -> float:
    """Metric of the empty subset: majority-class accuracy, or R² of the mean (≈ 0)."""
    if task == "classification":
        values, counts = np.unique(y_train, return_counts=True)
        return float(np.mean(y_val == values[np.argmax(counts)]))
    denominator = float(np.sum((y_val - y_val.mean()) ** 2)) or 1.0
    return float(1.0 - np.sum((y_val - y_train.mean()) ** 2) / denominator)


def subset_metric(
    X_train,
    y_train: np.ndarray,
    X_val,
    y_val: np.ndarray,
    features: Sequence[int],
    task: str,
    random_state: int | None = 0,
    model: str = "linear",
) -> float:
    """Validation accuracy (classification) or R² (regression) of a model refit on ``features``.

    ``model="linear"`` (logistic / ridge) is cheap but blind to interactions
    such as XOR; ``model="mlp"`` (a small scikit-learn MLP) sees them at ~10×
    the cost.
    """
    if model not in GAIN_MODELS:
        raise ValueError(f"gain model must be one of {GAIN_MODELS}, got {model!r}.")
    if len(features) == 0:
        return baseline_metric(y_train, y_val, task)
    if X_train.shape[0] > MAX_REFIT_ROWS:
        rows = np.random.default_rng(random_state).choice(X_train.shape[0], MAX_REFIT_ROWS, replace=False)
        X_train, y_train = X_train[rows], y_train[rows]
    if task == "classification" and len(np.unique(y_train)) < 2:
        return baseline_metric(y_train, y_val, task)
    A_train, A_val = standardise(dense_columns(X_train, features, np.float64), dense_columns(X_val, features, np.float64))
    n_classes = int(np.concatenate([y_train, y_val]).max()) + 1 if task == "classification" else 0
    with single_threaded():
        return refit(A_train, y_train, A_val, y_val, task, model, random_state, n_classes)[1]


def refit(A_train: np.ndarray, y_train: np.ndarray, A_val: np.ndarray, y_val: np.ndarray, task: str,
          model: str = "linear", random_state: int | None = 0, n_classes: int = 0,
          C: float = 1.0) -> tuple[float, float]:
    """The one cheap refit: (validation loss, validation metric) of a model fit on standardised columns.

    ``model``: ``"linear"`` / ``"logistic"`` (logistic regression / ridge),
    ``"quadratic"`` (the same on the columns plus their pairwise products, so
    XOR-style interactions are visible) or ``"mlp"`` (a small scikit-learn
    MLP). The loss is cross-entropy over ``n_classes`` classes or MSE; the
    metric is accuracy or R².
    """
    return refit_with_state(A_train, y_train, A_val, y_val, task, model, random_state, n_classes, C)[:2]


def refit_with_state(A_train: np.ndarray, y_train: np.ndarray, A_val: np.ndarray, y_val: np.ndarray, task: str,
                     model: str = "linear", random_state: int | None = 0, n_classes: int = 0, C: float = 1.0,
                     init: tuple | None = None) -> tuple[float, float, tuple | None]:
    """:func:`refit`, plus the fitted logistic model ``(coef, intercept, classes)`` (else None).

    ``init`` (such a triple, widened to the columns given) starts the logistic
    solver there instead of at zero: for greedy's S ∪ {i}, the fit on S with a
    zero weight for i. The objective is strictly convex, so the optimum is the
    same; only the iterations (≈ 1.5× fewer on digits) differ.
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if model == "quadratic" and A_train.shape[1] > 1:
        rows, cols = np.triu_indices(A_train.shape[1])
        A_train = np.hstack([A_train, A_train[:, rows] * A_train[:, cols]])
        A_val = np.hstack([A_val, A_val[:, rows] * A_val[:, cols]])
    mlp = dict(hidden_layer_sizes=(32,), max_iter=300, early_stopping=False, random_state=random_state)
    if task == "classification":
        linear = model in ("linear", "logistic")
        warm = linear and init is not None and init[0].shape[1] == A_train.shape[1]
        est = MLPClassifier(**mlp) if model == "mlp" else LogisticRegression(C=C, max_iter=300, warm_start=warm,
                                                                             random_state=random_state)
        if warm:
            est.coef_, est.intercept_ = init[0].copy(), init[1].copy()
        est.fit(A_train, y_train)
        proba = np.full((len(A_val), n_classes), 1e-12)
        proba[:, est.classes_] = est.predict_proba(A_val)
        proba /= proba.sum(axis=1, keepdims=True)
        loss = log_loss(y_val, proba, labels=np.arange(n_classes))
        state = (est.coef_, est.intercept_, est.classes_) if linear else None
        return float(loss), float(np.mean(proba.argmax(axis=1) == y_val)), state
    est = MLPRegressor(**mlp) if model == "mlp" else Ridge(alpha=1.0 / C)
    return (*mse_r2(y_val, est.fit(A_train, y_train).predict(A_val)), None)


class ValidationScorer:
    """:func:`subset_metric` on one data set's selection split (same split as SA for a seed)."""

    def __init__(self, dataset: Dataset, random_state: int | None):
        strat = dataset.y if dataset.task == "classification" else None
        train, val, _ = split_indices(dataset.n_samples, strat, VALIDATION_FRACTION, 0.0, random_state)
        self.X_train, self.y_train = dataset.X[train], dataset.y[train]
        self.X_val, self.y_val = dataset.X[val], dataset.y[val]
        self.task, self.seed = dataset.task, random_state
        self.groups = dataset.groups

    def __call__(self, units: Sequence[int]) -> float:
        """The metric on the given features, or on all columns of the given feature groups."""
        columns = list(units) if self.groups is None else self.groups.expand(units)
        return subset_metric(self.X_train, self.y_train, self.X_val, self.y_val, columns, self.task, self.seed)


@dataclass
class RefitScorer:
    """Fits a cheap model on a subset of columns and reports validation loss and metric.

    Columns are standardised with training statistics once, up front. The loss
    (validation cross-entropy or MSE) is smooth, so it ranks candidates well;
    the metric (accuracy or R²) is what people read. ``model="quadratic"``
    adds all pairwise products of the chosen columns, which lets a linear
    learner see interactions such as XOR (``sign(x_a · x_b)``).
    """

    dataset: Dataset
    columns: Sequence[int]
    model: str = "logistic"
    random_state: int = 0
    max_samples: int = DEFAULT_MAX_SAMPLES
    C: float = 1.0
    train_index: np.ndarray = field(init=False, repr=False)
    val_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.model not in REFIT_MODELS:
            raise ValueError(f"refit model must be one of {REFIT_MODELS}, got {self.model!r}.")
        ds = self.dataset
        strat = ds.y if ds.task == "classification" else None
        # the same 80/20 split SA and ValidationScorer use for a given seed, so the numbers line up
        train, val, _ = split_indices(ds.n_samples, strat, VALIDATION_FRACTION, 0.0, random_state=self.random_state)
        rng = np.random.default_rng(self.random_state)
        if len(train) > self.max_samples:
            train = np.sort(rng.choice(train, self.max_samples, replace=False))
        if len(val) > self.max_samples:
            val = np.sort(rng.choice(val, self.max_samples, replace=False))
        self.train_index, self.val_index = train, val
        self._col_pos = {int(c): j for j, c in enumerate(self.columns)}
        block = dense_columns(ds.X, self.columns, np.float64)
        self._train_X, self._val_X = standardise(block[train], block[val])
        self._train_y, self._val_y = ds.y[train], ds.y[val]
        self._classes = np.arange(ds.n_classes)  # empty for regression

    def evaluate(self, features: Sequence[int]) -> tuple[float, float]:
        """(validation loss, validation metric) of the cheap model on ``features``."""
        return self.fit(features)[:2]

    def fit(self, features: Sequence[int], init: tuple | None = None) -> tuple[float, float, tuple | None]:
        """:meth:`evaluate` plus the fitted logistic model, optionally warm-started (see :func:`refit_with_state`)."""
        if len(features) == 0:
            return (*self._baseline(), None)
        pos = [self._col_pos[int(f)] for f in features]
        return refit_with_state(self._train_X[:, pos], self._train_y, self._val_X[:, pos], self._val_y,
                                self.dataset.task, self.model, self.random_state, len(self._classes), self.C, init)

    def score_test(self, features: Sequence[int], state: tuple | None, candidates: Sequence[int]) -> np.ndarray:
        """First-order gain of adding each candidate to the model fitted on ``features``.

        The gradient of the training loss with respect to a new column's weights
        at zero, ``‖x_iᵀ(P − Y)‖`` over classes (``|x_iᵀ r|`` for regression):
        the score test / grafting criterion. Cheap (one product), used only to
        shortlist which candidates greedy refits.
        """
        Xtr, y = self._train_X, self._train_y
        if self.dataset.task == "classification":
            onehot = np.eye(len(self._classes))[y]
            proba = np.tile(np.bincount(y, minlength=len(self._classes)) / len(y), (len(y), 1))
            if state is not None:
                coef, intercept, classes = state
                logits = Xtr[:, [self._col_pos[int(f)] for f in features]] @ coef.T + intercept
                if coef.shape[0] == 1:  # binary: one logit for classes[1], as in sklearn
                    logits = np.column_stack([np.zeros(len(y)), logits[:, 0]])
                logits -= logits.max(axis=1, keepdims=True)
                fitted = np.exp(logits)
                proba = np.zeros_like(onehot)
                proba[:, classes] = fitted / fitted.sum(axis=1, keepdims=True)
            residual = proba - onehot
        elif features:
            from sklearn.linear_model import Ridge

            design = Xtr[:, [self._col_pos[int(f)] for f in features]]
            residual = (y - Ridge(alpha=1.0 / self.C).fit(design, y).predict(design))[:, None]
        else:
            residual = (y - y.mean())[:, None]
        cand = [self._col_pos[int(c)] for c in candidates]
        return np.linalg.norm(Xtr[:, cand].T @ residual, axis=1)

    def _baseline(self) -> tuple[float, float]:
        """Loss and metric with no features: class priors, or the training mean."""
        if self.dataset.task == "classification":
            from sklearn.metrics import log_loss

            prior = np.bincount(self._train_y, minlength=len(self._classes)) + 1.0
            prior = prior / prior.sum()
            proba = np.tile(prior, (len(self._val_y), 1))
            loss = log_loss(self._val_y, proba, labels=self._classes)
            return float(loss), baseline_metric(self._train_y, self._val_y, "classification")
        pred = np.full(len(self._val_y), self._train_y.mean())
        return mse_r2(self._val_y, pred)[0], baseline_metric(self._train_y, self._val_y, "regression")


def mse_r2(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(mean squared error, R²); R² is 0 for a constant target."""
    mse = float(np.mean((y - pred) ** 2))
    var = float(np.var(y))
    return mse, (1.0 - mse / var) if var > 0 else 0.0


def prescreen_scores(dataset: Dataset, columns: Sequence[int]) -> np.ndarray:
    """Cheap univariate scores (ANOVA F / f_regression) used to shortlist candidates."""
    from sklearn.feature_selection import f_classif, f_regression

    X = dense_columns(dataset.X, columns, np.float64)
    scorer = f_classif if dataset.task == "classification" else f_regression
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant columns: score 0 below
        scores, _ = scorer(X, dataset.y)
    return np.nan_to_num(scores, nan=0.0, posinf=np.finfo(float).max)


def candidate_gains(
    dataset: Dataset,
    selected: Sequence[int],
    candidates: Sequence[int] | None = None,
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    random_state: int = 0,
    model: str = "logistic",
    max_samples: int = DEFAULT_MAX_SAMPLES,
    callback: Callback | None = None,
) -> pd.DataFrame:
    """The true greedy marginal gain of each candidate when added to ``selected``.

    For every candidate ``i`` a cheap model (see :class:`RefitScorer`) is
    refitted on ``selected ∪ {i}`` and compared with the model on ``selected``.
    ``gain`` is the drop in validation loss (cross-entropy or MSE; larger is
    better) — the quantity greedy forward selection maximises; ``metric_gain``
    is the change in accuracy / R².

    ``candidates=None`` means every unselected feature. When there are more
    than ``max_candidates``, the ones with the highest ANOVA F / f_regression
    scores are kept (a refit per feature would be too slow) and the frame's
    ``attrs["note"]`` says so. Rows are sorted by ``gain``, best first.
    """
    selected = [int(i) for i in selected]
    d = dataset.n_features
    bad = [i for i in selected if not 0 <= i < d]
    if bad:
        raise ValueError(f"selected holds feature indices outside 0..{d - 1}: {bad}.")
    chosen = set(selected)
    if candidates is None:
        candidates = [i for i in range(d) if i not in chosen]
    else:
        candidates = [int(i) for i in candidates if int(i) not in chosen]
        bad = [i for i in candidates if not 0 <= i < d]
        if bad:
            raise ValueError(f"candidates hold feature indices outside 0..{d - 1}: {bad}.")
    if max_candidates < 1:
        raise ValueError("max_candidates must be at least 1.")
    note = ""
    if len(candidates) > max_candidates:
        screen = prescreen_scores(dataset, candidates)
        keep = np.argsort(-screen, kind="stable")[:max_candidates]
        note = (f"{len(candidates)} candidates: kept the {max_candidates} with the highest "
                f"univariate score (ANOVA F / f_regression); the rest were not refitted.")
        candidates = [candidates[j] for j in sorted(keep)]

    scorer = RefitScorer(dataset, selected + candidates, model=model, random_state=random_state,
                         max_samples=max_samples)
    base_loss, base_metric = scorer.evaluate(selected)
    rows = []
    with single_threaded():
        rows = _candidate_rows(dataset, scorer, selected, candidates, base_loss, base_metric, callback)
    frame = pd.DataFrame(rows, columns=["feature", "name", "gain", "metric_gain", "val_loss", "val_metric"])
    frame = frame.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    frame.attrs.update(
        note=note,
        base_loss=base_loss,
        base_metric=base_metric,
        metric_name=metric_name(dataset.task),
        loss_name="cross-entropy" if dataset.task == "classification" else "MSE",
        model=model,
    )
    return frame


def _candidate_rows(dataset, scorer, selected, candidates, base_loss, base_metric, callback) -> list[dict]:
    rows = []
    for n, i in enumerate(candidates):
        loss, metric = scorer.evaluate(selected + [i])
        rows.append({
            "feature": i,
            "name": dataset.feature_names[i],
            "gain": base_loss - loss,
            "metric_gain": metric - base_metric,
            "val_loss": loss,
            "val_metric": metric,
        })
        if callback is not None:
            callback(n + 1, len(candidates), f"refit with {dataset.feature_names[i]}")
    return rows


def panel_model(X: Any, y: np.ndarray, max_iter: int) -> Any:
    """Standardised logistic regression on the panel (no centring for sparse counts), fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(with_mean=not sp.issparse(X)), LogisticRegression(max_iter=max_iter)).fit(X, y)
