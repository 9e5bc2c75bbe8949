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

import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import Dataset
from seqattn.evaluation.agreement import overlap_matrix, rank_correlation_matrix, recovery_table
from seqattn.evaluation.retrain import accuracy_vs_k, summarize_accuracy
from seqattn.scoring import DEFAULT_MAX_CANDIDATES, candidate_gains
from seqattn.selectors import METHOD_LABELS, REGISTRY, run_method
from seqattn.selectors.greedy import GREEDY_MAX_FEATURES
from seqattn.trace import SelectionTrace, picks

if TYPE_CHECKING:
    from seqattn.selectors.shap_rank import ShapExplanation

Callback = Callable[[int, int, str], Any]

ALL_METHODS = tuple(REGISTRY)  # every registered method can be compared, ttest included
#: Preselected on the Compare page and in the benchmark: ttest is a classification-only marker-gene method.
DEFAULT_METHODS = tuple(m for m in ALL_METHODS if m != "ttest")
GREEDY_SHORTLIST = 50  # candidates kept for greedy on wide data (said in its trace settings)


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


@dataclass
class Comparison:
    """Everything the Compare page shows, computed once."""

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

    def summary(self) -> pd.DataFrame:
        """Mean ± std of the test metric per (method, k)."""
        return summarize_accuracy(self.accuracy)

    def accuracy_table(self) -> pd.DataFrame:
        """Mean ± std per method (rows, first column ``method``) and k (columns ``k = 1`` …): the table
        under the accuracy chart, with its headers spelled out."""
        summary = self.summary()
        if summary.empty:
            return pd.DataFrame(columns=["method"])
        metric = str(self.accuracy["metric"].iloc[0]) if "metric" in self.accuracy else "metric"
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

    # ---------------------------------------------------------------- downloads
    def to_json(self) -> str:
        """Traces, accuracy rows and settings as one JSON document."""
        payload = {
            "dataset": self.dataset, "k": self.k, "ks": self.ks, "settings": self.settings,
            "errors": self.errors,
            "traces": {m: t.to_dict() for m, t in self.traces.items()},
            "accuracy": json.loads(self.accuracy.to_json(orient="records")),
        }
        return json.dumps(payload, allow_nan=False, default=str)

    def summary_csv(self) -> str:
        buffer = io.StringIO()
        self.summary().to_csv(buffer, index=False)
        return buffer.getvalue()

    def rankings_csv(self) -> str:
        return self.rankings().to_csv()


def compare_methods(
    dataset: Dataset,
    methods: Sequence[str],
    k: int,
    *,
    ks: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    eval_model: str = "mlp",
    eval_epochs: int = 40,
    random_state: int = 0,
    device: str = "auto",
    sa_trace: SelectionTrace | None = None,
    method_options: dict[str, dict[str, Any]] | None = None,
    test: Dataset | None = None,
    callback: Callback | None = None,
    max_seconds: float | None = None,
) -> Comparison:
    """Run ``methods`` for ``k`` picks each, then retrain on their top-k for every k in ``ks``.

    ``sa_trace`` (e.g. from the Sequential Attention page) is reused instead of
    running SA again when it was computed on the same columns. A method that
    raises ``ValueError`` (bad settings for this data) is skipped and its
    message kept in ``errors``. Greedy on more than 100 features shortlists
    50 candidates by ANOVA F (said in its trace). ``method_options`` maps a
    method to extra keyword arguments. A ``callback`` returning ``True``, or
    passing ``max_seconds``, stops between methods / retraining fits: what is
    finished is kept and ``settings["stopped"]`` says why.
    """
    unknown = [m for m in methods if m not in METHOD_LABELS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {', '.join(ALL_METHODS)}.")
    if not methods:
        raise ValueError("Choose at least one method to compare.")
    ks = default_ks(k) if ks is None else sorted({int(x) for x in ks if 0 < int(x) <= k})
    if not ks:
        raise ValueError(f"ks must hold at least one value between 1 and k={k}.")
    options = {m: dict(v) for m, v in (method_options or {}).items()}
    if "greedy" in methods and dataset.n_groups > GREEDY_MAX_FEATURES:
        options.setdefault("greedy", {}).setdefault("max_candidates", GREEDY_SHORTLIST)

    n_eval = len(seeds) * len(ks) * len(methods)
    total = len(methods) + n_eval
    done = 0
    started = time.perf_counter()
    stop_reason = ""

    def report(message: str) -> bool:
        """Progress; True when the caller asked to stop or the time budget is spent."""
        nonlocal stop_reason
        if callback is not None and callback(done, total, message):
            stop_reason = stop_reason or "stopped"
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            stop_reason = stop_reason or "time limit"
        return bool(stop_reason)

    traces: dict[str, SelectionTrace] = {}
    errors: dict[str, str] = {}
    explanation = None
    for method in methods:
        if report(f"running {METHOD_LABELS[method]}…"):
            break
        try:
            if method == "sa" and sa_trace is not None and sa_trace.n_features == dataset.n_groups:
                trace = SelectionTrace.from_dict(sa_trace.to_dict())
                trace.settings["reused"] = True
            elif method == "shap":
                from seqattn.selectors.shap_rank import shap_explain

                shap_opts = options.get("shap", {})
                explanation = shap_explain(dataset, device=device, random_state=random_state, **shap_opts)
                trace = run_selector(dataset, "shap", k, random_state=random_state, device=device,
                                     explanation=explanation)
            else:
                trace = run_selector(dataset, method, k, random_state=random_state, device=device,
                                     **options.get(method, {}))
            traces[method] = trace
        except ValueError as exc:
            errors[method] = str(exc)
        done += 1
        report(f"{METHOD_LABELS[method]} done")

    def eval_progress(step: int, _total: int, message: str) -> bool:
        nonlocal done
        done = len(methods) + step
        return report(f"retraining: {message}")

    empty = pd.DataFrame(columns=["method", "k", "seed", "metric", "value", "features"])
    accuracy = accuracy_vs_k(dataset, traces, ks, seeds=seeds, model=eval_model, epochs=eval_epochs,
                             test=test, device=device, callback=eval_progress) if traces and not stop_reason \
        else empty
    if callback is not None:
        callback(total, total, "done")
    settings = {"methods": list(methods), "seeds": list(seeds), "eval_model": eval_model,
                "eval_epochs": eval_epochs, "random_state": random_state, "device": device,
                "method_options": options, "split": accuracy.attrs.get("split", ""),
                "stopped": stop_reason or None, "max_seconds": max_seconds}
    return Comparison(
        dataset=dataset.name, k=k, ks=ks, traces=traces, accuracy=accuracy, shap=explanation, errors=errors,
        settings=settings,
        informative=None if dataset.informative is None else [int(i) for i in dataset.informative],
        xor_pairs=[list(map(int, p)) for p in dataset.extra.get("xor_pairs", [])],
    )


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
