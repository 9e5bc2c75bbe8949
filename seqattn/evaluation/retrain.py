"""Accuracy vs k: a *fresh* model trained on each method's first k picks, scored on held-out data.

The key chart of the Compare page. :func:`holdout` splits off a test part
before selection so filters and SHAP cannot peek at the test labels.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from seqattn.data import Dataset, dense_columns, split_indices, standardise
from seqattn.device import single_threaded
from seqattn.models import TrainConfig
from seqattn.scoring import metric_name, mse_r2
from seqattn.trace import SelectionTrace, as_trace_dict, pick_columns, picks

Callback = Callable[[int, int, str], Any]


def subset_dataset(dataset: Dataset, rows: np.ndarray, suffix: str = "") -> Dataset:
    """The same data set restricted to ``rows`` (ground truth and names kept)."""
    from dataclasses import replace

    return replace(dataset, X=dataset.X[rows], y=dataset.y[rows], name=dataset.name + suffix,
                   extra=dict(dataset.extra))


def holdout(dataset: Dataset, test_fraction: float = 0.25, random_state: int = 0) -> tuple[Dataset, Dataset]:
    """(selection part, test part): select features on the first, score on the second only.

    Selecting on all rows and testing on a subset of them lets univariate
    filters and SHAP peek at the test labels; the benchmark uses this split.
    """
    if not 0.0 < test_fraction < 0.9:
        raise ValueError(f"test_fraction must be in (0, 0.9), got {test_fraction!r}.")
    strat = dataset.y if dataset.task == "classification" else None
    train, _, test = split_indices(dataset.n_samples, strat, 0.0, test_fraction, random_state=random_state)
    return subset_dataset(dataset, train, ""), subset_dataset(dataset, test, " (test)")


# --------------------------------------------------------------------------- retrain on top-k
EVAL_MODELS = ("mlp", "logistic")


def _score(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    if task == "classification":
        return float(np.mean(pred == y))
    return mse_r2(y, pred)[1]


def fit_and_score(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    task: str,
    *,
    n_classes: int = 0,
    model: str = "mlp",
    seed: int = 0,
    epochs: int = TrainConfig.epochs,
    batch_size: int = TrainConfig.batch_size,
    learning_rate: float = TrainConfig.learning_rate,
    hidden: int = TrainConfig.hidden,
    device: str = "auto",
) -> float:
    """Train a fresh model on the given columns; test accuracy or R².

    ``model="mlp"`` is the SA paper's network (``seqattn.models.MLP``) trained
    with Adam; ``"logistic"`` is logistic regression / ridge (fast).
    """
    if model not in EVAL_MODELS:
        raise ValueError(f"model must be one of {EVAL_MODELS}, got {model!r}.")
    X_train, X_test = standardise(np.asarray(X_train, dtype=np.float64), np.asarray(X_test, dtype=np.float64))
    if X_train.shape[1] == 0:  # no features: majority class / training mean
        if task == "classification":
            majority = np.bincount(y_train).argmax()
            return _score(task, y_test, np.full(len(y_test), majority))
        return _score(task, y_test, np.full(len(y_test), y_train.mean()))
    if model == "logistic":
        from sklearn.linear_model import LogisticRegression, Ridge

        if task == "classification":
            est = LogisticRegression(max_iter=500, random_state=seed).fit(X_train, y_train)
        else:
            est = Ridge(alpha=1.0).fit(X_train, y_train)
        return _score(task, y_test, est.predict(X_test))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, hidden=hidden)
    return _fit_mlp(X_train, y_train, X_test, y_test, task, n_classes, seed, config, device)


def _fit_mlp(X_train, y_train, X_test, y_test, task, n_classes, seed, config: TrainConfig, device) -> float:
    import torch

    from seqattn.models import train_mlp

    n_out = max(n_classes, int(y_train.max()) + 1) if task == "classification" else 1
    net = train_mlp(X_train, y_train, task, n_out, seed=seed, config=config, device=device)
    dev = next(net.parameters()).device
    with torch.no_grad():
        out = net(torch.tensor(X_test, dtype=torch.float32, device=dev)).cpu().numpy()
    mu, sd = net.target_scale
    pred = out.argmax(axis=1) if task == "classification" else out[:, 0] * sd + mu
    return _score(task, y_test, pred)


def accuracy_vs_k(
    dataset: Dataset,
    traces: Mapping[str, SelectionTrace] | Sequence[SelectionTrace],
    ks: Sequence[int],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    model: str = "mlp",
    epochs: int = TrainConfig.epochs,
    test: Dataset | None = None,
    test_fraction: float = 0.25,
    device: str = "auto",
    callback: Callback | None = None,
) -> pd.DataFrame:
    """Test accuracy (or R²) of a fresh model trained on the first k picks of every trace.

    With ``test=None`` each seed draws its own train/test split of ``dataset``
    (stratified) and its own model initialisation, so the spread covers both.
    With a separate ``test`` data set (see :func:`holdout`) the model trains
    on all of ``dataset`` and only the initialisation varies with the seed.
    Identical feature subsets are trained once per seed, so methods that agree
    get identical numbers. Returns one tidy row per (method, k, seed);
    ``k`` values beyond a trace's length are skipped. A ``callback`` that
    returns ``True`` stops after the current fit; the rows so far are kept and
    ``frame.attrs["stopped"]`` is set.
    """
    labelled = as_trace_dict(traces)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 0:
        raise ValueError("ks must be a non-empty list of non-negative integers.")
    if not seeds:
        raise ValueError("seeds must hold at least one seed.")
    for label, trace in labelled.items():
        if trace.n_columns != dataset.n_features:
            raise ValueError(f"Trace {label!r} has {trace.n_columns} features but the data set has "
                             f"{dataset.n_features}; was it computed on another data set?")
    if test is not None and test.n_features != dataset.n_features:
        raise ValueError("The test data set must have the same columns as the training data set.")
    jobs = [(label, k, seed) for seed in seeds for label, tr in labelled.items() for k in ks if k <= tr.k]
    needed = sorted({c for label, k, _ in jobs for c in pick_columns(labelled[label], k)})
    X_all = dense_columns(dataset.X, needed, np.float64) if needed else np.empty((dataset.n_samples, 0))
    X_test_all = dense_columns(test.X, needed, np.float64) if (test is not None and needed) else None
    pos = {c: j for j, c in enumerate(needed)}
    cache: dict[tuple[frozenset[int], int], float] = {}
    rows = []
    stopped = False
    start = time.perf_counter()
    with single_threaded():
        for n, (label, k, seed) in enumerate(jobs):
            features = pick_columns(labelled[label], k)  # a picked feature group brings all its columns
            key = (frozenset(features), seed)
            if key not in cache:
                cols = [pos[c] for c in features]
                if test is None:
                    strat = dataset.y if dataset.task == "classification" else None
                    tr, _, te = split_indices(dataset.n_samples, strat, 0.0, test_fraction, random_state=seed)
                    Xtr, ytr, Xte, yte = X_all[tr][:, cols], dataset.y[tr], X_all[te][:, cols], dataset.y[te]
                else:
                    Xtr, ytr, Xte, yte = X_all[:, cols], dataset.y, X_test_all[:, cols], test.y
                cache[key] = fit_and_score(Xtr, ytr, Xte, yte, dataset.task, n_classes=dataset.n_classes,
                                           model=model, seed=seed, epochs=epochs, device=device)
            rows.append({"method": label, "k": k, "seed": seed, "metric": metric_name(dataset.task),
                         "value": cache[key],
                         "features": ", ".join(labelled[label].feature_names[u] for u in picks(labelled[label], k))})
            if callback is not None and callback(n + 1, len(jobs), f"{label}, k={k}, seed {seed}"):
                stopped = True
                break
    frame = pd.DataFrame(rows, columns=["method", "k", "seed", "metric", "value", "features"])
    frame.attrs.update(model=model, epochs=epochs, seconds=time.perf_counter() - start, stopped=stopped,
                       split="separate test set" if test is not None else f"per-seed {test_fraction:.0%} test split")
    return frame


def summarize_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count per (method, k) of an :func:`accuracy_vs_k` frame."""
    grouped = frame.groupby(["method", "k"], sort=False)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
