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
MLP_BATCH = 48  # evaluation MLPs trained side by side in one batched run


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


def fit_and_score_many(
    problems: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]],
    task: str,
    *,
    n_classes: int = 0,
    epochs: int = TrainConfig.epochs,
    batch_size: int = TrainConfig.batch_size,
    learning_rate: float = TrainConfig.learning_rate,
    hidden: int = TrainConfig.hidden,
    device: str = "auto",
) -> list[float]:
    """:func:`fit_and_score` with ``model="mlp"`` for many ``(X_train, y_train, X_test, y_test, seed)`` at once.

    The networks train side by side as one batched computation (``bmm``), each
    exactly as :func:`seqattn.models.train_mlp` would train it alone: its own initialisation
    from its seed, its own mini-batch order, BatchNorm statistics, Adam state
    and learning-rate schedule (Adam and the schedule act element-wise, and
    the summed loss gives each network its own gradient). Inputs narrower than
    the widest are zero-padded and masked after the BatchNorm, so padding gets
    no gradient and changes nothing. On a small MLP one batched step costs
    about what one network's step costs, which is where the time goes; the
    results match one-at-a-time training up to float rounding
    (``tests/test_evaluate.py``). All problems must have as many training rows.
    """
    import torch

    from seqattn.device import resolve_device, torch_threads
    from seqattn.models import MLP

    if not problems:
        return []
    n_train = {len(p[1]) for p in problems}
    if len(n_train) != 1:
        raise ValueError(f"fit_and_score_many needs equally many training rows in every problem, got {n_train}.")
    dev = resolve_device(device)
    M, n = len(problems), n_train.pop()
    widths = [p[0].shape[1] for p in problems]
    K = max(widths)
    regression = task == "regression"
    n_out = 1 if regression else max([n_classes] + [int(p[1].max()) + 1 for p in problems])
    X = np.zeros((M, n, K), dtype=np.float32)
    X_test = [np.zeros((len(p[3]), K), dtype=np.float32) for p in problems]
    mask = np.zeros((M, 1, K), dtype=np.float32)
    targets, scales = [], []
    for m, (Xtr, ytr, Xte, _yte, _seed) in enumerate(problems):
        Xtr, Xte = standardise(np.asarray(Xtr, dtype=np.float64), np.asarray(Xte, dtype=np.float64))
        X[m, :, : widths[m]], X_test[m][:, : widths[m]] = Xtr, Xte
        mask[m, 0, : widths[m]] = 1.0
        if regression:
            mu, sd = float(ytr.mean()), float(ytr.std()) or 1.0
            targets.append((ytr - mu) / sd)
            scales.append((mu, sd))
        else:
            targets.append(ytr)
    with torch_threads(1, dev), torch.random.fork_rng(devices=[]):
        params = {name: torch.zeros(shape, device=dev) for name, shape in (
            ("gamma", (M, 1, K)), ("beta", (M, 1, K)), ("w1", (M, K, hidden)), ("b1", (M, 1, hidden)),
            ("w2", (M, hidden, n_out)), ("b2", (M, 1, n_out)))}
        generators = []
        for m, (*_, seed) in enumerate(problems):  # the same draws, in the same order, as train_mlp
            torch.manual_seed(seed)
            net = MLP(widths[m], n_out, hidden)
            params["gamma"][m, 0, : widths[m]] = net.norm.weight.detach()
            params["beta"][m, 0, : widths[m]] = net.norm.bias.detach()
            params["w1"][m, : widths[m]] = net.hidden.weight.detach().T
            params["b1"][m, 0] = net.hidden.bias.detach()
            params["w2"][m] = net.out.weight.detach().T
            params["b2"][m, 0] = net.out.bias.detach()
            generators.append(torch.Generator().manual_seed(seed))
        for value in params.values():
            value.requires_grad_(True)
        xt = torch.tensor(X, device=dev)
        mask_t = torch.tensor(mask, device=dev)
        target = torch.tensor(np.stack(targets), dtype=torch.float32 if regression else torch.long, device=dev)
        running_mean = torch.zeros((M, 1, K), device=dev)
        running_var = torch.ones((M, 1, K), device=dev)
        batch = int(min(batch_size, n))
        per_epoch = max(1, n // batch)
        opt = torch.optim.Adam(list(params.values()), lr=learning_rate)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1.0 / max(1, epochs * per_epoch)))
        models = torch.arange(M, device=dev)[:, None]
        eps, momentum = 1e-5, 0.1  # BatchNorm1d's defaults
        for _ in range(epochs):
            orders = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(dev)
            for b in range(per_epoch):
                rows = orders[:, b * batch:(b + 1) * batch]
                x = xt[models, rows]
                mean = x.mean(dim=1, keepdim=True)
                var = x.var(dim=1, unbiased=False, keepdim=True)
                with torch.no_grad():
                    running_mean.mul_(1 - momentum).add_(momentum * mean)
                    running_var.mul_(1 - momentum).add_(momentum * var * (batch / max(batch - 1, 1)))
                out = _batched_mlp(x, mean, var, params, mask_t, eps)
                picked = target[models, rows]
                if regression:
                    loss = ((out[..., 0] - picked) ** 2).mean(dim=1).sum()
                else:
                    loss = torch.nn.functional.cross_entropy(out.reshape(-1, n_out), picked.reshape(-1),
                                                             reduction="none").view(M, -1).mean(dim=1).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        scores = []
        with torch.no_grad():
            for m, (_, _, _, yte, _) in enumerate(problems):
                one = {name: value[m:m + 1] for name, value in params.items()}
                xm = torch.tensor(X_test[m], device=dev)[None]
                out = _batched_mlp(xm, running_mean[m:m + 1], running_var[m:m + 1], one, mask_t[m:m + 1],
                                   eps)[0].cpu().numpy()
                if regression:
                    mu, sd = scales[m]
                    scores.append(_score(task, yte, out[:, 0] * sd + mu))
                else:
                    scores.append(_score(task, yte, out.argmax(axis=1)))
    return scores


