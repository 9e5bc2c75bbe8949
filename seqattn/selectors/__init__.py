"""Selection methods: one explicit registry, one call (``run_method``) for the CLI, pages and Compare.

Every method takes a :class:`~seqattn.data.Dataset` and ``k`` and returns a
:class:`~seqattn.trace.SelectionTrace`, so downstream code treats all alike.
:data:`REGISTRY` is the single owner of method names, labels and descriptions;
each entry names the function that runs it, imported on first use (so
``import seqattn`` loads neither torch nor shap). A method's options are the
keyword-only parameters of its runner (for SA: the selector's parameters),
declared once there and checked here before anything runs: an unknown option
is a ``ValueError`` naming the accepted ones, for every method.
"""
from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seqattn.data import DataError, Dataset
from seqattn.selectors.defaults import DEFAULT_K, default_k
from seqattn.trace import SelectionTrace

Runner = Callable[..., SelectionTrace]

#: Keyword arguments every runner takes; not method options.
COMMON_ARGUMENTS = ("device", "random_state", "callback")


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: ``runner`` is ``"module:function"`` with signature
    ``run(dataset, k, *, device, random_state, callback, **declared options)``."""

    name: str
    label: str
    runner: str
    description: str

    def load(self) -> Runner:
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(module), function)

    def options(self) -> dict[str, Any]:
        """Option name -> default, read from the declaration (the runner's keyword-only parameters)."""
        if self.name == "sa":  # SA's options are its estimator parameters (scikit-learn get_params)
            from seqattn.selectors.sequential_attention import SequentialAttentionSelector

            params = SequentialAttentionSelector().get_params()
            return {n: v for n, v in params.items() if n not in ("n_features_to_select", *COMMON_ARGUMENTS)}
        params = inspect.signature(self.load()).parameters
        return {n: p.default for n, p in params.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in COMMON_ARGUMENTS}


_SA = "seqattn.selectors.sequential_attention:run_sa"
REGISTRY: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("sa", "Sequential Attention", _SA,
               "Greedy forward selection inside one training run, via attention over unselected features."),
    MethodSpec("omp", "OMP", "seqattn.selectors.omp:run_omp",
               "Orthogonal Matching Pursuit: pick the feature most correlated with the residual, refit."),
    MethodSpec("shap", "SHAP", "seqattn.selectors.shap_rank:shap_select",
               "Train the dense MLP once; rank features by mean |SHAP value| on held-out rows."),
    MethodSpec("greedy", "Greedy (true gains)", "seqattn.selectors.greedy:greedy_select",
               "Forward selection: refit a cheap model on S ∪ {i} for every candidate, add the one that lowers "
               "validation loss most."),
    MethodSpec("mutual_info", "Mutual information", "seqattn.selectors.filters:mutual_info_select",
               "Univariate filter: estimated mutual information with the target."),
    MethodSpec("anova", "ANOVA F", "seqattn.selectors.filters:anova_select",
               "Univariate filter: ANOVA F statistic (f_regression for regression)."),
    MethodSpec("variance", "Variance", "seqattn.selectors.filters:variance_select",
               "Target-blind filter: the column's variance."),
    MethodSpec("ttest", "t-test markers", "seqattn.selectors.ttest:run_ttest",
               "Per-cell-type Welch t-test (type vs rest), types take turns: the classic marker-gene ranking. "
               "Classification only."),
)}

#: name -> label, derived from the registry (for tables, legends and pickers).
METHOD_LABELS: dict[str, str] = {name: spec.label for name, spec in REGISTRY.items()}


def available_methods() -> dict[str, MethodSpec]:
    """Every registered method, in display order."""
    return dict(REGISTRY)


def method_label(name: str) -> str:
    """The display label of a registered method (the name itself for anything else, e.g. 'sa (2)')."""
    return METHOD_LABELS.get(name, name)


def get_method(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise ValueError(f"Unknown method {name!r}; available: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def check_options(method: str, options: dict[str, Any]) -> None:
    """Unknown option names are a ValueError naming the accepted ones (from the method's declaration)."""
    accepted = get_method(method).options()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"Unknown option(s) for {method}: {', '.join(unknown)}; "
                         f"accepted: {', '.join(sorted(accepted))}.")


def run_method(dataset: Dataset, method: str, k: int, *, device: str = "auto", random_state: int | None = 0,
               callback=None, **options: Any) -> SelectionTrace:
    """Run ``method`` on ``dataset`` for ``k`` picks; wall time goes into ``trace.settings``.

    Each method checks ``k`` once, against the data and its own pins and bans
    (:func:`seqattn.data.validate_k`); :func:`default_k` is the default to offer.
    """
    spec = get_method(method)
    check_options(method, options)
    if dataset.backed and method != "sa":
        raise DataError(f"{spec.label} needs the matrix in memory; only SA streams a backed "
                        "(on-disk) data set. Load it without backed mode, or prefilter genes first.")
    start = time.perf_counter()
    trace = spec.load()(dataset, k, device=device, random_state=random_state, callback=callback, **options)
    trace.settings.setdefault("wall_seconds", time.perf_counter() - start)
    trace.dataset = trace.dataset or dataset.name
    return trace
