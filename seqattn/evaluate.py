"""How good is a selection? Retrain on the picks, compare picks, refit candidates.

* :func:`accuracy_vs_k` — a *fresh* model trained on the first k picks of each
  trace, scored on a held-out test split, over several seeds (the key chart of
  the Compare page).
* :func:`overlap_matrix` / :func:`rank_correlation_matrix` / :func:`recovery` —
  how much methods agree with each other and with planted ground truth.
* :func:`candidate_gains` — the *true* greedy marginal gain of every candidate
  at a step: a cheap model refitted on S ∪ {i}. Greedy forward selection
  (``seqattn.baselines.greedy_select``) is this, repeated.

The cheap refit model (:class:`RefitScorer`) is deliberately small — logistic
regression / ridge, optionally with pairwise products so XOR-style interactions
are visible — because it is refitted hundreds of times.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import Dataset, split_indices
from seqattn.device import single_threaded, torch_threads
from seqattn.scoring import metric_name
from seqattn.trace import SelectionTrace

Callback = Callable[[int, int, str], Any]

REFIT_MODELS = ("logistic", "quadratic")
DEFAULT_MAX_CANDIDATES = 100
DEFAULT_MAX_SAMPLES = 3000


def metric_name_for(task: str) -> str:
    """The headline metric of a task: accuracy for classes, R² for regression."""
    return metric_name(task)


# --------------------------------------------------------------------------- cheap refits
def _columns(X: Any, cols: Sequence[int]) -> np.ndarray:
    """Dense float64 copy of some columns (sparse data is densified column-wise only)."""
    cols = list(cols)
    sub = X[:, cols]
    sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    return sub.astype(np.float64, copy=False)


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
        # the same 80/20 split SA and seqattn.scoring use for a given seed, so the numbers line up
        train, val, _ = split_indices(ds.n_samples, strat, 0.2, 0.0, random_state=self.random_state)
        rng = np.random.default_rng(self.random_state)
        if len(train) > self.max_samples:
            train = np.sort(rng.choice(train, self.max_samples, replace=False))
        if len(val) > self.max_samples:
            val = np.sort(rng.choice(val, self.max_samples, replace=False))
        self.train_index, self.val_index = train, val
        self._col_pos = {int(c): j for j, c in enumerate(self.columns)}
        block = _columns(ds.X, self.columns)
        mean = block[train].mean(axis=0)
        std = block[train].std(axis=0)
        std[std < 1e-12] = 1.0
        block = (block - mean) / std
        self._train_X, self._val_X = block[train], block[val]
        self._train_y, self._val_y = ds.y[train], ds.y[val]
        if ds.task == "classification":
            self._classes = np.arange(ds.n_classes)

    def _design(self, X: np.ndarray) -> np.ndarray:
        if self.model == "quadratic" and X.shape[1] > 1:
            rows, cols = np.triu_indices(X.shape[1])
            return np.hstack([X, X[:, rows] * X[:, cols]])
        return X

    def evaluate(self, features: Sequence[int]) -> tuple[float, float]:
        """(validation loss, validation metric) of the cheap model on ``features``."""
        return self.fit(features)[:2]

    def fit(self, features: Sequence[int], init: tuple | None = None) -> tuple[float, float, tuple | None]:
        """Like :meth:`evaluate`, plus the fitted (coef, intercept, classes) for a warm start.

        ``init`` starts the logistic solver there instead of at zero: for greedy's
        S ∪ {i}, the fit on S with a zero weight for i. The objective is strictly
        convex, so the optimum is the same; only the iterations (≈ 1.7× fewer on
        digits) differ. Ridge (regression) is solved in closed form and ignores it.
        """
        ds = self.dataset
        if len(features) == 0:
            return (*self._baseline(), None)
        pos = [self._col_pos[int(f)] for f in features]
        Xtr, Xva = self._design(self._train_X[:, pos]), self._design(self._val_X[:, pos])
        if ds.task == "classification":
            from sklearn.linear_model import LogisticRegression
            from sklearn.metrics import log_loss

            warm = init is not None and self.model == "logistic" and init[0].shape[1] == Xtr.shape[1]
            model = LogisticRegression(C=self.C, max_iter=300, random_state=self.random_state, warm_start=warm)
            if warm:
                model.coef_, model.intercept_ = init[0].copy(), init[1].copy()
            model.fit(Xtr, self._train_y)
            proba = np.full((len(Xva), len(self._classes)), 1e-12)
            proba[:, model.classes_] = model.predict_proba(Xva)
            proba /= proba.sum(axis=1, keepdims=True)
            loss = log_loss(self._val_y, proba, labels=self._classes)
            metric = float(np.mean(proba.argmax(axis=1) == self._val_y))
            return float(loss), metric, (model.coef_, model.intercept_, model.classes_)
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=1.0 / self.C).fit(Xtr, self._train_y)
        pred = model.predict(Xva)
        return (*_mse_r2(self._val_y, pred), None)

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
                logits = self._design(Xtr[:, [self._col_pos[int(f)] for f in features]]) @ coef.T + intercept
                if coef.shape[0] == 1:  # binary: one logit for classes[1], as in sklearn
                    logits = np.column_stack([np.zeros(len(y)), logits[:, 0]])
                logits -= logits.max(axis=1, keepdims=True)
                fitted = np.exp(logits)
                proba = np.zeros_like(onehot)
                proba[:, classes] = fitted / fitted.sum(axis=1, keepdims=True)
            residual = proba - onehot
        elif features:
            from sklearn.linear_model import Ridge

            design = self._design(Xtr[:, [self._col_pos[int(f)] for f in features]])
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
            return float(loss), float(np.mean(self._val_y == prior.argmax()))
        pred = np.full(len(self._val_y), self._train_y.mean())
        return _mse_r2(self._val_y, pred)


def _mse_r2(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    mse = float(np.mean((y - pred) ** 2))
    var = float(np.var(y))
    return mse, (1.0 - mse / var) if var > 0 else 0.0


def prescreen_scores(dataset: Dataset, columns: Sequence[int]) -> np.ndarray:
    """Cheap univariate scores (ANOVA F / f_regression) used to shortlist candidates."""
    from sklearn.feature_selection import f_classif, f_regression

    X = _columns(dataset.X, columns)
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
        metric_name=metric_name_for(dataset.task),
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


# --------------------------------------------------------------------------- helpers
def as_trace_dict(traces: Mapping[str, SelectionTrace] | Sequence[SelectionTrace]) -> dict[str, SelectionTrace]:
    """Label -> trace; a plain sequence is labelled by each trace's ``method``."""
    if isinstance(traces, Mapping):
        return dict(traces)
    out: dict[str, SelectionTrace] = {}
    for trace in traces:
        label, n = trace.method, 2
        while label in out:
            label, n = f"{trace.method} ({n})", n + 1
        out[label] = trace
    return out


