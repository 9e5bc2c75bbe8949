"""Plain-language explanations of a selection, one sentence per step.

Built only from a :class:`~seqattn.trace.SelectionTrace`, so the teaching view
can explain any method; for Sequential Attention the score is a softmax share
over the remaining features and is phrased as a percentage, e.g.

    step 3: among 61 remaining pixels, the attention softmax put 18% on pixel (4,5)
    (a uniform share would be 1.6%); adding it raised validation accuracy from 0.81 to 0.87.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from seqattn.trace import SelectionTrace

if TYPE_CHECKING:
    import pandas as pd

SOFTMAX_METHODS = {"sa", "sequential_attention", "sequential attention"}


def _is_softmax(trace: SelectionTrace) -> bool:
    return trace.method.strip().lower() in SOFTMAX_METHODS


def _metric_clause(metric_name: str, before: float | None, after: float | None) -> str:
    if after is None or not math.isfinite(after):
        return ""
    label = f"validation {metric_name}" if metric_name else "the validation metric"
    if before is None or not math.isfinite(before):
        return f"; validation {metric_name or 'metric'} is now {after:.3f}"
    if round(after, 3) == round(before, 3):
        return f"; adding it left {label} at {after:.3f}"
    verb = "raised" if after > before else "lowered"
    return f"; adding it {verb} {label} from {before:.3f} to {after:.3f}"


def explain_step(trace: SelectionTrace, t: int, unit: str = "features") -> str:
    """One sentence for step ``t`` (0-based) of ``trace``; ``unit`` names the features ("pixels", "genes")."""
    if not 0 <= t < trace.k:
        raise IndexError(f"step {t} is outside this trace's {trace.k} steps.")
    step = trace.steps[t]
    remaining = int(np.isfinite(step.scores).sum())
    if _is_softmax(trace):
        share = step.score
        uniform = 1.0 / remaining if remaining else float("nan")
        share_text = f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"
        pick = (f"the attention softmax put {share_text} on {step.name} "
                f"(a uniform share would be {uniform:.1%})")
    else:
        ranking = "" if not math.isfinite(step.score) else f" with score {step.score:.4g}, the highest"
        pick = f"{trace.method} picked {step.name}{ranking}"
    before = trace.base_metric if t == 0 else trace.steps[t - 1].val_metric
    return f"step {t + 1}: among {remaining} remaining {unit}, {pick}" + _metric_clause(
        trace.metric_name, before, step.val_metric) + "."


def explain_trace(trace: SelectionTrace, unit: str = "features") -> list[str]:
    """A sentence per step, preceded by one on pinned/banned features and followed by a stop note."""
    lines = []
    if trace.pinned or trace.banned:
        parts = []
        if trace.pinned:
            parts.append("pinned (always selected): " + ", ".join(trace.feature_names[i] for i in trace.pinned))
        if trace.banned:
            parts.append("banned (never candidates): " + ", ".join(trace.feature_names[i] for i in trace.banned))
        lines.append("Before step 1 — " + "; ".join(parts) + ".")
    lines += [explain_step(trace, t, unit) for t in range(trace.k)]
    if trace.stopped_early:
        lines.append(f"Stopped early after {trace.k} picks at the user's request; the picks so far are kept.")
    return lines


def feature_unit(n_features: int, image_shape: tuple[int, int] | None, is_genes: bool = False) -> str:
    """The word for a feature in explanations: pixels for images, genes for expression data."""
    if image_shape is not None and image_shape[0] * image_shape[1] == n_features:
        return "pixels"
    return "genes" if is_genes else "features"


def attention_vs_greedy(trace: SelectionTrace, t: int, gains: "pd.DataFrame") -> tuple["pd.DataFrame", float]:
    """Put SA's attention scores at step ``t`` (0-based) beside the true greedy gains of the same candidates.

    ``gains`` is :func:`seqattn.scoring.candidate_gains` for the features
    selected before step ``t``. Returns a table (feature, name, attention,
    attention_rank, gain, gain_rank, picked), sorted by attention, and
    Spearman's ρ between attention and gain: near 1 means SA ranked the
    candidates as greedy forward selection would.
    """
    import pandas as pd

    from seqattn.evaluation.agreement import spearman

    if not 0 <= t < trace.k:
        raise IndexError(f"step {t} is outside this trace's {trace.k} steps.")
    step = trace.steps[t]
    table = pd.DataFrame({
        "feature": gains["feature"].astype(int).to_numpy(),
        "name": gains["name"].to_numpy(),
        "attention": step.scores[gains["feature"].astype(int).to_numpy()],
        "gain": gains["gain"].to_numpy(dtype=float),
    })
    table = table[np.isfinite(table["attention"]) & np.isfinite(table["gain"])]
    table["attention_rank"] = table["attention"].rank(ascending=False, method="min").astype(int)
    table["gain_rank"] = table["gain"].rank(ascending=False, method="min").astype(int)
    table["picked"] = table["feature"] == step.feature
    table = table.sort_values("attention", ascending=False, kind="stable").reset_index(drop=True)
    table = table[["feature", "name", "attention", "attention_rank", "gain", "gain_rank", "picked"]]
    rho = spearman(table["attention"], table["gain"])
    return table, rho
