"""Do methods agree? Jaccard@k, Spearman of rankings (:func:`seqattn.stats.spearman`), and recovery of planted
features."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from seqattn.data import Dataset
from seqattn.stats import spearman
from seqattn.trace import SelectionTrace, as_trace_dict, pick_columns, picks


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
    ra, rb = full_ranking(a), full_ranking(b)
    features = sorted(set(ra[:k]) | set(rb[:k])) if k is not None else list(range(a.n_features))
    if len(features) < 2:
        return float("nan")
    pa = {f: r for r, f in enumerate(ra)}
    pb = {f: r for r, f in enumerate(rb)}
    return spearman([pa[f] for f in features], [pb[f] for f in features], min_n=2)


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
            top = set(pick_columns(trace, k))  # ground truth is in columns
            row = {"method": label, "k": k, "recovered": len(top & truth), "n_informative": len(truth),
                   "recall": len(top & truth) / len(truth) if truth else float("nan")}
            if pairs:
                row["xor_pairs_found"] = sum(1 for a, b in pairs if a in top and b in top)
            rows.append(row)
    return pd.DataFrame(rows)
