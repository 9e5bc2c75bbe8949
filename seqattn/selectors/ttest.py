"""The classic marker-gene baseline: per-cell-type Welch t-test (type vs rest), types take turns.

Returned as a :class:`~seqattn.trace.SelectionTrace` so it compares with SA
like any other method. Classification only; sparse input stays sparse.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from seqattn.data import (DataError, Dataset, attach_preprocessing, check_pinned_banned, column_mean_var,
                          validate_k)
from seqattn.trace import SelectionTrace


def ttest_statistics(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Welch t statistics and two-sided p-values, one cell type versus all others.

    Returns ``(t, p)``, both (n_types, n_genes). Computed from per-group means
    and variances (sparse-friendly) via ``scipy.stats.ttest_ind_from_stats``,
    the same test as scanpy's ``rank_genes_groups(method="t-test")``.
    """
    from scipy.stats import ttest_ind_from_stats

    if dataset.task != "classification":
        raise DataError("Marker t-tests need cell-type classes; the target here is a regression target.")
    n_types = dataset.n_classes
    n = dataset.n_samples
    total_mean, total_var = column_mean_var(dataset.X)
    total_sum, total_sq = total_mean * n, (total_var + total_mean ** 2) * n
    t = np.zeros((n_types, dataset.n_features))
    p = np.ones((n_types, dataset.n_features))
    for c in range(n_types):
        rows = np.flatnonzero(dataset.y == c)
        n_in, n_out = len(rows), n - len(rows)
        if n_in < 2 or n_out < 2:
            continue
        mean_in, var_in = column_mean_var(dataset.X, rows)
        sum_out = total_sum - mean_in * n_in
        sq_out = total_sq - (var_in + mean_in ** 2) * n_in
        mean_out = sum_out / n_out
        var_out = np.maximum(sq_out / n_out - mean_out ** 2, 0.0)
        # population -> sample variances
        var_in_s, var_out_s = var_in * n_in / (n_in - 1), var_out * n_out / (n_out - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            tc, pc = ttest_ind_from_stats(mean_in, np.sqrt(var_in_s), n_in, mean_out, np.sqrt(var_out_s), n_out,
                                          equal_var=False)
        t[c] = np.nan_to_num(tc, nan=0.0)
        p[c] = np.nan_to_num(pc, nan=1.0)
    return t, p


def significant_markers(t: np.ndarray, p: np.ndarray, fdr: float = 0.05) -> np.ndarray:
    """Which genes are real markers of each type: up-regulated in it (t > 0) with a Benjamini–Hochberg-adjusted
    p-value below ``fdr``, adjusted within the type over all genes (as scanpy's ``rank_genes_groups`` reports
    ``pvals_adj``). ``t``, ``p``: :func:`ttest_statistics`' arrays; returns a bool array of their shape.

    Why: a type's next-best t is not always a marker of it — a type with a few cells has none that is
    significant, and its "markers" are noise that a pick made for it would waste (benchmarks/README.md,
    *History*, "Significant marker pools")."""
    from scipy.stats import false_discovery_control

    if not 0.0 < float(fdr) < 1.0:
        raise ValueError(f"The false-discovery rate must be in (0, 1), got {fdr!r}.")
    adjusted = np.vstack([false_discovery_control(np.clip(row, 0.0, 1.0), method="bh") for row in p]) if len(p) \
        else np.ones_like(p)
    return (t > 0) & (adjusted < float(fdr))


def ttest_markers(
    dataset: Dataset,
    k: int,
    *,
    banned: Sequence[int] = (),
    pinned: Sequence[int] = (),
    statistics: tuple[np.ndarray, np.ndarray] | None = None,
) -> SelectionTrace:
    """A k-gene panel from per-cell-type t-tests, as a ``SelectionTrace``.

    Cell types take turns (round robin over types, each contributing its next
    best up-regulated gene not already chosen), so every type is represented
    rather than the panel filling up with the one most distinct type. The score
    vector of each step is each remaining gene's t statistic for the type whose
    turn it is, so the pick is that step's highest score and its runner-up that
    type's next marker (each gene's best t over all types would rank genes of
    other types above the pick). ``statistics``: :func:`ttest_statistics` of
    ``dataset`` when the caller has them already.
    """
    start = time.perf_counter()
    t, _ = statistics if statistics is not None else ttest_statistics(dataset)
    pinned_list, banned_list = check_pinned_banned(dataset.n_features, pinned, banned, dataset.feature_names)
    banned_set = set(banned_list)
    k = validate_k(k, dataset.n_features, n_pinned=len(pinned_list), n_banned=len(banned_set))
    # a type with fewer than 2 cells (or no rest) has no statistics; it must not add index-order junk
    types = [c for c in range(t.shape[0]) if np.any(t[c] != 0)] or list(range(t.shape[0]))
    orders = {c: np.argsort(-t[c], kind="stable") for c in types}
    cursors = dict.fromkeys(types, 0)
    taken = set(pinned_list) | banned_set
    trace = SelectionTrace(method="ttest", feature_names=list(dataset.feature_names), dataset=dataset.name,
                           task=dataset.task, metric_name="", pinned=pinned_list, banned=sorted(banned_set),
                           settings=attach_preprocessing({"test": "Welch t-test, one type vs rest",
                                                          "combine": "round robin over types"}, dataset))
    turn, marked_for = 0, []
    while trace.k < k:
        c = types[turn % len(types)]
        order = orders[c]
        while cursors[c] < len(order) and int(order[cursors[c]]) in taken:
            cursors[c] += 1
        if cursors[c] < len(order):
            pick = int(order[cursors[c]])
            scores = t[c].astype(np.float64)  # a copy: the taken genes are blanked in it
            scores[list(taken)] = np.nan
            trace.add_step(pick, scores, seconds=time.perf_counter() - start)
            taken.add(pick)
            marked_for.append(int(c))
        turn += 1
    trace.settings["marker_types"] = marked_for  # the type whose turn made each pick (SA's coverage pools)
    return trace


def run_ttest(dataset: Dataset, k: int, *, device: str = "auto", random_state: int | None = 0,
              callback: Callable[[int, int, str], Any] | None = None, pinned: Sequence[int] = (),
              banned: Sequence[int] = ()) -> SelectionTrace:
    """Registry runner: device and seed do not apply to a t-test."""
    trace = ttest_markers(dataset, k, pinned=pinned, banned=banned)
    if callback:
        callback(k, k, "done")
    return trace
