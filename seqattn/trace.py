"""``SelectionTrace``: the one record every selector returns.

Plots, comparisons, downloads and the CLI all read this object, so SA, OMP,
SHAP, greedy selection and filters are treated alike downstream.
"""
from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqattn.safe_text import write_atomically

TRACE_FORMAT_VERSION = 3  # 2: per-step confidence and runner-up; 3: picked in b of B runs (stability)

#: A pick is a *near-tie* (uncertain) when (a) its confidence (score / mean candidate score) is below
#: NEAR_TIE_CONFIDENCE, or (b) with at least MIN_CANDIDATES_FOR_SEPARATION candidates, its ``separation`` (how
#: many robust standard deviations its log-score lies above the candidates' median) is below what the largest
#: of n equal, noisy candidates reaches anyway, sqrt(2 ln n), plus NEAR_TIE_SEPARATION_MARGIN. Rule (b) is what
#: flags pure noise: there every attention logit random-walks and the leader is just the largest of n walks
#: (separation ≈ sqrt(2 ln n), 2.7 for 40 candidates), while a real signal stands out by tens. A runner-up
#: close to a clear pick is *not* a near-tie (two strong features, e.g. an XOR pair, are both picked in turn);
#: ``tied_with`` lists the candidates within NEAR_TIE_MARGIN of the pick for the message about a near-tie.
NEAR_TIE_CONFIDENCE = 1.5
#: Methods whose scores are attention weights (a softmax over the candidates): only their picks get a
#: confidence, a separation and a near-tie verdict; other methods' scores (|Xᵀr|, gains, SHAP) are not shares.
ATTENTION_METHODS = frozenset({"sa", "sequential_attention", "sequential attention"})
NEAR_TIE_MARGIN = 0.1
NEAR_TIE_SEPARATION_MARGIN = 2.0
MIN_CANDIDATES_FOR_SEPARATION = 5
#: A pick of a selection run several times (seeds or resamples, :mod:`seqattn.selectors.stability`) is
#: *unstable* when at most this share of the runs made it — "half the runs do not pick it" — whatever its
#: margin inside the runs that did.
UNSTABLE_SHARE = 0.5
#: ... or when fewer than this share of the *resampled* consensus panels keep it
#: (:func:`seqattn.selectors.stability.resampled_kept_shares`: the B runs drawn again with replacement, the
#: consensus rebuilt with the same rule): "would another set of B runs — another seed — keep this gene?".
#: 0.9: kept at least 9 times in 10. On pbmc68k_reduced (k = 20) the resampled share of a panel's picks is
#: optimistic against fresh runs (mean 0.82 vs 0.74 with 8 runs, 0.85 vs 0.82 with 16; benchmarks/README.md,
#: *Stability*), so the bar is set high.
MIN_KEPT_SHARE = 0.9


def noise_separation(n_candidates: int) -> float:
    """The separation the leader of n equal, noisy candidates reaches by chance (the expected Gaussian max)."""
    return math.sqrt(2 * math.log(max(n_candidates, 2)))