def picks(trace: SelectionTrace, k: int | None = None) -> list[int]:
    """Pinned features, then the first ``k`` picks (all picks when ``k`` is None)."""
    chosen = trace.selected if k is None else trace.selected[:k]
    return list(trace.pinned) + chosen


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


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std < 1e-12] = 1.0
    return [(a - mean) / std for a in (train, *others)]


def _score(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    if task == "classification":
        return float(np.mean(pred == y))
    return _mse_r2(y, pred)[1]


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
    epochs: int = 40,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    hidden: int = 67,
    device: str = "auto",
) -> float:
    """Train a fresh model on the given columns; test accuracy or R².

    ``model="mlp"`` is the SA paper's network (``seqattn.models.MLP``) trained
    with Adam; ``"logistic"`` is logistic regression / ridge (fast).
    """
    if model not in EVAL_MODELS:
        raise ValueError(f"model must be one of {EVAL_MODELS}, got {model!r}.")
    X_train, X_test = _standardise(np.asarray(X_train, dtype=np.float64), np.asarray(X_test, dtype=np.float64))
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
    return _fit_mlp(X_train, y_train, X_test, y_test, task, n_classes, seed, epochs, batch_size,
                    learning_rate, hidden, device)


def train_mlp(
    X_train: np.ndarray,
    y_train: np.ndarray,
    task: str,
    n_outputs: int,
    *,
    seed: int = 0,
    epochs: int = 40,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    hidden: int = 67,
    device: str = "auto",
):
    """Train ``seqattn.models.MLP`` with Adam (exponential LR decay); returns it in eval mode.

    Regression targets are standardised for training; ``net.target_scale``
    holds ``(mean, std)`` to undo that. On the CPU the training runs on one
    thread: a 67-unit MLP only loses from intra-op threading on busy cores.
    """
    import torch

    from seqattn.device import resolve_device
    from seqattn.models import MLP

    dev = resolve_device(device)
    if task == "regression":
        mu, sd = float(y_train.mean()), float(y_train.std()) or 1.0
        target = torch.tensor((y_train - mu) / sd, dtype=torch.float32, device=dev)
    else:
        mu, sd = 0.0, 1.0
        target = torch.tensor(y_train, dtype=torch.long, device=dev)
    xt = torch.tensor(np.asarray(X_train), dtype=torch.float32, device=dev)
    batch = int(min(batch_size, len(xt)))
    per_epoch = max(1, len(xt) // batch)
    with torch_threads(1, dev), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MLP(xt.shape[1], n_outputs, hidden).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1.0 / max(1, epochs * per_epoch)))
        loss_fn = torch.nn.CrossEntropyLoss() if task == "classification" else torch.nn.MSELoss()
        gen = torch.Generator().manual_seed(seed)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=gen).to(dev)
            for b in range(per_epoch):
                rows = order[b * batch:(b + 1) * batch]
                out = net(xt[rows])
                loss = loss_fn(out.squeeze(-1) if task == "regression" else out, target[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    net.eval()
    net.target_scale = (mu, sd)
    return net


def _fit_mlp(X_train, y_train, X_test, y_test, task, n_classes, seed, epochs, batch_size, learning_rate,
             hidden, device) -> float:
    import torch

    n_out = max(n_classes, int(y_train.max()) + 1) if task == "classification" else 1
    net = train_mlp(X_train, y_train, task, n_out, seed=seed, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, hidden=hidden, device=device)
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
    epochs: int = 40,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    hidden: int = 67,
    device: str = "auto",
) -> list[float]:
    """:func:`fit_and_score` with ``model="mlp"`` for many ``(X_train, y_train, X_test, y_test, seed)`` at once.

    The networks train side by side as one batched computation (``bmm``), each
    exactly as :func:`train_mlp` would train it alone: its own initialisation
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

    from seqattn.device import resolve_device
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
        Xtr, Xte = _standardise(np.asarray(Xtr, dtype=np.float64), np.asarray(Xte, dtype=np.float64))
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
    epochs: int = 40,
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
    data and settings (as :func:`seqattn.comparison.compare_methods` does, one
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
        if trace.n_features != dataset.n_features:
            raise ValueError(f"Trace {label!r} has {trace.n_features} features but the data set has "
                             f"{dataset.n_features}; was it computed on another data set?")
    if test is not None and test.n_features != dataset.n_features:
        raise ValueError("The test data set must have the same columns as the training data set.")
    jobs = [(label, k, seed) for seed in seeds for label, tr in labelled.items() for k in ks if k <= tr.k]
    needed = sorted({c for label, k, _ in jobs for c in picks(labelled[label], k)})
    X_all = _columns(dataset.X, needed) if needed else np.empty((dataset.n_samples, 0))
    X_test_all = _columns(test.X, needed) if (test is not None and needed) else None
    pos = {c: j for j, c in enumerate(needed)}
    cache = {} if cache is None else cache
    strat = dataset.y if dataset.task == "classification" else None
    pending: dict[tuple[frozenset[int], int], tuple] = {}  # distinct fits still to run, in job order
    for label, k, seed in jobs:
        features = picks(labelled[label], k)
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
        features = picks(labelled[label], k)
        key = (frozenset(features), seed)
        if key in cache:
            rows.append({"method": label, "k": k, "seed": seed, "metric": metric_name(dataset.task),
                         "value": cache[key], "features": ", ".join(dataset.feature_names[c] for c in features)})
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


# --------------------------------------------------------------------------- agreement
def full_ranking(trace: SelectionTrace) -> list[int]:
    """Every feature, best first: the picks in order, then the rest by the last step's scores.

    One-shot rankings (filters, SHAP) thus give a complete order; sequential
    methods' tails are ordered by their final scores. Features without a
    score come last, in index order.
    """
    order = list(trace.selected)
    seen = set(order) | set(trace.pinned)
    rest = [i for i in range(trace.n_features) if i not in seen]
    if trace.steps:
        last = trace.steps[-1].scores
        scored = [i for i in rest if np.isfinite(last[i])]
        unscored = [i for i in rest if not np.isfinite(last[i])]
        scored.sort(key=lambda i: -last[i])
        rest = scored + unscored
    return list(trace.pinned) + order + rest


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if (sa or sb) else 1.0


def overlap_matrix(traces: Mapping[str, SelectionTrace] | Sequence[SelectionTrace], k: int) -> pd.DataFrame:
    """Jaccard@k between every pair of methods (1 = same top-k set)."""
    labelled = as_trace_dict(traces)
    labels = list(labelled)
    tops = {lab: picks(labelled[lab], k) for lab in labels}
    data = [[jaccard(tops[a], tops[b]) for b in labels] for a in labels]
    return pd.DataFrame(data, index=labels, columns=labels)


def rank_correlation(a: SelectionTrace, b: SelectionTrace, k: int | None = None) -> float:
    """Spearman correlation of two methods' full rankings (see :func:`full_ranking`).

    ``k=None`` correlates the ranks of all features. With ``k``, only the
    union of the two top-k sets is used; beware that disjoint top-k sets then
    give a negative value by construction (each method ranks the other's
    favourites below its own). NaN when fewer than 2 features are compared.
    """
    from scipy.stats import spearmanr

    ra, rb = full_ranking(a), full_ranking(b)
    features = sorted(set(ra[:k]) | set(rb[:k])) if k is not None else list(range(a.n_features))
    if len(features) < 2:
        return float("nan")
    pa = {f: r for r, f in enumerate(ra)}
    pb = {f: r for r, f in enumerate(rb)}
    return float(spearmanr([pa[f] for f in features], [pb[f] for f in features]).statistic)


def rank_correlation_matrix(traces: Mapping[str, SelectionTrace] | Sequence[SelectionTrace],
                            k: int | None = None) -> pd.DataFrame:
    """Spearman ρ between every pair of methods' rankings (all features unless ``k`` is given)."""
    labelled = as_trace_dict(traces)
    labels = list(labelled)
    data = [[1.0 if a == b else rank_correlation(labelled[a], labelled[b], k) for b in labels] for a in labels]
    return pd.DataFrame(data, index=labels, columns=labels)


def recovery(dataset: Dataset, traces: Mapping[str, SelectionTrace] | Sequence[SelectionTrace],
             ks: Sequence[int]) -> pd.DataFrame:
    """How many planted features each method's top-k contains (needs ``dataset.informative``).

    Columns: method, k, recovered, n_informative, recall, and — when the data
    has XOR pairs — ``xor_pairs_found`` (pairs with *both* members in the top-k).
    """
    if dataset.informative is None:
        raise ValueError("Recovery needs ground truth: this data set has no planted informative features.")
    return recovery_table(dataset.informative, traces, ks, dataset.extra.get("xor_pairs", []))


def recovery_table(informative: Sequence[int], traces: Mapping[str, SelectionTrace] | Sequence[SelectionTrace],
                   ks: Sequence[int], xor_pairs: Sequence[Sequence[int]] = ()) -> pd.DataFrame:
    """:func:`recovery` from the ground truth itself (no data set needed)."""
    truth = set(int(i) for i in informative)
    pairs = [tuple(int(i) for i in p) for p in xor_pairs]
    rows = []
    for label, trace in as_trace_dict(traces).items():
        for k in sorted(set(int(k) for k in ks)):
            top = set(picks(trace, k))
            row = {"method": label, "k": k, "recovered": len(top & truth), "n_informative": len(truth),
                   "recall": len(top & truth) / len(truth) if truth else float("nan")}
            if pairs:
                row["xor_pairs_found"] = sum(1 for a, b in pairs if a in top and b in top)
            rows.append(row)
    return pd.DataFrame(rows)
