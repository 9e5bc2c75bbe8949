"""Turn one importance vector into a k-step :class:`~seqattn.trace.SelectionTrace` (filters, SHAP).

Per-step ``scores`` are the method's own scores over the remaining candidates
(NaN for features already selected, pinned or banned); ``val_metric`` per step
is the shared cheap refit (:class:`seqattn.scoring.ValidationScorer`, the same
one SA reports), so marginal gains are comparable across methods.

With feature groups (:mod:`seqattn.data.groups`) the units are groups: a
per-column importance is reduced per group (``max`` for filters, ``sum`` for
SHAP, whose values are additive) and picks, scores and names are per group.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from seqattn.data import Dataset, check_pinned_banned, validate_k
from seqattn.data.groups import groups_of
from seqattn.device import single_threaded
from seqattn.scoring import ValidationScorer, metric_name
from seqattn.trace import SelectionTrace

Callback = Callable[[int, int, str], Any]


def check_selection(dataset: Dataset, k: int, pinned: Sequence[int], banned: Sequence[int]) -> tuple[list[int], list[int]]:
    """Pinned / banned lists checked, and ``k`` checked against the features left to pick."""
    unit_names = list(dataset.groups.names) if dataset.groups is not None else dataset.feature_names
    pinned, banned = check_pinned_banned(dataset.n_groups, pinned, banned, unit_names)
    validate_k(k, dataset.n_groups, n_pinned=len(pinned), n_banned=len(banned))
    return pinned, banned


def new_trace(method: str, dataset: Dataset, pinned: list[int], banned: list[int],
               settings: dict[str, Any]) -> SelectionTrace:
    """An empty trace whose units are the data set's features, or its feature groups."""
    groups = dataset.groups
    return SelectionTrace(method=method, feature_names=list(groups_of(dataset).names), dataset=dataset.name,
                          task=dataset.task, metric_name=metric_name(dataset.task), device="cpu",
                          pinned=pinned, banned=banned, settings=settings,
                          groups=None if groups is None else [list(c) for c in groups.columns],
                          column_names=None if groups is None else list(dataset.feature_names))


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
    aggregate: str = "max",
) -> SelectionTrace:
    """Turn one importance vector (higher = better) into a k-step trace.

    One-shot rankers (filters, SHAP) score every feature once; step t picks the
    best remaining candidate and its ``scores`` are the same vector with the
    already chosen features masked. Ties are broken by feature index.
    ``score_steps`` adds the shared validation metric after each pick (k cheap
    refits) so marginal gains are comparable with SA's. With feature groups a
    per-column ``importance`` is reduced per group by ``aggregate``
    (``"max"`` for filters, ``"sum"`` for SHAP).
    """
    started = time.perf_counter() if started is None else started
    pinned, banned = check_selection(dataset, k, pinned, banned)
    importance = np.asarray(importance, dtype=np.float64)
    if dataset.groups is not None and importance.shape == (dataset.n_features,):
        importance = dataset.groups.aggregate(np.where(np.isfinite(importance), importance, -np.inf), aggregate)
    if importance.shape != (dataset.n_groups,):
        raise ValueError(f"importance must have shape ({dataset.n_groups},), got {importance.shape}.")
    scores = np.where(np.isfinite(importance), importance, -np.inf)
    masked = np.zeros(dataset.n_groups, dtype=bool)
    masked[pinned + banned] = True
    settings = dict(settings or {})
    if dataset.groups is not None:
        settings["group_score"] = f"{aggregate} over the group's columns"
    trace = new_trace(method, dataset, pinned, banned, settings)
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
    scorer = ValidationScorer(dataset, random_state) if score_steps else None
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
            callback(t + 1, k, f"pick {t + 1}/{k}: {trace.feature_names[pick]}")