@dataclass
class SelectionStep:
    """One pick.

    ``scores`` holds the method's score for *every* feature at the moment of
    the pick (attention weight for SA, |X_iᵀ r| for OMP, ...); already selected
    (or banned) features are NaN. ``marginal_gain`` is the change of the
    validation metric from S_{t-1} to S_t; ``seconds`` is wall time since the
    start of the run.

    ``confidence`` is the picked score divided by the mean candidate score
    (1.0 = uniform; for SA: "3.4× the uniform share"); ``runner_up`` and
    ``runner_up_weight`` are the best candidate not picked and its score.
    Confidence and separation are ``None`` for methods whose scores are not
    attention weights (see ATTENTION_METHODS).

    A pick of a *stable* selection (several runs, :mod:`seqattn.selectors.stability`)
    also carries ``picked_in`` of ``n_runs`` runs and its ``mean_position`` in the
    runs that picked it, and ``kept_share``: the share of resampled consensus panels
    that keep it (how often another set of B runs would); its ``scores`` are then every
    candidate's share of runs, and its confidence and separation the medians over the
    runs that picked it.
    """

    feature: int
    name: str
    scores: np.ndarray
    marginal_gain: float | None = None
    val_metric: float | None = None
    seconds: float = 0.0
    confidence: float | None = None
    runner_up: int | None = None
    runner_up_weight: float | None = None
    separation: float | None = None
    picked_in: int | None = None
    n_runs: int | None = None
    mean_position: float | None = None
    kept_share: float | None = None

    @property
    def score(self) -> float:
        """The picked feature's own score at the moment it was picked."""
        value = self.scores[self.feature] if len(self.scores) else float("nan")
        return float(value)

    @property
    def near_tie(self) -> bool:
        """True when the pick did not clearly stand out from the other candidates (rules at NEAR_TIE_*)."""
        return is_near_tie(self.confidence, self.separation, int(np.isfinite(self.scores).sum()))

    @property
    def unstable(self) -> bool:
        """True when at most UNSTABLE_SHARE of the runs made this pick, or fewer than MIN_KEPT_SHARE of the
        resampled consensus panels keep it (only for picks of several runs; see :func:`is_unstable`)."""
        return (self.picked_in is not None and bool(self.n_runs)
                and is_unstable(self.picked_in, self.n_runs, self.kept_share))

    @property
    def support(self) -> str:
        """"15/16, kept 98%" for a pick of several runs (:func:`support_text`); "" for one run."""
        return "" if self.picked_in is None else support_text(self.picked_in, self.n_runs, self.kept_share)

    @property
    def flagged(self) -> bool:
        """The one verdict a user sees. One run: a near-tie. Several runs: a pick the runs disagree on
        (unstable). A pick every run makes is not flagged for a close margin inside the runs: that margin
        says which of two genes came first, not whether the gene belongs in the panel."""
        return self.unstable if self.picked_in is not None else self.near_tie

    def tied_with(self) -> list[int]:
        """Candidates whose score is within NEAR_TIE_MARGIN of the pick's, best first (the pick excluded)."""
        scores = np.where(np.isfinite(self.scores), self.scores, -np.inf)
        close = np.flatnonzero(scores * (1 + NEAR_TIE_MARGIN) >= self.score)
        close = [int(i) for i in close if i != self.feature]
        if not close and self.runner_up is not None:
            close = [self.runner_up]
        return sorted(close, key=lambda i: -scores[i])