def _batched_mlp(x, mean, var, params: dict, mask, eps: float):
    """BN (given statistics) → Linear → ReLU → Linear for a stack of MLPs; x: (models, rows, inputs)."""
    import torch

    normed = ((x - mean) / torch.sqrt(var + eps) * params["gamma"] + params["beta"]) * mask
    hidden = torch.relu(torch.baddbmm(params["b1"], normed, params["w1"]))
    return torch.baddbmm(params["b2"], hidden, params["w2"])


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
    cache = {} if cache is None else cache
    strat = dataset.y if dataset.task == "classification" else None
    pending: dict[tuple[frozenset[int], int], tuple] = {}  # distinct fits still to run, in job order
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
    stopped = False
    start = time.perf_counter()
    keys = list(pending)
    chunk = MLP_BATCH if model == "mlp" else 1
    with single_threaded():
        for first in range(0, len(keys), chunk):
            part = keys[first:first + chunk]
            if model == "mlp":  # side by side in one batched training: same numbers, a fraction of the time
                values = fit_and_score_many([pending[key] for key in part], dataset.task,
                                            n_classes=dataset.n_classes, epochs=epochs, device=device)
            else:
                values = [fit_and_score(*pending[key][:4], dataset.task, n_classes=dataset.n_classes, model=model,
                                        seed=pending[key][4], epochs=epochs, device=device) for key in part]
            cache.update(zip(part, values))
            done = first + len(part)
            if callback is not None and callback(done, len(keys), f"{done}/{len(keys)} fits") and done < len(keys):
                stopped = True
                break
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


def summarize_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count per (method, k) of an :func:`accuracy_vs_k` frame."""
    grouped = frame.groupby(["method", "k"], sort=False)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
