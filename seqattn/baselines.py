"""Baselines for Sequential Attention: SHAP ranking, greedy forward selection, filters.

Every function takes a :class:`~seqattn.data.Dataset` and ``k`` and returns a
:class:`~seqattn.trace.SelectionTrace` whose per-step ``scores`` are the
method's own scores over the remaining candidates (NaN for features already
selected, pinned, banned or not evaluated), so plots and evaluation treat all
methods alike. ``val_metric`` per step is the validation accuracy / R² of the
shared cheap refit (``seqattn.scoring.subset_metric``, the same one SA reports),
so the columns are comparable across methods.

* :func:`shap_select` — train the dense MLP once, rank by mean |SHAP value| on a
  held-out sample (``shap.DeepExplainer``, falling back to
  ``shap.GradientExplainer`` when Deep fails).
* :func:`greedy_select` — forward selection with *true* marginal gains: a cheap
  model is refitted on S ∪ {i} for every candidate i at every step.
* :func:`mutual_info_select`, :func:`anova_select`, :func:`variance_select` —
  univariate filters (one score per feature, computed once).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from seqattn.data import Dataset, check_pinned_banned, split_indices
from seqattn.evaluate import (
    DEFAULT_MAX_SAMPLES,
    RefitScorer,
    prescreen_scores,
    train_mlp,
)
from seqattn.device import single_threaded, torch_threads
from seqattn.scoring import metric_name, subset_metric
from seqattn.trace import SelectionTrace

Callback = Callable[[int, int, str], Any]

GREEDY_MAX_FEATURES = 100  # beyond this, greedy refuses unless told to shortlist candidates
GREEDY_MAX_PAIRS = 5000  # lookahead=2 refits every pair of candidates at every step
VALIDATION_FRACTION = 0.2  # same split as SA and seqattn.scoring


# --------------------------------------------------------------------------- shared plumbing
def _check_k(dataset: Dataset, k: int, pinned: Sequence[int], banned: Sequence[int]) -> tuple[list[int], list[int]]:
    d = dataset.n_features
    pinned, banned = check_pinned_banned(d, pinned, banned)
    available = d - len(set(pinned) | set(banned))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    if k > available:
        raise ValueError(f"k={k} but only {available} features can be picked "
                         f"({d} features, {len(pinned)} pinned, {len(banned)} banned).")
    return pinned, banned


class _ValidationScorer:
    """Validation metric of a subset with the shared cheap refit (same split as SA)."""

    def __init__(self, dataset: Dataset, random_state: int):
        strat = dataset.y if dataset.task == "classification" else None
        train, val, _ = split_indices(dataset.n_samples, strat, VALIDATION_FRACTION, 0.0, random_state)
        self.X_train, self.y_train = dataset.X[train], dataset.y[train]
        self.X_val, self.y_val = dataset.X[val], dataset.y[val]
        self.task, self.seed = dataset.task, random_state

    def __call__(self, features: Sequence[int]) -> float:
        return subset_metric(self.X_train, self.y_train, self.X_val, self.y_val, list(features), self.task,
                             self.seed)


def _new_trace(method: str, dataset: Dataset, pinned: list[int], banned: list[int],
               settings: dict[str, Any]) -> SelectionTrace:
    return SelectionTrace(method=method, feature_names=list(dataset.feature_names), dataset=dataset.name,
                          task=dataset.task, metric_name=metric_name(dataset.task), device="cpu",
                          pinned=pinned, banned=banned, settings=settings)


def ranking_trace(
    method: str,
    dataset: Dataset,
    importance: np.ndarray,
    k: int,
    *,
    settings: dict[str, Any] | None = None,
    pinned: Sequence[int] = (),
    banned: Sequence[int] = (),
    random_state: int = 0,
    started: float | None = None,
    score_steps: bool = True,
    callback: Callback | None = None,
) -> SelectionTrace:
    """Turn one importance vector (higher = better) into a k-step trace.

    One-shot rankers (filters, SHAP) score every feature once; step t picks the
    best remaining candidate and its ``scores`` are the same vector with the
    already chosen features masked. Ties are broken by feature index.
    ``score_steps`` adds the shared validation metric after each pick (k cheap
    refits) so marginal gains are comparable with SA's.
    """
    started = time.perf_counter() if started is None else started
    pinned, banned = _check_k(dataset, k, pinned, banned)
    importance = np.asarray(importance, dtype=np.float64)
    if importance.shape != (dataset.n_features,):
        raise ValueError(f"importance must have shape ({dataset.n_features},), got {importance.shape}.")
    scores = np.where(np.isfinite(importance), importance, -np.inf)
    masked = np.zeros(dataset.n_features, dtype=bool)
    masked[pinned + banned] = True
    settings = dict(settings or {})
    trace = _new_trace(method, dataset, pinned, banned, settings)
    ranked_seconds = time.perf_counter() - started
    with single_threaded():
        _add_ranked_steps(trace, dataset, importance, scores, masked, k, started, random_state, score_steps,
                          callback)
    trace.settings.setdefault("ranking_seconds", ranked_seconds)
    trace.settings["wall_seconds"] = time.perf_counter() - started
    return trace


def _add_ranked_steps(trace, dataset, importance, scores, masked, k, started, random_state, score_steps,
                      callback) -> None:
    pinned = trace.pinned
    scorer = _ValidationScorer(dataset, random_state) if score_steps else None
    previous = scorer(pinned) if scorer else None
    trace.base_metric = previous
    for t in range(k):
        view = np.where(masked, np.nan, importance)
        order = np.lexsort((np.arange(len(scores)), -np.where(masked, -np.inf, scores)))
        pick = int(order[0])
        metric = scorer(pinned + trace.selected + [pick]) if scorer else None
        gain = None if metric is None or previous is None else metric - previous
        trace.add_step(pick, view, gain, metric, time.perf_counter() - started)
        masked[pick] = True
        previous = metric
        if callback is not None:
            callback(t + 1, k, f"pick {t + 1}/{k}: {dataset.feature_names[pick]}")


def _dense_rows(dataset: Dataset, max_samples: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense X and y, rows subsampled to ``max_samples`` (filters on big data stay quick)."""
    rows = np.arange(dataset.n_samples)
    if len(rows) > max_samples:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, max_samples, replace=False))
    X = dataset.X[rows]
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return X.astype(np.float64), dataset.y[rows]