def assess_pick(scores: np.ndarray, feature: int) -> tuple[float | None, int | None, float | None, float | None]:
    """(confidence, runner-up index, runner-up score, separation) of picking ``feature`` among the finite
    ``scores``; confidence and separation are ``None`` unless the scores are positive weights."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    others = finite.copy()
    others[feature] = False
    runner_up = int(np.argmax(np.where(others, scores, -np.inf))) if others.any() else None
    runner_weight = float(scores[runner_up]) if runner_up is not None else None
    values = scores[finite]
    confidence = separation = None
    if values.size and finite[feature] and np.all(values >= 0) and values.mean() > 0:
        confidence = float(scores[feature] / values.mean())
        if values.size >= MIN_CANDIDATES_FOR_SEPARATION and np.all(values > 0):
            logs = np.log(values)
            centre = np.median(logs)
            spread = 1.4826 * np.median(np.abs(logs - centre))  # robust standard deviation
            lead = math.log(scores[feature]) - centre
            separation = float(lead / spread) if spread > 0 else (math.inf if lead > 0 else 0.0)
    return confidence, runner_up, runner_weight, separation


def support_text(picked_in: int | str, n_runs: int | None, kept_share: float | None) -> str:
    """"5/8, kept 62%": a pick's count of runs ("5/8" as given where ``n_runs`` is None) and, where measured,
    its share of resampled panels (every screen that shows a pick's support words it so)."""
    count = str(picked_in) if n_runs is None else f"{picked_in}/{n_runs}"
    measured = kept_share is not None and math.isfinite(kept_share)
    return count + (f", kept {kept_share:.0%}" if measured else "")


def is_unstable(picked_in: int, n_runs: int, kept_share: float | None = None) -> bool:
    """The stability rule, one place: a pick that at most UNSTABLE_SHARE of ``n_runs`` runs made, or that
    fewer than MIN_KEPT_SHARE of the resampled consensus panels keep (``kept_share``; ``None`` where it was
    not measured: a trace from before it, a shared selection)."""
    if picked_in <= UNSTABLE_SHARE * n_runs:
        return True
    return kept_share is not None and kept_share < MIN_KEPT_SHARE


def is_near_tie(confidence: float | None, separation: float | None, n_candidates: int) -> bool:
    """The near-tie rule (see NEAR_TIE_*); shared by the trace and SA's phase schedule."""
    if confidence is not None and confidence < NEAR_TIE_CONFIDENCE:
        return True
    return separation is not None and separation < noise_separation(n_candidates) + NEAR_TIE_SEPARATION_MARGIN


def _clean(value: Any) -> Any:
    """Make numpy scalars and NaN JSON-safe (NaN/inf become null)."""
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if not math.isfinite(value) else value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class SelectionTrace:
    """Ordered picks of one selection method on one data set, with per-step scores."""

    method: str
    feature_names: list[str]
    steps: list[SelectionStep] = field(default_factory=list)
    dataset: str = ""
    task: str = ""
    metric_name: str = ""
    device: str = "cpu"
    pinned: list[int] = field(default_factory=list)
    banned: list[int] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    base_metric: float | None = None  # validation metric before the first pick
    stopped_early: bool = False
    #: For group selection: the data columns of each unit in ``feature_names`` (which then
    #: holds group names) and the columns' own names; ``None`` when units are columns.
    groups: list[list[int]] | None = None
    column_names: list[str] | None = None

    # ------------------------------------------------------------------ views
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_runs(self) -> int | None:
        """How many runs a stable selection combined (``None`` for a single run)."""
        runs = self.settings.get("n_runs")
        return int(runs) if runs is not None and int(runs) > 1 else None

    @property
    def combine(self) -> str | None:
        """How several runs were combined, as the selector's ``combine`` option: ``"shared"`` (one panel, picked on
        the networks' mean attention) or ``"runs"`` (separate runs, then a consensus); ``None`` for one run.
        Traces saved before ``combine`` was recorded carry ``settings["shared"]`` (True/False) instead."""
        if self.n_runs is None:
            return None
        if "combine" in self.settings:
            return str(self.settings["combine"])
        return "shared" if self.settings.get("shared", False) else "runs"

    @property
    def is_consensus(self) -> bool:
        """The consensus of several separate runs (:func:`seqattn.selectors.stability.consensus_trace`): each
        step's ``scores`` are then every candidate's share of the runs that picked it, not attention weights
        (a shared selection's scores stay its networks' mean attention)."""
        return self.combine == "runs"

    @property
    def k(self) -> int:
        return len(self.steps)

    @property
    def selected(self) -> list[int]:
        """Indices of the picked features in pick order (pinned ones excluded)."""
        return [s.feature for s in self.steps]

    @property
    def selected_names(self) -> list[str]:
        return [self.feature_names[i] for i in self.selected]

    @property
    def n_columns(self) -> int:
        """Data columns the trace was computed on (more than ``n_features`` for group selection)."""
        return len(self.column_names) if self.column_names is not None else self.n_features

    def columns_of(self, units: list[int]) -> list[int]:
        """Data column indices of the given units (features, or groups for group selection)."""
        if self.groups is None:
            return [int(u) for u in units]
        return [c for u in units for c in self.groups[int(u)]]

    def add_step(
        self,
        feature: int,
        scores: np.ndarray,
        marginal_gain: float | None = None,
        val_metric: float | None = None,
        seconds: float = 0.0,
    ) -> SelectionStep:
        scores = np.asarray(scores, dtype=np.float64).copy()
        if scores.shape != (self.n_features,):
            raise ValueError(f"scores must have shape ({self.n_features},), got {scores.shape}")
        step = SelectionStep(
            feature=int(feature),
            name=self.feature_names[int(feature)],
            scores=scores,
            marginal_gain=_opt_float(marginal_gain),
            val_metric=_opt_float(val_metric),
            seconds=float(seconds),
        )
        confidence, step.runner_up, step.runner_up_weight, separation = assess_pick(scores, step.feature)
        if self.method.strip().lower() in ATTENTION_METHODS:
            step.confidence, step.separation = confidence, separation
        self.steps.append(step)
        return step

    def score_matrix(self) -> np.ndarray:
        """(k, n_features) array of per-step scores; NaN where not a candidate."""
        if not self.steps:
            return np.empty((0, self.n_features))
        return np.vstack([s.scores for s in self.steps])

    def truncated(self, k: int) -> "SelectionTrace":
        """A copy holding only the first ``k`` steps."""
        data = self.to_dict()
        data["steps"] = data["steps"][:k]
        return SelectionTrace.from_dict(data)

    def to_frame(self) -> pd.DataFrame:
        """One row per selected feature: pinned ones first (``pinned`` True, order 0), then the picks in order,
        each with its score, confidence, runner-up, near-tie flag, gain, metric and the cumulative wall time
        ``seconds_since_start`` (time from the start of the run to this pick, not the pick's own cost)."""
        columns = ["order", "feature", "name", "pinned", "score", "confidence", "runner_up", "runner_up_weight",
                   "separation", "near_tie", "marginal_gain", "val_metric", "seconds_since_start"]
        stable = self.n_runs is not None
        if stable:
            columns[columns.index("near_tie") + 1:columns.index("near_tie") + 1] = [
                "picked_in", "n_runs", "mean_position", "kept_share", "unstable", "flagged"]
        rows = [{"order": 0, "feature": i, "name": self.feature_names[i], "pinned": True} for i in self.pinned]
        rows += [
            {
                "order": i + 1,
                "feature": s.feature,
                "name": s.name,
                "pinned": False,
                "score": s.score,
                "confidence": s.confidence,
                "runner_up": None if s.runner_up is None else self.feature_names[s.runner_up],
                "runner_up_weight": s.runner_up_weight,
                "separation": s.separation,
                "near_tie": s.near_tie,
                **({"picked_in": s.picked_in, "n_runs": s.n_runs, "mean_position": s.mean_position,
                    "kept_share": s.kept_share,
                    "unstable": s.unstable, "flagged": s.flagged} if stable else {}),
                "marginal_gain": s.marginal_gain,
                "val_metric": s.val_metric,
                "seconds_since_start": s.seconds,
            }
            for i, s in enumerate(self.steps)
        ]
        frame = pd.DataFrame(rows, columns=columns).astype({"order": int, "feature": int, "pinned": bool})
        if self.groups is not None and self.column_names is not None:  # what each selected group holds
            frame.insert(3, "columns", ["; ".join(self.column_names[c] for c in self.groups[f])
                                        for f in frame["feature"]])
        return frame

    # ---------------------------------------------------------------- display
    #: Rows shown by ``_repr_html_`` before "… and N more".
    HTML_MAX_ROWS = 50

    def _repr_html_(self) -> str:
        """Jupyter's rich display: what ran on what, then one row per pick (name, score,
        confidence where the method reports it, for several runs "picked in", kept share and the unstable
        flag, marginal gain, validation metric)."""
        def number(value: Any, fmt: str = ".4g") -> str:
            return "" if value is None or not math.isfinite(float(value)) else format(float(value), fmt)

        facts = [f"<b>{html.escape(self.method)}</b>",
                 f"{self.k} of {self.n_features} features"]
        if self.dataset:
            facts.append(f"data <b>{html.escape(self.dataset)}</b>")
        if self.task:
            facts.append(html.escape(self.task))
        facts.append(f"device {html.escape(self.device)}")
        final = self.steps[-1].val_metric if self.steps else None
        if final is not None:
            before = f"{number(self.base_metric, '.3f')} → " if self.base_metric is not None else ""
            facts.append(f"validation {html.escape(self.metric_name or 'metric')} {before}{number(final, '.3f')}")
        if self.stopped_early:
            facts.append(f"<b>stopped early</b> ({html.escape(str(self.settings.get('stop_reason', 'stopped')))})")
        lines = [f"<div class='seqattn-trace'><p>SelectionTrace: {' · '.join(facts)}</p>"]
        if self.pinned:
            pinned = ", ".join(html.escape(self.feature_names[i]) for i in self.pinned)
            lines.append(f"<p>pinned (selected from the start): {pinned}</p>")
        confidences = [getattr(s, "confidence", None) for s in self.steps]
        has_confidence = any(c is not None for c in confidences)
        stable = self.n_runs is not None
        header = ["#", "feature", "score"] + (["confidence"] if has_confidence else []) + (
            ["picked in", "kept", "unstable"] if stable else []) + [
            "marginal gain", f"validation {self.metric_name or 'metric'}", "seconds"]
        lines.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                     + "</tr></thead><tbody>")
        for i, (step, confidence) in enumerate(zip(self.steps[: self.HTML_MAX_ROWS], confidences)):
            cells = [str(i + 1), html.escape(step.name), number(step.score)]
            if has_confidence:
                cells.append(number(confidence, ".3g"))
            if stable:
                cells += [f"{step.picked_in}/{step.n_runs}", number(step.kept_share, ".0%"),
                          "<b>unstable</b>" if step.unstable else ""]
            cells += [number(step.marginal_gain, "+.4f"), number(step.val_metric, ".4f"), number(step.seconds, ".1f")]
            lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        lines.append("</tbody></table>")
        if self.k > self.HTML_MAX_ROWS:
            lines.append(f"<p>… and {self.k - self.HTML_MAX_ROWS} more picks (<code>trace.to_frame()</code> "
                         "holds them all)</p>")
        lines.append("</div>")
        return "\n".join(lines)

    def __repr__(self) -> str:
        shown = ", ".join(self.selected_names[:8]) + (", …" if self.k > 8 else "")
        return (f"SelectionTrace(method={self.method!r}, dataset={self.dataset!r}, k={self.k}, "
                f"n_features={self.n_features}, selected=[{shown}])")

    def plot(self, dataset: Any = None, **options: Any):
        """The app's animation of this trace (a plotly figure: scores per pick, gains, and the
        pixel panel for image data when ``dataset`` is given); ``options`` go to
        :func:`seqattn.plots.selection.selection_animation`.

        Built once and reused while the trace (its picks), ``dataset`` and the
        options stay the same, so repeated notebook calls and app reruns cost
        nothing; treat the figure as read-only (``go.Figure(fig)`` copies it).
        """
        from seqattn.plots.selection import selection_figure

        def frozen(value: Any) -> Any:
            array = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple)) else None
            return (array.shape, array.tobytes()) if array is not None and array.dtype != object else value

        key = (self.k, self.steps[-1].feature if self.steps else None,
               tuple(sorted((name, frozen(value)) for name, value in options.items())))
        cached = self.__dict__.get("_figure_cache")
        if cached is None or cached[0] != key or cached[1] is not dataset:
            cached = (key, dataset, selection_figure(self, dataset, **options))
            self.__dict__["_figure_cache"] = cached  # one figure per trace: a new key replaces the old one
        return cached[2]

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "format_version": TRACE_FORMAT_VERSION,
                "method": self.method,
                "dataset": self.dataset,
                "task": self.task,
                "metric_name": self.metric_name,
                "device": self.device,
                "k": self.k,
                "n_features": self.n_features,
                "feature_names": list(self.feature_names),
                "selected": self.selected,
                "selected_names": self.selected_names,
                "pinned": list(self.pinned),
                "banned": list(self.banned),
                "base_metric": self.base_metric,
                "stopped_early": self.stopped_early,
                "settings": dict(self.settings),
                **({"groups": [list(g) for g in self.groups], "column_names": list(self.column_names or [])}
                   if self.groups is not None else {}),
                "steps": [
                    {
                        "feature": s.feature,
                        "name": s.name,
                        "scores": s.scores,
                        "marginal_gain": s.marginal_gain,
                        "val_metric": s.val_metric,
                        "seconds": s.seconds,
                        "confidence": s.confidence,
                        "runner_up": s.runner_up,
                        "runner_up_weight": s.runner_up_weight,
                        "separation": s.separation,
                        "near_tie": s.near_tie,
                        **({"picked_in": s.picked_in, "n_runs": s.n_runs, "mean_position": s.mean_position,
                            "kept_share": s.kept_share, "unstable": s.unstable, "flagged": s.flagged}
                           if s.picked_in is not None else {}),
                    }
                    for s in self.steps
                ],
            }
        )

    def to_json(self, path: str | Path | None = None, indent: int | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            write_atomically(path, text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SelectionTrace":
        names = [str(n) for n in data["feature_names"]]
        trace = cls(
            method=str(data["method"]),
            feature_names=names,
            dataset=str(data.get("dataset", "")),
            task=str(data.get("task", "")),
            metric_name=str(data.get("metric_name", "")),
            device=str(data.get("device", "cpu")),
            pinned=[int(i) for i in data.get("pinned", [])],
            banned=[int(i) for i in data.get("banned", [])],
            settings=dict(data.get("settings", {})),
            base_metric=_opt_float(data.get("base_metric")),
            stopped_early=bool(data.get("stopped_early", False)),
            groups=[[int(c) for c in g] for g in data["groups"]] if data.get("groups") is not None else None,
            column_names=[str(c) for c in data["column_names"]] if data.get("column_names") else None,
        )
        for step in data.get("steps", []):
            scores = np.array([np.nan if v is None else v for v in step["scores"]], dtype=np.float64)
            added = trace.add_step(
                step["feature"], scores, step.get("marginal_gain"), step.get("val_metric"), step.get("seconds", 0.0)
            )
            if step.get("picked_in") is not None:  # a pick of several runs keeps its recorded verdicts
                added.confidence, added.separation = _opt_float(step.get("confidence")), _opt_float(
                    step.get("separation"))
                added.runner_up = None if step.get("runner_up") is None else int(step["runner_up"])
                added.runner_up_weight = _opt_float(step.get("runner_up_weight"))
                added.picked_in, added.n_runs = int(step["picked_in"]), int(step["n_runs"])
                added.mean_position = _opt_float(step.get("mean_position"))
                added.kept_share = _opt_float(step.get("kept_share"))
        return trace

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "SelectionTrace":
        """Parse a trace from JSON text or from a path to a ``.json`` file."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))

    def to_csv(self, path: str | Path | None = None) -> str:
        """The per-pick table (``to_frame``) as CSV; also written to ``path`` if given.

        Names a spreadsheet would run as formulas are neutralised (:func:`seqattn.safe_text.to_csv`);
        :func:`seqattn.safe_text.read_csv` reads them back as they were."""
        from seqattn.safe_text import to_csv

        return to_csv(self.to_frame(), path)


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


def pick_columns(trace: SelectionTrace, k: int | None = None) -> list[int]:
    """The data columns of :func:`picks` (a picked feature group brings all its columns)."""
    return trace.columns_of(picks(trace, k))
