"""Plain-language explanations of a selection, one sentence per step.

Built only from a :class:`~seqattn.trace.SelectionTrace`, so the teaching view
can explain any method; for Sequential Attention the score is a softmax share
over the remaining features and is phrased as a ratio to the uniform share
(percentages round 1.62% and 1.59% to the same "1.6%"), e.g.

    step 3: among 61 remaining pixels, the attention put 11.3× the uniform share on pixel (4,5)
    (runner-up pixel (4,4): 2.1×); adding it raised validation accuracy from 0.81 to 0.87.

Picks that did not clearly stand out (:attr:`~seqattn.trace.SelectionStep.near_tie`)
get a warning sentence from :func:`near_tie_warnings`.

The consensus of several runs (:attr:`~seqattn.trace.SelectionTrace.is_consensus`) is told in runs, not
attention: its step scores are each candidate's share of the runs that picked it, e.g.

    step 3: among 57 remaining genes, GIMAP7 was picked in 16 of 16 runs (mean position 3.4) and kept by
    100% of the resampled consensus panels (next: GNLY, 15 of 16); adding it raised validation accuracy …

and its warnings are the unstable picks (:func:`pick_warnings`), not within-run near-ties.

Sentences are plain text (the CLI prints them) and carry feature names, which are
user text: shown through markdown they must go through
:func:`seqattn.safe_text.escape_markdown`, as the app's pages do.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from seqattn.selectors.defaults import PER_TYPE_RULES
from seqattn.trace import ATTENTION_METHODS, SelectionTrace, support_text  # noqa: F401 (support_text: here too)

if TYPE_CHECKING:
    import pandas as pd

def _is_softmax(trace: SelectionTrace) -> bool:
    return trace.method.strip().lower() in ATTENTION_METHODS


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
    if trace.is_consensus:
        pick = _consensus_pick(trace, step)
    elif _is_softmax(trace) and step.confidence is not None:
        runner = ""
        if step.runner_up is not None and step.runner_up_weight is not None and step.score > 0:
            ratio = step.confidence * step.runner_up_weight / step.score
            runner = f" (runner-up {trace.feature_names[step.runner_up]}: {_ratio(ratio)})"
        pick = f"the attention put {_ratio(step.confidence)} the uniform share on {step.name}{runner}"
        if step.near_tie:
            pick += " — a near-tie"
    else:
        ranking = "" if not math.isfinite(step.score) else f" with score {step.score:.4g}, the highest"
        pick = f"{trace.method} picked {step.name}{ranking}"
    before = trace.base_metric if t == 0 else trace.steps[t - 1].val_metric
    return f"step {t + 1}: among {remaining} remaining {unit}, {pick}" + _metric_clause(
        trace.metric_name, before, step.val_metric) + "."


def _consensus_pick(trace: SelectionTrace, step) -> str:
    """A consensus pick in runs: how many made it, how early, how often a resampled panel keeps it, the next."""
    where = "" if step.mean_position is None else f" (mean position {step.mean_position:.1f})"
    kept = "" if step.kept_share is None else f" and kept by {step.kept_share:.0%} of the resampled consensus panels"
    following = ""
    if step.runner_up is not None and step.runner_up_weight is not None:
        following = (f" (next: {trace.feature_names[step.runner_up]}, "
                     f"{round(step.runner_up_weight * step.n_runs)} of {step.n_runs})")
    verdict = " — unstable" if step.unstable else ""
    return f"{step.name} was picked in {step.picked_in} of {step.n_runs} runs{where}{kept}{following}{verdict}"


def _ratio(value: float) -> str:
    """3.4×, 1.02×, 12× — enough digits that two different shares never read the same."""
    if value >= 10:
        return f"{value:.0f}×"
    return f"{value:.1f}×" if value >= 2 else f"{value:.2f}×"


def _stands_apart_from_runner_up(step) -> str:
    """The runner-up's share ("6.8×") when a near-tie pick held clearly more than it (no candidate within
    NEAR_TIE_MARGIN, confidence above NEAR_TIE_CONFIDENCE): the flag then says the attention was spread like
    noise, and "a tie with the runner-up" would contradict the numbers. "" otherwise."""
    from seqattn.trace import NEAR_TIE_CONFIDENCE, NEAR_TIE_MARGIN

    if step.confidence is None or step.confidence < NEAR_TIE_CONFIDENCE or step.runner_up is None \
            or step.runner_up_weight is None or not step.score > 0:
        return ""
    if step.runner_up_weight * (1 + NEAR_TIE_MARGIN) >= step.score:
        return ""
    return _ratio(step.confidence * step.runner_up_weight / step.score)


def near_tie_warnings(trace: SelectionTrace, max_names: int = 3) -> list[str]:
    """One sentence per near-tie pick, naming the candidates it was tied with (or, where none was close, saying
    that the pick did not stand out from noise, beside the runner-up's share) and what to do."""
    lines = []
    for t, step in enumerate(trace.steps):
        if not step.near_tie:
            continue
        apart = _stands_apart_from_runner_up(step)
        if apart:  # flagged by the separation rule: no candidate was close, the pick just did not beat noise
            lines.append(f"Pick {t + 1} ({step.name}, {_ratio(step.confidence)} the uniform share) was a near-tie: it "
                         f"did not stand out from the other candidates more than noise would (runner-up "
                         f"{trace.feature_names[step.runner_up]}: {apart}); train longer, or treat it as uncertain.")
            continue
        tied = step.tied_with()
        names = [trace.feature_names[i] for i in tied[:max_names]]
        if len(tied) > max_names:
            names.append(f"{len(tied) - max_names} more")
        shown = (", ".join(names[:-1]) + " and " + names[-1]) if len(names) > 1 else "".join(names)
        with_whom = f" with {shown}" if names else ""
        strength = "" if step.confidence is None else f", {_ratio(step.confidence)} the uniform share"
        lines.append(f"Pick {t + 1} ({step.name}{strength}) was a near-tie{with_whom}: train longer, "
                     "or treat them as interchangeable.")
    return lines


def unstable_rule(n_runs: int) -> str:
    """The unstable flag's rule in words (:func:`seqattn.trace.is_unstable`), for every screen that shows it."""
    from seqattn.trace import MIN_KEPT_SHARE

    return (f"picked in at most half of the {n_runs} runs, or kept by fewer than {MIN_KEPT_SHARE:.0%} of the "
            f"consensus panels rebuilt from the runs resampled")


def unstable_warnings(trace: SelectionTrace) -> list[str]:
    """For a selection run several times: one sentence naming every pick flagged unstable
    (:attr:`~seqattn.trace.SelectionStep.unstable`), with its count of runs and its kept share."""
    flagged = [(t, step) for t, step in enumerate(trace.steps) if step.unstable]
    if not flagged:
        return []
    runs = flagged[0][1].n_runs
    listed = ", ".join(f"{step.name} ({support_text(step.picked_in, runs, step.kept_share)})" for _, step in flagged)
    return [f"{len(flagged)} of {trace.k} picks are unstable — {unstable_rule(runs)}; another seed or sample of "
            f"cells may swap them: {listed}."]


def unstable_genes_warning(genes: Sequence[str], picked_in: Sequence[str], kept: Sequence[float | None],
                           n_panel: int, n_runs: int) -> str:
    """The Gene panel page's warning, worded as :func:`unstable_warnings`: the flagged panel genes with their
    "b/B" and kept share."""
    listed = ", ".join(f"{g} ({support_text(b, None, share)})" for g, b, share in zip(genes, picked_in, kept))
    return (f"{len(genes)} of {n_panel} panel genes are unstable — {unstable_rule(n_runs)}; another seed may swap "
            f"them: {listed}.")


def pick_warnings(trace: SelectionTrace) -> list[str]:
    """Every warning about the picks a user should read: for several runs, the picks they disagree on
    (:attr:`~seqattn.trace.SelectionStep.flagged`); for one run, its near-ties."""
    return unstable_warnings(trace) if trace.n_runs is not None else near_tie_warnings(trace)


def stability_summary(trace: SelectionTrace) -> str:
    """How a selection of several runs was combined ("" for one run)."""
    runs = trace.n_runs
    if runs is None:
        return ""
    stable = sum(not step.unstable for step in trace.steps)
    how = "bootstrap samples of the cells" if trace.settings.get("resample") == "bootstrap" else "seeds"
    if trace.combine == "shared":
        how = (f"{runs} networks with different {how} trained together on one panel, each pick made on their mean "
               "attention; \"picked in\" counts the networks whose own attention led with it")
    elif trace.settings.get("coverage") in PER_TYPE_RULES:
        how = (f"{runs} runs with different {how}, combined: each cell type keeps its share of the runs' picks, "
               "filled with its genes most runs picked, ordered by the number of runs, earliest first")
    else:
        how = f"{runs} runs with different {how}, combined: the features picked by the most runs, earliest first"
    return f"{how}. {stable} of {trace.k} picks are stable; the others are flagged unstable ({unstable_rule(runs)})."


def consensus_stop_note(trace: SelectionTrace, unit: str = "features") -> str:
    """What a consensus stopped before its runs finished holds ("" otherwise): each run's picks so far, combined,
    with the picks few runs had reached flagged unstable."""
    if not (trace.is_consensus and trace.stopped_early):
        return ""
    made = [len(r) for r in trace.settings.get("runs") or []]
    asked = int(trace.settings.get("k", trace.k))
    span = _span(made)
    flagged = sum(step.unstable for step in trace.steps)
    timed_out = trace.settings.get("stop_reason") == "time limit"
    cause = "at the training time limit" if timed_out else "(Stop pressed)"
    advice = ("Lower k or the number of runs (or set a small fixed number of epochs) for the full panel." if timed_out
              else "Run again without stopping for the full panel.")
    return (f"Stopped {cause} before the runs finished: the {len(made)} runs had made {span} of their {asked} picks "
            f"each. The {trace.k} {unit} shown are the consensus of those partial runs; {flagged} of them are "
            f"flagged unstable. {advice}")


def stop_note(trace: SelectionTrace, unit: str = "features") -> str:
    """Why a selection stopped before its k picks and what it kept ("" when it ran to the end): Stop pressed or
    the training time limit (``settings["stop_reason"]``), with nothing picked, one run's picks so far, or a
    consensus of partial runs (:func:`consensus_stop_note`). One wording for the SA page and :func:`explain_trace`."""
    if not trace.stopped_early:
        return ""
    if trace.is_consensus and trace.k:
        return consensus_stop_note(trace, unit)
    timed_out = trace.settings.get("stop_reason") == "time limit"
    limit = trace.settings.get("max_seconds")
    shown = "" if limit is None else f" ({float(limit) / 60:.0f} min)" if float(limit) >= 60 else f" ({float(limit):g} s)"
    if trace.k == 0:
        if timed_out:
            return (f"The training time limit{shown} ran out before the first pick: nothing was picked, so there is "
                    "nothing to show. Lower k or the number of runs (or set a small fixed number of epochs) and run "
                    "again.")
        return ("Stopped before the first pick: nothing was picked, so there is nothing to show. Run again and let "
                "it run past its first pick.")
    if timed_out:
        return (f"Stopped at the training time limit{shown}: kept the {trace.k} {unit} picked so far. Lower k (or set "
                "a small fixed number of epochs) for a full run.")
    return f"Stopped early (Stop pressed): kept the {trace.k} {unit} picked before Stop was pressed."


def picks_table_caption(trace: SelectionTrace) -> str:
    """What the columns of the page's table of picks mean (:func:`seqattn.plots.selection.picks_table`)."""
    if not trace.is_consensus:
        return ("Pinned features come first (order 0). confidence: the pick's attention ÷ the uniform share; "
                "near_tie: the pick did not stand out from the other candidates more than noise would.")
    runs = trace.n_runs
    return (f"Pinned features come first (order 0). picked_in: how many of the {runs} runs picked it; mean_position: "
            f"its mean place in those runs' picks; kept_share: the share of the consensus panels rebuilt from the "
            f"runs resampled that keep it; unstable: {unstable_rule(runs)}. marginal_gain and val_metric: a small "
            "model refitted on the panel so far. The attention inside each run (confidence, near-ties) is in the "
            "CSV and JSON downloads.")


def coverage_caption(trace: SelectionTrace) -> str:
    """How a coverage pick rule (:mod:`seqattn.selectors.coverage`) made the picks, with the picks per type
    ("" without one)."""
    rule, types = trace.settings.get("coverage"), trace.settings.get("pick_types")
    if rule not in PER_TYPE_RULES or types is None:
        return ""
    counts = Counter(types)  # in order of each type's first pick
    who = ("the types with the fewest picks so far take turns, the worst served first" if rule == "turns" else
           f"the worst-served type, at most {trace.settings.get('coverage_max_lead', 2)} picks ahead of the "
           "least-picked type")
    measure = {"f1": "F1", "probability": "mean probability of the true type"}.get(
        trace.settings.get("coverage_score", "recall"), "recall")
    share = float(trace.settings.get("coverage_structure_share") or 0.0)
    structure = (f" A share {share:.2f} of the picks (structure_weight λ: λ / (1 + λ)) was made for the structure "
                 "instead: the largest-attention gene among all types' markers, counted below under the type whose "
                 "markers it came from." if share > 0 else "")
    per_type = ", ".join(f"{t} {n}" for t, n in counts.items())
    structure += _unpooled_note(trace.settings)
    if trace.is_consensus:  # the rule made each run's picks; the panel keeps each type's share of them
        return (f"In each run, each pick was made for one cell type ({who}; served = held-out {measure} on that run's "
                "validation cells of a logistic regression on its picks so far) and is the largest-attention gene "
                f"among that type's t-test markers.{structure} Panel genes per type whose markers they are: "
                f"{per_type}.")
    return (f"Each pick was made for one cell type ({who}; served = held-out {measure} on the fit's validation "
            f"cells of a logistic regression on the picks so far) and is the largest-attention gene among that type's "
            f"t-test markers.{structure} Picks per type: {per_type}.")


def _unpooled_note(settings: dict) -> str:
    """The types whose pool kept no significant marker (``marker_fdr``), so no pick was made for them."""
    missing, fdr = settings.get("types_without_pool") or [], settings.get("marker_fdr")
    if not missing or fdr is None:
        return ""
    verb = "has" if len(missing) == 1 else "have"
    return (f" {', '.join(map(str, missing))} {verb} no significant marker (up-regulated, Benjamini–Hochberg-adjusted "
            f"p < {fdr:g}): no pick was made for {'it' if len(missing) == 1 else 'them'}.")


def budget_summary(trace: SelectionTrace) -> str:
    """How long SA trained, from the trace's settings: the automatic budget's warm-up and phase lengths,
    or the fixed schedule's epochs ("" for other methods)."""
    settings = trace.settings
    if trace.is_consensus and settings.get("run_total_steps"):
        return _runs_budget(settings)
    if settings.get("budget") == "auto":
        phases = settings.get("phase_steps") or []
        span = _span(phases, empty="0")
        capped = settings.get("capped_phases", 0)
        capped_text = (f"; {capped} phase{'s' if capped != 1 else ''} ended at {'their' if capped != 1 else 'its'} "
                       f"cap without a clear leader") if capped else ""
        joint = [n for n in settings.get("picks_per_phase") or [] if n > 1]
        joint_text = (f"; {len(joint)} phase{'s' if len(joint) != 1 else ''} made {sum(joint)} picks between "
                      f"{'them' if len(joint) != 1 else 'it'} (candidates that separated together)") if joint else ""
        return (f"Automatic budget: {settings.get('total_steps')} optimizer steps — a warm-up of "
                f"{settings.get('warmup_steps')} (until the validation loss stopped improving), then "
                f"{len(phases)} phase{'s' if len(phases) != 1 else ''} of {span} steps{capped_text}{joint_text}.")
    if settings.get("budget") == "fixed":
        return (f"Fixed budget: {settings.get('epochs')} epochs = {settings.get('total_steps')} optimizer steps "
                f"({settings.get('warmup_steps')} of warm-up).")
    return ""


def _span(values: Sequence[int], empty: str = "") -> str:
    """"12" when every value is 12, "12–40" otherwise; ``empty`` for none (how the narrative quotes a range)."""
    if not values:
        return empty
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def _runs_budget(settings: dict) -> str:
    """Several runs' budgets: the span of their optimizer steps and warm-ups."""
    def span(values: list) -> str:
        return _span([int(v) for v in values if v is not None], empty="?")

    steps, warmups = settings.get("run_total_steps") or [], settings.get("run_warmup_steps") or []
    kind = (f"Fixed budget of {settings['epochs']} epochs" if settings.get("epochs") else
            "Automatic budget (each run until converged)")
    return (f"{kind}: {span(steps)} optimizer steps per run, of which {span(warmups)} of warm-up; the "
            f"{len(steps)} runs trained side by side." if settings.get("batched") else
            f"{kind}: {span(steps)} optimizer steps per run, of which {span(warmups)} of warm-up, run one after "
            "another.")


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
        lines.append(stop_note(trace, unit))
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

    from seqattn.stats import spearman

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
