"""Run several selectors on one data set and evaluate them side by side.

:func:`compare_methods` is what the Compare page and ``benchmarks/bench_compare.py``
call: it runs each method (reusing a given SA trace), retrains fresh models on
the top-k of every trace (:func:`seqattn.evaluation.retrain.accuracy_vs_k`) and returns a
:class:`Comparison` holding the traces, the tidy accuracy table, timings and the
SHAP explanation, with the agreement tables computed on demand.
:func:`step_scores` lines up, at one step, SA's attention, OMP's residual
correlation and the true greedy gain of every candidate, given the same picks.
"""
from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import Dataset
from seqattn.evaluation.agreement import overlap_matrix, rank_correlation_matrix, recovery_table
from seqattn.evaluation.retrain import (DEFAULT_TEST_FRACTION, EVALUATION_CONFIG, EVALUATION_EPOCHS, MLP_BATCH,
                                        accuracy_vs_k, summarize_accuracy)
from seqattn.models import TrainConfig
from seqattn.progress import ProgressTracker
from seqattn.scoring import DEFAULT_MAX_CANDIDATES, DEFAULT_MAX_SAMPLES, candidate_gains
from seqattn.selectors import METHOD_LABELS, REGISTRY, run_method
from seqattn.selectors.greedy import GREEDY_MAX_FEATURES
from seqattn.safe_text import to_csv
from seqattn.trace import SelectionTrace, picks

if TYPE_CHECKING:
    from seqattn.selectors.shap_rank import ShapExplanation

Callback = Callable[[int, int, str], Any]

ALL_METHODS = tuple(REGISTRY)  # every registered method can be compared, ttest included
#: Preselected on the Compare page and in the benchmark: ttest is a classification-only marker-gene method.
DEFAULT_METHODS = tuple(m for m in ALL_METHODS if m != "ttest")
GREEDY_SHORTLIST = 50  # candidates kept for greedy on wide data (said in its trace settings)
GREEDY_REFITS_PER_STEP = 24  # greedy refits this many score-test leaders per step (digits k=10: same picks as all 64)


def default_ks(k: int) -> list[int]:
    """A few k values up to ``k`` for the accuracy-vs-k chart."""
    return sorted({x for x in (1, 2, 5, 10, 15, 20, 30, 50, 75, 100) if x < k} | {int(k)})


def trace_seconds(trace: SelectionTrace) -> float:
    """Wall time of the run that produced ``trace`` (recorded by every selector)."""
    if "wall_seconds" in trace.settings:
        return float(trace.settings["wall_seconds"])
    return float(trace.steps[-1].seconds) if trace.steps else 0.0


def run_selector(dataset: Dataset, method: str, k: int, *, random_state: int = 0, device: str = "auto",
                 callback: Callback | None = None, **options: Any) -> SelectionTrace:
    """Run one registered method by name (:func:`seqattn.selectors.run_method`) and return its trace."""
    return run_method(dataset, method, int(k), device=device, random_state=random_state, callback=callback,
                      **options)


