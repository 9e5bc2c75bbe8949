"""How good is a feature subset? One cheap, shared answer.

Selectors use it to report the validation metric after each pick (and so the
marginal gain of the pick); greedy selection and the teaching view use it to
compute *true* marginal gains. A fresh, small, convex model (logistic
regression / ridge) is refit on the subset: cheap enough to run k times, and
independent of the network that did the selecting.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from seqattn.device import single_threaded

MAX_REFIT_ROWS = 5000
GAIN_MODELS = ("linear", "mlp")  # bound the cost of a refit on large data (rows are subsampled)


def metric_name(task: str) -> str:
    return "accuracy" if task == "classification" else "R²"


def _columns(X, features: Sequence[int]) -> np.ndarray:
    cols = X[:, list(features)]
    return cols.toarray() if sp.issparse(cols) else np.asarray(cols)


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
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(features) == 0:
        return baseline_metric(y_train, y_val, task)
    if X_train.shape[0] > MAX_REFIT_ROWS:
        rows = np.random.default_rng(random_state).choice(X_train.shape[0], MAX_REFIT_ROWS, replace=False)
        X_train, y_train = X_train[rows], y_train[rows]
    A_train, A_val = _columns(X_train, features), _columns(X_val, features)
    if model not in GAIN_MODELS:
        raise ValueError(f"gain model must be one of {GAIN_MODELS}, got {model!r}.")
    if task == "classification" and len(np.unique(y_train)) < 2:
        return baseline_metric(y_train, y_val, task)
    if model == "mlp":
        net = MLPClassifier if task == "classification" else MLPRegressor
        estimator = net(hidden_layer_sizes=(32,), max_iter=300, early_stopping=False, random_state=random_state)
    elif task == "classification":
        estimator = LogisticRegression(max_iter=300)
    else:
        estimator = Ridge(alpha=1.0)
    with single_threaded():
        fitted = make_pipeline(StandardScaler(), estimator).fit(A_train, y_train)
        return float(fitted.score(A_val, y_val))
