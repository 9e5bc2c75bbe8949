"""Registry of selection methods: one call, ``run_method``, for the CLI and every page.

Each method takes a :class:`~seqattn.data.Dataset` and ``k`` and returns a
:class:`~seqattn.trace.SelectionTrace`, so downstream code treats all alike.
"""
from __future__ import annotations

import importlib
import numbers
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seqattn.data import DataError, Dataset
from seqattn.trace import SelectionTrace

Runner = Callable[..., SelectionTrace]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    label: str
    run: Runner  # run(dataset, k, *, device, random_state, callback, **options)
    description: str


def _run_sa(dataset: Dataset, k: int, *, device: str = "auto", random_state: int | None = 0,
            callback=None, **options: Any) -> SelectionTrace:
    from seqattn.sequential_attention import SequentialAttentionSelector

    selector = SequentialAttentionSelector(k, device=device, random_state=random_state, **options)
    return selector.fit_dataset(dataset, callback=callback).trace_


def _run_omp(dataset: Dataset, k: int, *, device: str = "auto", random_state: int | None = 0,
             callback=None, **options: Any) -> SelectionTrace:
    """OMP with its validation curve on (the app and CLI show it); ``validation=False`` skips the refits."""
    from seqattn.omp import omp_select

    options.setdefault("validation", True)
    return omp_select(dataset.X, dataset.y, k, dataset.feature_names, task=dataset.task, device=device,
                      random_state=random_state, dataset_name=dataset.name, callback=callback, **options)


METHODS: dict[str, MethodSpec] = {
    "sa": MethodSpec("sa", "Sequential Attention", _run_sa,
                     "Greedy forward selection inside one training run, via attention over unselected features."),
    "omp": MethodSpec("omp", "OMP", _run_omp,
                      "Orthogonal Matching Pursuit: pick the feature most correlated with the residual, refit."),
}


def register(spec: MethodSpec) -> None:
    """Add a method to the registry (baselines register themselves on import)."""
    METHODS[spec.name] = spec


def _load_optional_methods() -> None:
    """Import modules that register more methods; missing optional deps are not fatal."""
    for module in ("seqattn.baselines", "seqattn.genomics"):  # shap/greedy/filters; ttest markers
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def available_methods() -> dict[str, MethodSpec]:
    _load_optional_methods()
    return dict(METHODS)


def _check_options(spec: MethodSpec, options: dict[str, Any]) -> None:
    """Unknown option names are a ValueError naming the accepted ones, not a TypeError deep inside."""
    if not options:
        return
    if spec.name == "sa":
        from seqattn.sequential_attention import SequentialAttentionSelector

        accepted = set(SequentialAttentionSelector().get_params())
    else:
        params = inspect.signature(spec.run).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return  # the runner forwards options further; it validates them itself
        accepted = {name for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"Unknown option(s) for {spec.name}: {', '.join(unknown)}; "
                         f"accepted: {', '.join(sorted(accepted))}.")


def run_method(dataset: Dataset, method: str, k: int, *, device: str = "auto", random_state: int | None = 0,
               callback=None, **options: Any) -> SelectionTrace:
    """Run ``method`` on ``dataset`` for ``k`` picks; wall time goes into ``trace.settings``."""
    methods = available_methods()
    if method not in methods:
        raise ValueError(f"Unknown method {method!r}; available: {', '.join(methods)}.")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:  # numpy ints are fine
        raise DataError(f"k must be a positive whole number, got {k!r}.")
    k = int(k)
    if k > dataset.n_features:
        raise DataError(f"k={k} is larger than the number of features ({dataset.n_features}); "
                        f"choose k ≤ {dataset.n_features}.")
    _check_options(methods[method], options)
    start = time.perf_counter()
    try:
        trace = methods[method].run(dataset, k, device=device, random_state=random_state, callback=callback,
                                    **options)
    except TypeError as exc:  # an option a forwarding runner passed on to a function that lacks it
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ValueError(f"Unknown option for {method}: {exc}") from exc
    trace.settings.setdefault("wall_seconds", time.perf_counter() - start)
    trace.dataset = trace.dataset or dataset.name
    return trace
