"""Accuracy vs k: a *fresh* model trained on each method's first k picks, scored on held-out data.

The key chart of the Compare page. :func:`holdout` splits off a test part
before selection so filters and SHAP cannot peek at the test labels.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from seqattn.data import Dataset, dense_columns, split_indices, standardise
from seqattn.device import single_threaded
from seqattn.models import TrainConfig
from seqattn.scoring import metric_name, mse_r2
from seqattn.trace import SelectionTrace, as_trace_dict, pick_columns, picks

Callback = Callable[[int, int, str], Any]
DEFAULT_TEST_FRACTION = 0.25  # the test share of holdout() and of accuracy_vs_k's per-seed splits


def subset_dataset(dataset: Dataset, rows: np.ndarray, suffix: str = "") -> Dataset:
    """The same data set restricted to ``rows`` (ground truth and names kept)."""
    return replace(dataset, X=dataset.X[rows], y=dataset.y[rows], name=dataset.name + suffix,
                   extra=dict(dataset.extra))


def holdout(dataset: Dataset, test_fraction: float = DEFAULT_TEST_FRACTION,
            random_state: int = 0) -> tuple[Dataset, Dataset]:
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
#: Epochs of the evaluation MLP (library, Compare page, CLI): measured on digits, breast cancer and wine
#: (benchmarks/README.md, "Evaluation epochs"), 40 epochs score every method 0–2 points higher than 30
#: (wine k = 10: 3) at 1.4× the retraining time, and the methods keep their order; 30 keeps the page quick.
EVALUATION_EPOCHS = 30
#: The evaluation MLP: TrainConfig's network, batch and learning rate, EVALUATION_EPOCHS epochs.
EVALUATION_CONFIG = TrainConfig(epochs=EVALUATION_EPOCHS)
MLP_BATCH = 48  # evaluation MLPs trained side by side in one batched run (seqattn.models.train_mlps)


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
    config: TrainConfig = EVALUATION_CONFIG,
    device: str = "auto",
) -> float:
    """Train a fresh model on the given columns; test accuracy or R².

    ``model="mlp"`` is the SA paper's network (``seqattn.models.MLP``) trained
    with Adam as ``config`` says; ``"logistic"`` is logistic regression / ridge (fast).
    """
    if model not in EVAL_MODELS:
        raise ValueError(f"model must be one of {EVAL_MODELS}, got {model!r}.")
    if model == "mlp":
        return fit_and_score_many([(X_train, y_train, X_test, y_test, seed)], task, n_classes=n_classes,
                                  config=config, device=device)[0]
    X_train, X_test = standardise(np.asarray(X_train, dtype=np.float64), np.asarray(X_test, dtype=np.float64))
    if X_train.shape[1] == 0:
        return _no_feature_score(task, y_train, y_test)
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "classification":
        est = LogisticRegression(max_iter=500, random_state=seed).fit(X_train, y_train)
    else:
        est = Ridge(alpha=1.0).fit(X_train, y_train)
    return _score(task, y_test, est.predict(X_test))


def _no_feature_score(task: str, y_train: np.ndarray, y_test: np.ndarray) -> float:
    """No features: the majority class, or the training mean."""
    if task == "classification":
        return _score(task, y_test, np.full(len(y_test), np.bincount(y_train).argmax()))
    return _score(task, y_test, np.full(len(y_test), y_train.mean()))


def fit_and_score_many(
    problems: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]],
    task: str,
    *,
    n_classes: int = 0,
    config: TrainConfig = EVALUATION_CONFIG,
    device: str = "auto",
) -> list[float]:
    """:func:`fit_and_score` with ``model="mlp"`` for many ``(X_train, y_train, X_test, y_test, seed)`` at once.

    Columns are standardised per problem; the MLPs train side by side in one batched run
    (:func:`seqattn.models.train_mlps`), each with its own initialisation, batch order, BatchNorm
    statistics and Adam state from its seed, so one problem scores the same alone or among others
    (``tests/unit/test_evaluate.py``). All problems must have as many training rows.
    """
    import torch

    from seqattn.device import resolve_device
    from seqattn.models import train_mlps

    if not problems:
        return []
    scores: list[float | None] = [None] * len(problems)
    trained = []  # (position, standardised train, standardised test, y_test, seed) of problems with features
    for m, (Xtr, ytr, Xte, yte, seed) in enumerate(problems):
        Xtr, Xte = standardise(np.asarray(Xtr, dtype=np.float64), np.asarray(Xte, dtype=np.float64))
        if Xtr.shape[1] == 0:
            scores[m] = _no_feature_score(task, ytr, yte)
        else:
            trained.append((m, Xtr, ytr, Xte, yte, seed))
    if trained:
        dev = resolve_device(device)
        n_out = 1 if task == "regression" else max([n_classes] + [int(p[1].max()) + 1 for p in problems])
        stack = train_mlps([(Xtr, ytr, seed) for _, Xtr, ytr, _, _, seed in trained], task, n_out, config=config,
                           device=dev)
        for member, (m, _, _, Xte, yte, _) in enumerate(trained):
            out = stack.predict(member, torch.tensor(Xte, dtype=torch.float32, device=dev))
            if task == "regression":
                mu, sd = stack.target_scales[member]
                scores[m] = _score(task, yte, out[:, 0] * sd + mu)
            else:
                scores[m] = _score(task, yte, out.argmax(axis=1))
    return [float(v) for v in scores]


def accuracy_vs_k(
    dataset: Dataset,
    traces: Mapping[str, SelectionTrace] | Sequence[SelectionTrace],
    ks: Sequence[int],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    model: str = "mlp",
    epochs: int = EVALUATION_EPOCHS,
    test: Dataset | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    device: str = "auto",
    callback: Callback | None = None,
    cache: dict | None = None,
) -> pd.DataFrame:
    """Test accuracy (or R²) of a fresh model trained on the first k picks of every trace.

    With ``test=None`` each seed draws its own train/test split of ``dataset``
    (stratified) and its own model initialisation, so the spread covers both.
    With a separate ``test`` data set (see :func:`holdout`) the model trains
    on all of ``dataset`` and only the initialisation varies with the seed.
    Identical feature subsets are trained once per seed, so methods that agree
    get identical numbers; pass the same ``cache`` dict to calls on the same
    data and settings (as :func:`seqattn.evaluation.compare.compare_methods` does, one
    method at a time) to extend that across calls. MLPs train side by side
    (:func:`fit_and_score_many`, up to ``MLP_BATCH`` at once). Returns one tidy
    row per (method, k, seed); ``k`` values beyond a trace's length are
    skipped. A ``callback(fits_done, fits_total, message)`` that returns
    ``True`` stops after the current batch of fits; the rows so far are kept
    and ``frame.attrs["stopped"]`` is set.
    """
    labelled = as_trace_dict(traces)
    ks = sorted({int(k) for k in ks})
    _check_accuracy_request(dataset, labelled, ks, seeds, test)
    jobs = [(label, k, seed) for seed in seeds for label, tr in labelled.items() for k in ks if k <= tr.k]
    cache = {} if cache is None else cache
    pending = _pending_fits(dataset, labelled, jobs, cache, test, test_fraction)
    start = time.perf_counter()
    stopped = _run_fits(pending, cache, dataset, model, replace(EVALUATION_CONFIG, epochs=int(epochs)), device,
                        callback)
    rows = []
    for label, k, seed in jobs:
        key = (frozenset(pick_columns(labelled[label], k)), seed)
        if key in cache:
            rows.append({"method": label, "k": k, "seed": seed, "metric": metric_name(dataset.task),
                         "value": cache[key],
                         "features": ", ".join(labelled[label].feature_names[u] for u in picks(labelled[label], k))})
    frame = pd.DataFrame(rows, columns=["method", "k", "seed", "metric", "value", "features"])
    frame.attrs.update(model=model, epochs=epochs, seconds=time.perf_counter() - start, stopped=stopped,
                       split="separate test set" if test is not None else f"per-seed {test_fraction:.0%} test split")
    return frame


def _check_accuracy_request(dataset: Dataset, labelled: Mapping[str, SelectionTrace], ks: list[int],
                            seeds: Sequence[int], test: Dataset | None) -> None:
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


def _pending_fits(dataset: Dataset, labelled: Mapping[str, SelectionTrace], jobs: list[tuple[str, int, int]],
                  cache: dict, test: Dataset | None, test_fraction: float) -> dict[tuple[frozenset[int], int], tuple]:
    """The distinct fits still to run, in job order: (feature set, seed) -> fit_and_score_many's problem."""
    needed = sorted({c for label, k, _ in jobs for c in pick_columns(labelled[label], k)})
    X_all = dense_columns(dataset.X, needed, np.float64) if needed else np.empty((dataset.n_samples, 0))
    X_test_all = dense_columns(test.X, needed, np.float64) if (test is not None and needed) else None
    pos = {c: j for j, c in enumerate(needed)}
    strat = dataset.y if dataset.task == "classification" else None
    pending: dict[tuple[frozenset[int], int], tuple] = {}
    for label, k, seed in jobs:
        features = pick_columns(labelled[label], k)  # a picked feature group brings all its columns
        key = (frozenset(features), seed)
        if key in cache or key in pending:
            continue
        cols = [pos[c] for c in features]
        if test is None:
            tr, _, te = split_indices(dataset.n_samples, strat, 0.0, test_fraction, random_state=seed)
            pending[key] = (X_all[tr][:, cols], dataset.y[tr], X_all[te][:, cols], dataset.y[te], seed)
        else:
            pending[key] = (X_all[:, cols], dataset.y, X_test_all[:, cols], test.y, seed)
    return pending


def _run_fits(pending: dict, cache: dict, dataset: Dataset, model: str, config: TrainConfig, device: str,
              callback: Callback | None) -> bool:
    """Score the pending fits into ``cache`` (MLPs MLP_BATCH at a time, side by side); True when stopped."""
    keys = list(pending)
    chunk = MLP_BATCH if model == "mlp" else 1
    with single_threaded():
        for first in range(0, len(keys), chunk):
            part = keys[first:first + chunk]
            if model == "mlp":  # side by side in one batched training: same numbers, a fraction of the time
                values = fit_and_score_many([pending[key] for key in part], dataset.task,
                                            n_classes=dataset.n_classes, config=config, device=device)
            else:
                values = [fit_and_score(*pending[key][:4], dataset.task, n_classes=dataset.n_classes, model=model,
                                        seed=pending[key][4], device=device) for key in part]
            cache.update(zip(part, values))
            done = first + len(part)
            if callback is not None and callback(done, len(keys), f"{done}/{len(keys)} fits") and done < len(keys):
                return True
    return False


def summarize_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count per (method, k) of an :func:`accuracy_vs_k` frame."""
    grouped = frame.groupby(["method", "k"], sort=False)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
