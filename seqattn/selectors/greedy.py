"""Greedy forward selection with *true* marginal gains: the method Sequential Attention approximates.

At every step a cheap model (:class:`seqattn.scoring.RefitScorer`) is refitted
on S ∪ {i} for each candidate i; the candidate that lowers validation loss most
is added. With feature groups a candidate is a group: all its columns are added at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqattn.data import Dataset
from seqattn.data.groups import groups_of
from seqattn.device import single_threaded
from seqattn.scoring import DEFAULT_MAX_SAMPLES, RefitScorer, prescreen_scores
from seqattn.selectors.ranking import Callback, check_selection, new_trace
from seqattn.trace import SelectionTrace

GREEDY_MAX_FEATURES = 100  # beyond this, greedy refuses unless told to shortlist candidates
GREEDY_MAX_PAIRS = 5000  # lookahead=2 refits every pair of candidates at every step


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
    for the new columns at weight zero, :meth:`RefitScorer.score_test`; for a
    group, the norm over its columns) at each step; the others get NaN scores
    and the trace says so. ``None`` refits all.
    """
    started = time.perf_counter()
    pinned, banned = check_selection(dataset, k, pinned, banned)
    _check_options(k, lookahead, model, max_candidates, refits_per_step)
    groups = groups_of(dataset)
    settings: dict[str, Any] = {"k": k, "model": model, "lookahead": lookahead, "random_state": random_state,
                                "max_samples": max_samples,
                                "score": "drop in validation loss when the candidate is added"}
    pool = _candidate_pool(dataset, groups, k, pinned, banned, max_candidates, max_features, settings)
    if refits_per_step is not None:
        settings["refits_per_step"] = (f"the {refits_per_step} candidates with the largest score-test statistic "
                                       f"(loss gradient at weight zero) refitted per step")
    if lookahead == 2 and len(pool) * (len(pool) - 1) // 2 > GREEDY_MAX_PAIRS:
        raise ValueError(f"lookahead=2 refits every pair: {len(pool)} candidates give "
                         f"{len(pool) * (len(pool) - 1) // 2} pairs per step (limit {GREEDY_MAX_PAIRS}); "
                         f"pass max_candidates=… to shortlist.")
    refit = RefitScorer(dataset, groups.expand(pinned + pool), model=model, random_state=random_state,
                        max_samples=max_samples)
    scorer = _GroupRefit(refit, groups.expand)
    trace = new_trace("greedy", dataset, pinned, banned, settings)
    base_loss, base_metric, state = scorer.fit(pinned)
    trace.base_metric = base_metric
    with single_threaded():
        _greedy_steps(trace, scorer, pool, pinned, k, lookahead, base_loss, base_metric, state, started,
                      callback, refits_per_step)
    trace.stopped_early = trace.k < k
    trace.settings["wall_seconds"] = time.perf_counter() - started
    return trace


def _check_options(k: int, lookahead: int, model: str, max_candidates: int | None,
                   refits_per_step: int | None) -> None:
    if lookahead not in (1, 2):
        raise ValueError(f"lookahead must be 1 or 2, got {lookahead!r}.")
    if max_candidates is not None and max_candidates < k:
        raise ValueError(f"max_candidates={max_candidates} is smaller than k={k}.")
    if refits_per_step is not None:
        if refits_per_step < 1:
            raise ValueError(f"refits_per_step must be at least 1 (or None for all), got {refits_per_step!r}.")
        if lookahead != 1 or model != "logistic":
            raise ValueError("refits_per_step works with lookahead=1 and model='logistic' only.")


def _candidate_pool(dataset: Dataset, groups: Any, k: int, pinned: list[int], banned: list[int],
                    max_candidates: int | None, max_features: int, settings: dict[str, Any]) -> list[int]:
    """The units greedy refits: every unpinned, unbanned one, shortlisted by ANOVA F to ``max_candidates``
    (said in ``settings``); beyond ``max_features`` without a shortlist, a clear ValueError."""
    pool = [i for i in range(dataset.n_groups) if i not in set(pinned) | set(banned)]
    if max_candidates is not None:
        if len(pool) > max_candidates:
            columns = groups.expand(pool)
            column_screen = np.full(dataset.n_features, -np.inf)
            column_screen[columns] = np.nan_to_num(prescreen_scores(dataset, columns), nan=-np.inf)
            screen = groups.aggregate(column_screen, "max")[pool]  # a group: its best column
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
    return pool


@dataclass
class _GroupRefit:
    """A :class:`RefitScorer` addressed by selection units: each unit brings all its columns."""

    scorer: RefitScorer
    expand: Callable[[Sequence[int]], list[int]]

    def evaluate(self, units: Sequence[int]) -> tuple[float, float]:
        return self.scorer.evaluate(self.expand(units))

    def fit(self, units: Sequence[int], state: tuple | None = None, base: Sequence[int] = ()):
        """:meth:`RefitScorer.fit` on the units' columns, warm-started from ``state``, the fit on the
        units ``base`` (its weights where the columns are the same, zero for the new ones)."""
        columns = self.expand(units)
        init = None
        if state is not None:
            coef, intercept, _ = state
            position = {c: j for j, c in enumerate(self.expand(base))}
            if coef.shape[1] == len(position):
                init = (np.zeros((coef.shape[0], len(columns))), intercept)
                for j, c in enumerate(columns):
                    if c in position:
                        init[0][:, j] = coef[:, position[c]]
        return self.scorer.fit(columns, init)

    def score_test(self, units: Sequence[int], state: tuple | None, candidates: Sequence[int]) -> np.ndarray:
        """Per candidate unit: the norm of its columns' score-test statistics."""
        columns = [self.expand([c]) for c in candidates]
        flat = [c for cols in columns for c in cols]
        statistic = dict(zip(flat, self.scorer.score_test(self.expand(units), state, flat)))
        return np.array([np.sqrt(sum(statistic[c] ** 2 for c in cols)) for cols in columns])


def _greedy_steps(trace, scorer, pool, pinned, k, lookahead, base_loss, base_metric, state, started,
                  callback, refits_per_step=None) -> None:
    remaining = list(pool)
    for t in range(k):
        chosen = pinned + trace.selected
        refit = remaining
        if refits_per_step is not None and len(remaining) > refits_per_step:
            statistic = scorer.score_test(chosen, state, remaining)
            refit = [remaining[j] for j in sorted(np.argsort(-statistic, kind="stable")[:refits_per_step])]
        fits = {i: scorer.fit(chosen + [i], state, chosen) for i in refit}  # warm start from the fit on S
        losses = {i: fit[:2] for i, fit in fits.items()}
        gains = np.full(trace.n_features, np.nan)
        for i, (loss, _) in losses.items():
            gains[i] = base_loss - loss
        if lookahead == 2 and len(remaining) > 1:
            best_pair = np.full(trace.n_features, -np.inf)
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
        if callback is not None and callback(t + 1, k, f"pick {t + 1}/{k}: {trace.feature_names[pick]} "
                                                           f"({trace.metric_name} {metric:.3f})"):
            break