# --------------------------------------------------------------------------- filters
def mutual_info_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                       callback: Callback | None = None, n_neighbors: int = 3,
                       max_samples: int = DEFAULT_MAX_SAMPLES, **options: Any) -> SelectionTrace:
    """Rank by estimated mutual information with the target (k-NN estimator; univariate)."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    started = time.perf_counter()
    X, y = _dense_rows(dataset, max_samples, random_state)
    estimator = mutual_info_classif if dataset.task == "classification" else mutual_info_regression
    scores = estimator(X, y, discrete_features=False, n_neighbors=n_neighbors, random_state=random_state)
    settings = {"k": k, "n_neighbors": n_neighbors, "rows_used": len(y), "random_state": random_state,
                "score": "mutual information (nats)"}
    return ranking_trace("mutual_info", dataset, scores, k, settings=settings, random_state=random_state,
                         started=started, callback=callback, **options)


def anova_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                 callback: Callback | None = None, max_samples: int = 100_000, **options: Any) -> SelectionTrace:
    """Rank by the ANOVA F statistic (classification) or f_regression (regression); univariate."""
    started = time.perf_counter()
    X, y = _dense_rows(dataset, max_samples, random_state)
    view = Dataset(X=X, y=y, feature_names=dataset.feature_names, task=dataset.task)
    scores = prescreen_scores(view, range(dataset.n_features))
    kind = "ANOVA F" if dataset.task == "classification" else "f_regression F"
    settings = {"k": k, "rows_used": len(y), "score": f"{kind} (constant features score 0)"}
    return ranking_trace("anova", dataset, scores, k, settings=settings, random_state=random_state,
                         started=started, callback=callback, **options)


def variance_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                    callback: Callback | None = None, **options: Any) -> SelectionTrace:
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
                         started=started, callback=callback, **options)


# --------------------------------------------------------------------------- SHAP
@dataclass
class ShapExplanation:
    """SHAP values of the dense model on a held-out sample.

    ``values`` has shape (n_samples, n_features, n_outputs) (one output for
    regression); ``data`` holds the explained rows (raw feature values) for
    colouring a beeswarm. ``explainer`` is ``"deep"`` or ``"gradient"``.
    """

    values: np.ndarray
    data: np.ndarray
    feature_names: list[str]
    output_names: list[str]
    explainer: str
    fallback_reason: str
    settings: dict[str, Any]
    labels: np.ndarray | None = None  # targets of the explained rows (class codes or values)

    @property
    def importance(self) -> np.ndarray:
        """Mean |SHAP value| per feature, averaged over samples and outputs."""
        return np.abs(self.values).mean(axis=(0, 2))

    def importance_by_output(self) -> np.ndarray:
        """(n_features, n_outputs) mean |SHAP value| per output (for a stacked bar chart)."""
        return np.abs(self.values).mean(axis=0)


def _explainable(model):
    """seqattn's MLP calls ``torch.relu`` functionally, which DeepExplainer cannot see
    (its additivity check then fails); the same weights as an ``nn.Sequential`` of
    modules are fully supported."""
    from torch import nn

    from seqattn.models import MLP

    if isinstance(model, MLP):
        return nn.Sequential(model.norm, model.hidden, nn.ReLU(), model.out).eval()
    return model.eval()


def explain_model(model, background: np.ndarray, samples: np.ndarray, explainer: str = "auto",
                  random_state: int = 0, gradient_samples: int = 50) -> tuple[np.ndarray, str, str]:
    """SHAP values (n, d, outputs) of a torch model; returns (values, explainer used, why it fell back).

    ``explainer="auto"`` tries ``shap.DeepExplainer`` (exact for supported
    layers, with its additivity check on) and falls back to
    ``shap.GradientExplainer`` (expected gradients) when Deep raises — as it
    does for ops it does not support. ``gradient_samples`` is the number of
    background/interpolation draws per explained row for the fallback.
    """
    import torch

    if explainer not in ("auto", "deep", "gradient"):
        raise ValueError(f"explainer must be 'auto', 'deep' or 'gradient', got {explainer!r}.")
    model = _explainable(model)
    device = next(model.parameters()).device
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    xs = torch.tensor(samples, dtype=torch.float32, device=device)
    with torch_threads(1, device):
        return _explain(model, bg, xs, explainer, random_state, gradient_samples)


def _explain(model, bg, xs, explainer: str, random_state: int, gradient_samples: int) -> tuple[np.ndarray, str, str]:
    import shap
    import torch

    reason = ""
    values = None
    used = "gradient"
    if explainer in ("auto", "deep"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = shap.DeepExplainer(model, bg).shap_values(xs, check_additivity=True)
            used = "deep"
        except Exception as exc:  # noqa: BLE001 - any Deep failure means: use the fallback
            if explainer == "deep":
                raise
            reason = f"DeepExplainer failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    if values is None:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(random_state)
            values = shap.GradientExplainer(model, bg).shap_values(xs, nsamples=gradient_samples)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:  # single-output models may come back without the output axis
        values = values[:, :, None]
    return values, used, reason


def shap_explain(
    dataset: Dataset,
    *,
    n_background: int = 50,
    n_explain: int = 100,
    epochs: int = 40,
    hidden: int = 67,
    explainer: str = "auto",
    model: Any = None,
    device: str = "auto",
    random_state: int = 0,
    callback: Callback | None = None,
) -> ShapExplanation:
    """Train the dense MLP once on the training split and explain a held-out sample.

    The background (reference distribution) is ``n_background`` training rows;
    ``n_explain`` validation rows are explained. Both drive the cost: Deep is
    roughly O(n_background × n_explain) forward/backward passes. ``model`` may
    be a ready torch module that takes standardised inputs (training is skipped).
    """
    if n_background < 1 or n_explain < 1:
        raise ValueError("n_background and n_explain must be at least 1.")
    started = time.perf_counter()
    strat = dataset.y if dataset.task == "classification" else None
    train, val, _ = split_indices(dataset.n_samples, strat, VALIDATION_FRACTION, 0.0, random_state)
    rng = np.random.default_rng(random_state)
    X_train = dataset.X[train]
    X_train = (X_train.toarray() if sp.issparse(X_train) else np.asarray(X_train)).astype(np.float64)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std < 1e-12] = 1.0
    n_out = dataset.n_classes if dataset.task == "classification" else 1
    if callback is not None:
        callback(0, 3, "training the dense model")
    given_model = model
    if model is None:
        model = train_mlp((X_train - mean) / std, dataset.y[train], dataset.task, n_out, seed=random_state,
                          epochs=epochs, hidden=hidden, device=device)
    bg_rows = rng.choice(len(train), min(n_background, len(train)), replace=False)
    ex_rows = val[np.sort(rng.choice(len(val), min(n_explain, len(val)), replace=False))]
    explained = dataset.X[ex_rows]
    explained = (explained.toarray() if sp.issparse(explained) else np.asarray(explained)).astype(np.float64)
    if callback is not None:
        callback(1, 3, "computing SHAP values")
    values, used, reason = explain_model(model, (X_train[bg_rows] - mean) / std, (explained - mean) / std,
                                         explainer=explainer, random_state=random_state)
    if callback is not None:
        callback(3, 3, f"SHAP done ({used} explainer)")
    outputs = (list(dataset.class_names or [f"class {c}" for c in range(n_out)])
               if dataset.task == "classification" else ["target"])
    settings = {"explainer": used, "explainer_requested": explainer, "fallback_reason": reason,
                "n_background": len(bg_rows), "n_explain": len(ex_rows), "epochs": epochs, "hidden": hidden,
                "random_state": random_state, "model": "mlp" if given_model is None else "given",
                "seconds": time.perf_counter() - started}
    return ShapExplanation(values=values, data=explained, feature_names=list(dataset.feature_names),
                           output_names=outputs[:values.shape[2]], explainer=used, fallback_reason=reason,
                           settings=settings, labels=dataset.y[ex_rows])


def shap_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                callback: Callback | None = None, n_background: int = 50, n_explain: int = 100,
                epochs: int = 40, explainer: str = "auto", explanation: ShapExplanation | None = None,
                **options: Any) -> SelectionTrace:
    """Rank features by mean |SHAP value| of the dense MLP (see :func:`shap_explain`).

    Pass a precomputed ``explanation`` to reuse it (the Compare page caches one
    for the summary plot). ``trace.settings["explainer"]`` says whether Deep or
    the Gradient fallback produced the values.
    """
    started = time.perf_counter()
    reused_seconds = 0.0
    if explanation is None:
        explanation = shap_explain(dataset, n_background=n_background, n_explain=n_explain, epochs=epochs,
                                   explainer=explainer, device=device, random_state=random_state,
                                   callback=callback)
    elif len(explanation.feature_names) != dataset.n_features:
        raise ValueError("The SHAP explanation was computed on a data set with different columns.")
    else:  # computed earlier: count its time, the ranking is nothing without it
        reused_seconds = float(explanation.settings.get("seconds", 0.0))
    settings = {"k": k, "score": "mean |SHAP value| over held-out rows and outputs", **explanation.settings}
    trace = ranking_trace("shap", dataset, explanation.importance, k, settings=settings,
                          random_state=random_state, started=started, **options)
    from seqattn.device import describe_device, resolve_device

    trace.device = describe_device(resolve_device(device))
    trace.settings["wall_seconds"] += reused_seconds
    return trace


# --------------------------------------------------------------------------- greedy
def greedy_select(
    dataset: Dataset,
    k: int,
    *,
    random_state: int = 0,
    device: str = "auto",
    callback: Callback | None = None,
    model: str = "logistic",
    lookahead: int = 1,
    max_features: int = GREEDY_MAX_FEATURES,
    max_candidates: int | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    pinned: Sequence[int] = (),
    banned: Sequence[int] = (),
    refits_per_step: int | None = None,
) -> SelectionTrace:
    """Greedy forward selection with true marginal gains (the method SA approximates).

    At every step a cheap model (``model="logistic"``: logistic regression /
    ridge; ``"quadratic"``: the same on the features plus their pairwise
    products) is refitted on S ∪ {i} for each candidate i, and the candidate
    with the largest drop in validation loss is added. The step's ``scores``
    are those drops (NaN for features not refitted).

    Plain greedy (``lookahead=1``) cannot see a pure interaction such as XOR:
    neither member helps on its own. ``lookahead=2`` scores each candidate by
    the best *pair* it forms with another candidate (O(d²) refits per step).

    Refits cost d × k model fits, so beyond ``max_features`` candidates it
    refuses unless ``max_candidates`` is given, which shortlists that many by
    ANOVA F / f_regression (recorded in ``trace.settings``). A callback that
    returns True stops early, keeping the picks made so far.

    Each logistic refit of S ∪ {i} starts from the fit on S (a warm start:
    same convex optimum, fewer iterations). ``refits_per_step=m`` refits only
    the m candidates with the largest score-test statistic (the loss gradient
    for the new column at weight zero, :meth:`RefitScorer.score_test`) at each
    step; the others get NaN scores and the trace says so. ``None`` refits all.
    """
    started = time.perf_counter()
    pinned, banned = _check_k(dataset, k, pinned, banned)
    if lookahead not in (1, 2):
        raise ValueError(f"lookahead must be 1 or 2, got {lookahead!r}.")
    pool = [i for i in range(dataset.n_features) if i not in set(pinned) | set(banned)]
    settings: dict[str, Any] = {"k": k, "model": model, "lookahead": lookahead, "random_state": random_state,
                                "max_samples": max_samples,
                                "score": "drop in validation loss when the candidate is added"}
    if max_candidates is not None:
        if max_candidates < k:
            raise ValueError(f"max_candidates={max_candidates} is smaller than k={k}.")
        if len(pool) > max_candidates:
            screen = prescreen_scores(dataset, pool)
            keep = sorted(np.argsort(-screen, kind="stable")[:max_candidates])
            settings["candidate_shortlist"] = (f"{max_candidates} of {len(pool)} candidates, "
                                               f"the highest by ANOVA F / f_regression")
            pool = [pool[j] for j in keep]
    elif len(pool) > max_features:
        raise ValueError(
            f"Greedy forward selection refits a model for every candidate at every step: {len(pool)} "
            f"candidates × k={k} ≈ {len(pool) * k} refits is too slow here (limit {max_features} features). "
            f"Pass max_candidates=… (e.g. 50) to shortlist candidates by ANOVA F first, or use SA / OMP."
        )
    if refits_per_step is not None:
        if refits_per_step < 1:
            raise ValueError(f"refits_per_step must be at least 1 (or None for all), got {refits_per_step!r}.")
        if lookahead != 1:
            raise ValueError("refits_per_step works with lookahead=1 only.")
        settings["refits_per_step"] = (f"the {refits_per_step} candidates with the largest score-test statistic "
                                       f"(loss gradient at weight zero) refitted per step")
    if lookahead == 2 and len(pool) * (len(pool) - 1) // 2 > GREEDY_MAX_PAIRS:
        raise ValueError(f"lookahead=2 refits every pair: {len(pool)} candidates give "
                         f"{len(pool) * (len(pool) - 1) // 2} pairs per step (limit {GREEDY_MAX_PAIRS}); "
                         f"pass max_candidates=… to shortlist.")
    scorer = RefitScorer(dataset, pinned + pool, model=model, random_state=random_state, max_samples=max_samples)
    trace = _new_trace("greedy", dataset, pinned, banned, settings)
    base_loss, base_metric, state = scorer.fit(pinned)
    trace.base_metric = base_metric
    with single_threaded():
        _greedy_steps(trace, dataset, scorer, pool, pinned, k, lookahead, base_loss, base_metric, state, started,
                      callback, refits_per_step)
    trace.stopped_early = trace.k < k
    trace.settings["wall_seconds"] = time.perf_counter() - started
    return trace


def _widened(state, n_new: int = 1):
    """Warm start for S ∪ {i}: the fit on S with zero weight on the new column(s)."""
    if state is None:
        return None
    coef, intercept, _ = state
    return np.hstack([coef, np.zeros((coef.shape[0], n_new))]), intercept


def _greedy_steps(trace, dataset, scorer, pool, pinned, k, lookahead, base_loss, base_metric, state, started,
                  callback, refits_per_step=None) -> None:
    remaining = list(pool)
    for t in range(k):
        chosen = pinned + trace.selected
        refit = remaining
        if refits_per_step is not None and len(remaining) > refits_per_step:
            statistic = scorer.score_test(chosen, state, remaining)
            refit = [remaining[j] for j in sorted(np.argsort(-statistic, kind="stable")[:refits_per_step])]
        init = _widened(state)
        fits = {i: scorer.fit(chosen + [i], init) for i in refit}
        losses = {i: fit[:2] for i, fit in fits.items()}
        gains = np.full(dataset.n_features, np.nan)
        for i, (loss, _) in losses.items():
            gains[i] = base_loss - loss
        if lookahead == 2 and len(remaining) > 1:
            best_pair = np.full(dataset.n_features, -np.inf)
            for a_pos, a in enumerate(remaining):
                for b in remaining[a_pos + 1:]:
                    pair_gain = base_loss - scorer.evaluate(chosen + [a, b])[0]
                    best_pair[a] = max(best_pair[a], pair_gain)
                    best_pair[b] = max(best_pair[b], pair_gain)
            scores = np.where(np.isfinite(gains), np.maximum(gains, best_pair), np.nan)
        else:
            scores = gains
        candidate_scores = np.array([scores[i] for i in refit])
        pick = refit[int(np.argmax(candidate_scores))]  # first index wins ties
        loss, metric, state = fits[pick]
        trace.add_step(pick, scores, metric - base_metric, metric, time.perf_counter() - started)
        base_loss, base_metric = loss, metric
        remaining.remove(pick)
        if callback is not None and callback(t + 1, k, f"pick {t + 1}/{k}: {dataset.feature_names[pick]} "
                                                           f"({trace.metric_name} {metric:.3f})"):
            break


# name -> function; seqattn.methods registers these under the same names
BASELINES: dict[str, Callable[..., SelectionTrace]] = {
    "shap": shap_select,
    "greedy": greedy_select,
    "mutual_info": mutual_info_select,
    "anova": anova_select,
    "variance": variance_select,
}


def _register() -> None:
    """Make the baselines available through ``seqattn.methods.run_method`` (CLI, pages)."""
    from seqattn.methods import MethodSpec, register

    descriptions = {
        "shap": ("SHAP", "Train the dense MLP once; rank features by mean |SHAP value| on held-out rows."),
        "greedy": ("Greedy (true gains)", "Forward selection: refit a cheap model on S ∪ {i} for every "
                                          "candidate, add the one that lowers validation loss most."),
        "mutual_info": ("Mutual information", "Univariate filter: estimated mutual information with the target."),
        "anova": ("ANOVA F", "Univariate filter: ANOVA F statistic (f_regression for regression)."),
        "variance": ("Variance", "Target-blind filter: the column's variance."),
    }
    for name, run in BASELINES.items():
        label, text = descriptions[name]
        register(MethodSpec(name, label, run, text))


_register()