@dataclass(repr=False)  # the generated repr printed every trace's scores (15,000+ characters)
class Comparison:
    """Everything the Compare page shows, computed once; renders itself in Jupyter (:meth:`_repr_html_`)."""

    dataset: str
    k: int
    ks: list[int]
    traces: dict[str, SelectionTrace]
    accuracy: pd.DataFrame
    shap: "ShapExplanation | None" = None
    errors: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    informative: list[int] | None = None
    xor_pairs: list[list[int]] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(self.traces)

    @property
    def metric(self) -> str:
        """The test metric of the retraining ("accuracy" or "R²"): what the accuracy-vs-k chart and table show."""
        return str(self.accuracy["metric"].iloc[0]) if "metric" in self.accuracy and len(self.accuracy) else "metric"

    def summary(self) -> pd.DataFrame:
        """Mean ± std of the test metric per (method, k)."""
        return summarize_accuracy(self.accuracy)

    def accuracy_table(self) -> pd.DataFrame:
        """Mean ± std per method (rows, first column ``method``) and k (columns ``k = 1`` …): the table
        under the accuracy chart, with its headers spelled out."""
        summary = self.summary()
        if summary.empty:
            return pd.DataFrame(columns=["method"])
        metric = self.metric
        cells = summary.assign(value=summary["mean"].map("{:.3f}".format) + " ± " + summary["std"].map("{:.3f}".format))
        table = cells.pivot(index="method", columns="k", values="value")
        order = [m for m in self.traces if m in table.index] + [m for m in table.index if m not in self.traces]
        table = table.reindex(order)  # the methods in the order they were run, as in the chart
        table.columns = [f"k = {k}" for k in table.columns]
        table.index = [METHOD_LABELS.get(m, m) for m in table.index]
        table = table.rename_axis(f"method ({metric}, mean ± std over seeds)").reset_index()
        return table

    def rankings(self, k: int | None = None) -> pd.DataFrame:
        """Side-by-side ranked feature names: one row per rank, one column per method."""
        k = self.k if k is None else k
        columns = {}
        for method, trace in self.traces.items():
            names = trace.selected_names[:k]
            columns[METHOD_LABELS.get(method, method)] = names + [""] * (k - len(names))
        return pd.DataFrame(columns, index=pd.RangeIndex(1, k + 1, name="rank"))

    def overlap(self, k: int | None = None) -> pd.DataFrame:
        return overlap_matrix(self.traces, self.k if k is None else k)

    def rank_correlation(self) -> pd.DataFrame:
        """Spearman ρ of the full rankings (picks, then the rest by each method's last scores)."""
        return rank_correlation_matrix(self.traces)

    def recovery(self) -> pd.DataFrame | None:
        """Planted-feature recovery per method and k (None without ground truth)."""
        if self.informative is None:
            return None
        return recovery_table(self.informative, self.traces, self.ks, self.xor_pairs)

    def timings(self) -> pd.DataFrame:
        rows = [{"method": m, "label": METHOD_LABELS.get(m, m), "seconds": trace_seconds(t),
                 "reused": bool(t.settings.get("reused"))} for m, t in self.traces.items()]
        return pd.DataFrame(rows, columns=["method", "label", "seconds", "reused"])

    # ---------------------------------------------------------------- display
    def __repr__(self) -> str:
        failed = f", failed={sorted(self.errors)}" if self.errors else ""
        return (f"Comparison(dataset={self.dataset!r}, k={self.k}, methods={self.methods}, ks={list(self.ks)}"
                f"{failed})")

    def _repr_html_(self) -> str:
        """Jupyter's rich display: what ran (with seconds), test accuracy per method and k, the picks side by
        side and their overlap (Jaccard of the top-k sets). Names and messages are user text: escaped."""
        methods = " · ".join(f"{html.escape(METHOD_LABELS.get(m, m))} ({trace_seconds(t):.1f} s"
                             + (", reused" if t.settings.get("reused") else "") + ")"
                             for m, t in self.traces.items())
        parts = [f"<div class='seqattn-comparison'><p><b>Comparison</b> on <b>{html.escape(self.dataset)}</b>"
                 f" · k = {self.k} · {methods}</p>"]
        if self.errors:
            parts.append("<p>failed: " + "; ".join(f"{html.escape(METHOD_LABELS.get(m, m))}: {html.escape(str(e))}"
                                                   for m, e in self.errors.items()) + "</p>")
        if self.settings.get("stop_reason"):
            parts.append(f"<p><b>stopped early</b> ({html.escape(str(self.settings['stop_reason']))})</p>")
        sections = [("Test accuracy after retraining on each method's top k", self.accuracy_table()),
                    (f"Picks (first {self.k})", self.rankings()),
                    (f"Overlap of the top-{self.k} sets (Jaccard: 1 = same set)",
                     self.overlap().rename(index=METHOD_LABELS, columns=METHOD_LABELS).map("{:.2f}".format))]
        for title, table in sections:
            if not table.empty:
                parts.append(f"<p><b>{html.escape(title)}</b></p>"
                             + table.to_html(escape=True, index=title.startswith(("Picks", "Overlap")), border=0,
                                             na_rep=""))
        parts.append("<p><small>More: <code>.summary()</code>, <code>.rank_correlation()</code>, "
                     "<code>.recovery()</code>, <code>.timings()</code>, <code>.traces[method]</code></small></p>"
                     "</div>")
        return "\n".join(parts)

    # ---------------------------------------------------------------- downloads and storage
    def to_dict(self) -> dict[str, Any]:
        """Everything but the SHAP arrays (:meth:`shap_arrays`), JSON-ready; :meth:`from_dict` reads it back."""
        shap_meta = None
        if self.shap is not None:
            shap_meta = {"feature_names": list(self.shap.feature_names),
                         "output_names": [str(n) for n in self.shap.output_names],
                         "explainer": self.shap.explainer, "fallback_reason": self.shap.fallback_reason,
                         "settings": json.loads(json.dumps(self.shap.settings, default=str))}
        return {
            "dataset": self.dataset, "k": self.k, "ks": list(self.ks),
            "settings": json.loads(json.dumps(self.settings, default=str)), "errors": dict(self.errors),
            "traces": {m: t.to_dict() for m, t in self.traces.items()},
            "accuracy": json.loads(self.accuracy.to_json(orient="records")),
            "accuracy_columns": [str(c) for c in self.accuracy.columns],
            "accuracy_attrs": json.loads(json.dumps(self.accuracy.attrs, default=str)),
            "informative": self.informative, "xor_pairs": self.xor_pairs, "shap": shap_meta,
        }

    def shap_arrays(self) -> dict[str, np.ndarray]:
        """The SHAP explanation's arrays (values, explained rows, their labels), for an ``.npz`` beside
        :meth:`to_dict`."""
        if self.shap is None:
            return {}
        arrays = {"shap_values": np.asarray(self.shap.values), "shap_data": np.asarray(self.shap.data)}
        if self.shap.labels is not None:
            arrays["shap_labels"] = np.asarray(self.shap.labels)
        return arrays

    @classmethod
    def from_dict(cls, payload: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> "Comparison":
        """The comparison :meth:`to_dict` (and :meth:`shap_arrays`) wrote."""
        from seqattn.selectors.shap_rank import ShapExplanation

        accuracy = pd.DataFrame(payload.get("accuracy", []), columns=payload.get("accuracy_columns"))
        accuracy.attrs.update(payload.get("accuracy_attrs") or {})
        shap_meta, arrays = payload.get("shap"), arrays or {}
        shap = None
        if shap_meta is not None and "shap_values" in arrays:
            shap = ShapExplanation(values=arrays["shap_values"], data=arrays["shap_data"],
                                   feature_names=list(shap_meta["feature_names"]),
                                   output_names=list(shap_meta["output_names"]), explainer=shap_meta["explainer"],
                                   fallback_reason=shap_meta["fallback_reason"], settings=shap_meta["settings"],
                                   labels=arrays.get("shap_labels"))
        return cls(dataset=str(payload["dataset"]), k=int(payload["k"]), ks=[int(k) for k in payload["ks"]],
                   traces={m: SelectionTrace.from_dict(t) for m, t in payload["traces"].items()},
                   accuracy=accuracy, shap=shap, errors=dict(payload.get("errors") or {}),
                   settings=dict(payload.get("settings") or {}), informative=payload.get("informative"),
                   xor_pairs=[list(p) for p in payload.get("xor_pairs") or []])

    def to_json(self) -> str:
        """Traces, accuracy rows and settings as one JSON document (:meth:`to_dict`)."""
        return json.dumps(self.to_dict(), allow_nan=False, default=str)

    def summary_csv(self) -> str:
        return to_csv(self.summary())

    def accuracy_csv(self) -> str:
        """Every retraining row (method, k, seed, metric, value, features)."""
        return to_csv(self.accuracy)

    def rankings_csv(self) -> str:
        return to_csv(self.rankings(), index=True)


#: Step counts of SA's automatic budget, measured on the built-ins (digits, breast cancer, wine, diabetes,
#: pbmc68k_reduced; k = 5 and 10): the warm-up's median is 270 optimizer steps (230–2,270), a phase's 30 (15–60).
TYPICAL_WARMUP_STEPS = 270
TYPICAL_PHASE_STEPS = 30
#: Cost models of the methods that do not train an MLP, fitted to digits runs (seconds).
OMP_SECONDS_PER_VALUE_PICK, OMP_SECONDS_PER_PICK = 1e-8, 0.1
GREEDY_SECONDS_PER_REFIT_ROW = 1e-5
MUTUAL_INFO_SECONDS_PER_VALUE = 2.5e-5
SHAP_SECONDS_PER_EXPLAINED_VALUE = 6e-4
RUN_OVERHEAD_SECONDS = 0.5  # set-up, read-out and trace of one selection run


def estimate_seconds(dataset: Dataset, method: str, k: int, options: dict[str, Any] | None = None,
                     reused: bool = False) -> float:
    """Rough seconds a method's selection takes here (for the progress bar's ETA).

    Methods that train an MLP (SA, SHAP's dense model) are counted in optimizer steps — from their
    settings (epochs × batches per epoch) or, for SA's automatic budget, the typical step counts above —
    times the seconds of one such step *measured on this machine* at the data's width and batch
    (:func:`seqattn.models.measured_step_seconds`; an SA step costs about one plain MLP step, measured
    0.9–1.6× on digits, breast cancer and pbmc68k_reduced). The others use cost models fitted to digits.
    :func:`compare_methods` rescales all of them by how fast the finished stages actually ran.
    """
    from seqattn.models import measured_step_seconds
    from seqattn.scoring import VALIDATION_FRACTION
    from seqattn.selectors.sa_trainer import SAConfig

    options = options or {}
    n, d = dataset.n_samples, dataset.n_features
    if reused:
        return 0.0
    if method in ("sa", "shap"):
        config = SAConfig.from_params(options) if method == "sa" else TrainConfig(
            epochs=options.get("epochs") or TrainConfig.epochs, hidden=options.get("hidden", TrainConfig.hidden))
        batch = max(1, min(config.batch_size, int(n * (1 - VALIDATION_FRACTION))))
        per_epoch = max(1, int(n * (1 - VALIDATION_FRACTION)) // batch)
        if config.epochs:
            steps = config.epochs * per_epoch
        else:  # SA's automatic budget: a warm-up, then k phases (the linear model's phases are longer)
            steps = TYPICAL_WARMUP_STEPS + k * max(TYPICAL_PHASE_STEPS, config.min_steps_per_phase)
        seconds = steps * measured_step_seconds(d, batch, hidden=config.hidden) + RUN_OVERHEAD_SECONDS
        if method == "shap":
            seconds += SHAP_SECONDS_PER_EXPLAINED_VALUE * options.get("n_explain", 100) * d
        return seconds
    if method == "omp":
        return OMP_SECONDS_PER_VALUE_PICK * n * d * k + OMP_SECONDS_PER_PICK * k
    if method == "greedy":
        pool = min(d, options.get("max_candidates") or d)
        per_step = options.get("refits_per_step") or pool
        refits = sum(min(per_step, pool - t) for t in range(k))
        return refits * GREEDY_SECONDS_PER_REFIT_ROW * min(n, DEFAULT_MAX_SAMPLES) * (1 + k / 4)
    if method == "mutual_info":
        return MUTUAL_INFO_SECONDS_PER_VALUE * n * d
    return 0.3


def estimate_retraining_seconds(n_fits: int, n_rows: int, epochs: int, model: str, n_inputs: int = 10) -> float:
    """Rough seconds to retrain ``n_fits`` evaluation models of up to ``n_inputs`` inputs: MLPs train
    MLP_BATCH side by side, each batch ``epochs`` × batches per epoch steps of a measured stacked step."""
    from seqattn.models import measured_step_seconds

    if model != "mlp":
        return 0.03 * n_fits
    n_train = int((1 - DEFAULT_TEST_FRACTION) * n_rows)
    batch = max(1, min(EVALUATION_CONFIG.batch_size, n_train))
    steps = epochs * max(1, n_train // batch)
    runs = -(-n_fits // MLP_BATCH)
    members = -(-n_fits // runs)
    return runs * steps * measured_step_seconds(max(1, n_inputs), batch, members, EVALUATION_CONFIG.hidden)


def estimate_comparison_seconds(dataset: Dataset, methods: Sequence[str], k: int, *, ks: Sequence[int] | None = None,
                                seeds: Sequence[int] = (0, 1, 2), eval_model: str = "mlp",
                                eval_epochs: int = EVALUATION_EPOCHS,
                                method_options: dict[str, dict[str, Any]] | None = None,
                                reuse_sa: bool = False) -> float:
    """The seconds :func:`compare_methods` expects to take here before it starts (the estimate its progress bar
    starts from: step costs measured on this machine, idle; a busy machine takes longer)."""
    run = _ComparisonRun(dataset, list(methods), k, ks, list(seeds), eval_model, eval_epochs, 0, "auto",
                         method_options, None, None)
    return sum(select + retrain for _, select, retrain in run.plan(reuse_sa and "sa" in methods))


def compare_methods(
    dataset: Dataset,
    methods: Sequence[str],
    k: int,
    *,
    ks: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    eval_model: str = "mlp",
    eval_epochs: int = EVALUATION_EPOCHS,
    random_state: int = 0,
    device: str = "auto",
    sa_trace: SelectionTrace | None = None,
    method_options: dict[str, dict[str, Any]] | None = None,
    test: Dataset | None = None,
    callback: Callback | None = None,
    max_seconds: float | None = None,
    on_partial: Callable[["Comparison"], Any] | None = None,
) -> Comparison:
    """Run ``methods`` for ``k`` picks each, then retrain on their top-k for every k in ``ks``.

    Methods run one after another, and each is evaluated (retrained) as soon as
    it finishes, so ``on_partial(comparison)`` receives a growing
    :class:`Comparison` after every method: a page can show results while the
    rest runs. ``sa_trace`` (e.g. from the Sequential Attention page) is reused
    instead of running SA again when it was computed on the same columns. A
    method that raises ``ValueError`` (bad settings for this data) is skipped
    and its message kept in ``errors``. Greedy on more than 100 features
    shortlists 50 candidates by ANOVA F, and refits the ``GREEDY_REFITS_PER_STEP``
    best candidates by the score test per step (both said in its trace).
    ``method_options`` maps a method to extra keyword arguments. The
    ``callback(done, total, message)`` gets progress weighted by estimated cost,
    the running method and an estimate of the time left; returning ``True``
    (or passing ``max_seconds``) stops inside the running method (selectors
    keep their picks so far) or between retraining batches: what is finished is
    kept and ``settings["stopped"]`` says why.
    """
    run = _ComparisonRun(dataset, list(methods), k, ks, list(seeds), eval_model, eval_epochs, random_state, device,
                         method_options, test, max_seconds)
    reuse_sa = sa_trace if sa_trace is not None and sa_trace.n_features == dataset.n_groups else None
    plan = run.plan(reuse_sa is not None)
    progress = _Progress(sum(a + b for _, a, b in plan) or 1.0, callback, max_seconds)
    for position, (method, select_estimate, retrain_estimate) in enumerate(plan):
        prefix = f"{METHOD_LABELS[method]} ({position + 1}/{len(plan)})"
        if progress.report(f"{prefix}: selecting…"):
            break
        with progress.stage(select_estimate):
            run.select(method, reuse_sa if method == "sa" else None, progress.stage_callback(prefix + ": "))
        if method not in run.traces or progress.stop_reason or progress.report(f"{prefix}: retraining on its top-k…"):
            if progress.stop_reason:
                break
            continue
        with progress.stage(retrain_estimate):
            run.evaluate(method, progress.stage_callback(prefix + ": retraining, "))
        if on_partial is not None and position + 1 < len(plan):
            on_partial(run.assemble(progress.stop_reason, running=True))
    progress.done()
    return run.assemble(progress.stop_reason)


class _Progress:
    """compare_methods' progress: stages weighted by estimated seconds, rescaled by how fast the finished
    stages really ran (the ETA), and the stop decision (the callback's Stop or ``max_seconds``)."""

    UNITS = 1000

    def __init__(self, total_estimate: float, callback: Callback | None, max_seconds: float | None):
        self.total_estimate, self.callback, self.max_seconds = total_estimate, callback, max_seconds
        self.started = time.perf_counter()
        self.estimate_done = self.seconds_done = 0.0  # finished stages: estimated vs actual seconds
        self.units = 0
        self.stop_reason = ""
        self._stage_estimate = 0.0
        self._stage_started, self._in_stage = self.started, False

    def report(self, message: str, stage_fraction: float = 0.0) -> bool:
        """Progress with an ETA; True when the caller asked to stop or the time budget is spent."""
        elapsed = time.perf_counter() - self.started
        fraction = min(max(stage_fraction, 0.0), 1.0)
        done = self.estimate_done + self._stage_estimate * fraction
        self.units = max(self.units, int(self.UNITS * done / self.total_estimate))
        text = f"{message} · {elapsed:.0f} s so far, {self._time_left(fraction)}"
        if self.callback is not None and self.callback(min(self.units, self.UNITS - 1), self.UNITS, text):
            self.stop_reason = self.stop_reason or "stopped"
        if self.max_seconds is not None and elapsed > self.max_seconds:
            self.stop_reason = self.stop_reason or "time limit"
        return bool(self.stop_reason)

    def _time_left(self, fraction: float) -> str:
        """"about N s left": the running stage at its own pace once it has shown some (else its estimate,
        rescaled like the later stages by how fast the finished ones ran), plus the later stages. A stage
        past its estimate without a pace of its own says so instead of counting down to zero."""
        speed = (self.seconds_done / self.estimate_done) if self.estimate_done > 1.0 else 1.0
        in_stage = time.perf_counter() - self._stage_started
        stage_total = in_stage / fraction if fraction >= 0.1 else self._stage_estimate * speed
        later = max(self.total_estimate - self.estimate_done - self._stage_estimate, 0.0) * speed
        if not self._in_stage:
            return f"about {duration_text(later)} left"
        if fraction < 0.1 and in_stage > stage_total:
            return (f"this step is taking longer than estimated ({in_stage:.0f} s so far), then about "
                    f"{duration_text(later)} for the rest")
        return f"about {duration_text(max(stage_total - in_stage, 0.0) + later)} left"

    @contextmanager
    def stage(self, estimate: float) -> Iterator[None]:
        """A stage (one method's selection or retraining) estimated at ``estimate`` seconds."""
        self._stage_started, self._stage_estimate, self._in_stage = time.perf_counter(), estimate, True
        try:
            yield
        finally:
            self.estimate_done += estimate
            self.seconds_done += time.perf_counter() - self._stage_started
            self._stage_estimate, self._in_stage = 0.0, False

    def stage_callback(self, prefix: str) -> Callback:
        """The ``callback(step, total, message)`` handed to the running stage (its total may be SA's
        estimate: the tracker keeps the stage's share monotone)."""
        tracker = ProgressTracker()
        return lambda step, total, message: self.report(f"{prefix}{message}", tracker.update(step, total))

    def done(self) -> None:
        if self.callback is not None:
            self.callback(self.UNITS, self.UNITS, f"done in {time.perf_counter() - self.started:.0f} s")


class _ComparisonRun:
    """One compare_methods call: its checked settings, what has finished, and the Comparison of it."""

    def __init__(self, dataset: Dataset, methods: list[str], k: int, ks: Sequence[int] | None, seeds: list[int],
                 eval_model: str, eval_epochs: int, random_state: int, device: str,
                 method_options: dict[str, dict[str, Any]] | None, test: Dataset | None, max_seconds: float | None):
        unknown = [m for m in methods if m not in METHOD_LABELS]
        if unknown:
            raise ValueError(f"Unknown method(s) {unknown}; choose from {', '.join(ALL_METHODS)}.")
        if not methods:
            raise ValueError("Choose at least one method to compare.")
        self.ks = default_ks(k) if ks is None else sorted({int(x) for x in ks if 0 < int(x) <= k})
        if not self.ks:
            raise ValueError(f"ks must hold at least one value between 1 and k={k}.")
        self.dataset, self.methods, self.k, self.seeds, self.test = dataset, methods, k, seeds, test
        self.eval_model, self.eval_epochs, self.max_seconds = eval_model, eval_epochs, max_seconds
        self.random_state, self.device = random_state, device
        self.options = {m: dict(v) for m, v in (method_options or {}).items()}
        if "greedy" in methods:
            greedy = self.options.setdefault("greedy", {})
            if dataset.n_groups > GREEDY_MAX_FEATURES:
                greedy.setdefault("max_candidates", GREEDY_SHORTLIST)
            if greedy.get("model", "logistic") == "logistic" and greedy.get("lookahead", 1) == 1:
                greedy.setdefault("refits_per_step", GREEDY_REFITS_PER_STEP)
        self.traces: dict[str, SelectionTrace] = {}
        self.errors: dict[str, str] = {}
        self.frames: list[pd.DataFrame] = []
        self.fit_cache: dict = {}  # identical feature subsets are retrained once across methods
        self.explanation: ShapExplanation | None = None

    def plan(self, reuse_sa: bool) -> list[tuple[str, float, float]]:
        """(method, estimated selection seconds, estimated retraining seconds) in running order."""
        retrain = estimate_retraining_seconds(len(self.ks) * len(self.seeds), self.dataset.n_samples,
                                              self.eval_epochs, self.eval_model, max(self.ks))
        return [(m, estimate_seconds(self.dataset, m, self.k, self.options.get(m), reused=m == "sa" and reuse_sa),
                 retrain) for m in self.methods]

    def select(self, method: str, reuse: SelectionTrace | None, callback: Callback) -> None:
        """Run (or reuse) one method; a ValueError (bad settings for this data) is kept in ``errors``."""
        kwargs = {"random_state": self.random_state, "device": self.device}
        try:
            if reuse is not None:
                trace = SelectionTrace.from_dict(reuse.to_dict())
                trace.settings["reused"] = True
            elif method == "shap":
                from seqattn.selectors.shap_rank import shap_explain

                self.explanation = shap_explain(self.dataset, callback=callback, **kwargs,
                                                **self.options.get("shap", {}))
                trace = run_selector(self.dataset, "shap", self.k, explanation=self.explanation, **kwargs)
            else:
                trace = run_selector(self.dataset, method, self.k, callback=callback, **kwargs,
                                     **self.options.get(method, {}))
            self.traces[method] = trace
        except ValueError as exc:
            self.errors[method] = str(exc)

    def evaluate(self, method: str, callback: Callback) -> None:
        """Retrain fresh models on the method's first k picks for every k (accuracy_vs_k)."""
        self.frames.append(accuracy_vs_k(self.dataset, {method: self.traces[method]}, self.ks, seeds=self.seeds,
                                         model=self.eval_model, epochs=self.eval_epochs, test=self.test,
                                         device=self.device, callback=callback, cache=self.fit_cache))

    def assemble(self, stop_reason: str, running: bool = False) -> Comparison:
        """The :class:`Comparison` of what has finished so far."""
        columns = ["method", "k", "seed", "metric", "value", "features"]
        accuracy = pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame(columns=columns)
        split = self.frames[0].attrs.get("split", "") if self.frames else ""
        accuracy.attrs.update(split=split, model=self.eval_model, epochs=self.eval_epochs)
        settings = {"methods": list(self.methods), "seeds": list(self.seeds), "eval_model": self.eval_model,
                    "eval_epochs": self.eval_epochs, "random_state": self.random_state, "device": self.device,
                    "method_options": self.options, "split": split, "stopped": stop_reason or None,
                    "max_seconds": self.max_seconds, "running": running}
        dataset = self.dataset
        return Comparison(
            dataset=dataset.name, k=self.k, ks=self.ks, traces=dict(self.traces), accuracy=accuracy,
            shap=self.explanation, errors=dict(self.errors), settings=settings,
            informative=None if dataset.informative is None else [int(i) for i in dataset.informative],
            xor_pairs=[list(map(int, p)) for p in dataset.extra.get("xor_pairs", [])],
        )


def duration_text(seconds: float) -> str:
    """"12 s" or "2.5 min" for a time estimate."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


# --------------------------------------------------------------------------- one step, three views
def residual_correlations(dataset: Dataset, selected: Sequence[int]) -> np.ndarray:
    """OMP's score of every feature given ``selected``: ‖X_iᵀ R‖ with unit-norm centred columns.

    R is the least-squares residual of the (one-hot, centred) target on the
    selected columns — the same quantity ``seqattn.omp`` maximises, but for
    *any* selected set, so it can be read at SA's picks. Selected: NaN.
    """
    X = dataset.X.toarray() if sp.issparse(dataset.X) else np.asarray(dataset.X)
    A = X.astype(np.float64) - X.mean(axis=0)
    norms = np.linalg.norm(A, axis=0)
    A = A / np.where(norms > 1e-12, norms, 1.0)
    if dataset.task == "classification":
        Y = np.eye(dataset.n_classes)[dataset.y]
    else:
        Y = dataset.y.astype(np.float64)[:, None]
    Y = Y - Y.mean(axis=0)
    chosen = list(selected)
    if chosen:
        coef, *_ = np.linalg.lstsq(A[:, chosen], Y, rcond=None)
        Y = Y - A[:, chosen] @ coef
    scores = np.linalg.norm(A.T @ Y, axis=1)
    scores[norms <= 1e-12] = 0.0
    scores[chosen] = np.nan
    return scores


def step_scores(
    dataset: Dataset,
    sa_trace: SelectionTrace,
    step: int,
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    random_state: int = 0,
) -> pd.DataFrame:
    """At SA's step ``step`` (0-based): SA attention, OMP correlation, true greedy gain per candidate.

    All three are computed for the same already-selected set (SA's picks
    before this step), so they are directly comparable. Candidates beyond
    ``max_candidates`` are shortlisted as in :func:`candidate_gains`.
    """
    if not 0 <= step < sa_trace.k:
        raise ValueError(f"step must be between 0 and {sa_trace.k - 1}, got {step}.")
    if sa_trace.groups is not None or dataset.groups is not None:
        raise ValueError("step_scores compares single columns; it does not apply to feature groups.")
    before = picks(sa_trace, step)
    gains = candidate_gains(dataset, before, max_candidates=max_candidates, random_state=random_state)
    features = gains["feature"].to_numpy(dtype=int)
    omp = residual_correlations(dataset, before)
    frame = pd.DataFrame({
        "feature": features,
        "name": gains["name"].to_numpy(),
        "sa_attention": sa_trace.steps[step].scores[features],
        "omp_correlation": omp[features],
        "greedy_gain": gains["gain"].to_numpy(dtype=float),
        "sa_pick": features == sa_trace.steps[step].feature,
    })
    frame.attrs.update(note=gains.attrs.get("note", ""), step=step, selected_before=before)
    return frame
