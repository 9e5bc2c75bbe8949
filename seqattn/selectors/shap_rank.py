"""SHAP ranking: train the dense MLP once, rank features by mean |SHAP value| on held-out rows.

``shap.DeepExplainer`` is tried first, ``shap.GradientExplainer`` is the
fallback when Deep fails; :class:`ShapExplanation` keeps the values for the
Compare page's summary plot.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from seqattn.data import Dataset, split_indices, standardise
from seqattn.device import torch_threads
from seqattn.models import TrainConfig, train_mlp
from seqattn.scoring import VALIDATION_FRACTION
from seqattn.selectors.ranking import Callback, ranking_trace
from seqattn.trace import SelectionTrace


@dataclass
class ShapExplanation:
    """SHAP values of the dense model on a held-out sample.

    ``values`` has shape (n_samples, n_features, n_outputs) (one output for
    regression); ``data`` holds the explained rows (raw feature values) for
    colouring a beeswarm. ``explainer`` is ``"deep"`` or ``"gradient"``.
    """

    values: np.ndarray
    data: np.ndarray
    feature_names: list[str]
    output_names: list[str]
    explainer: str
    fallback_reason: str
    settings: dict[str, Any]
    labels: np.ndarray | None = None  # targets of the explained rows (class codes or values)

    @property
    def importance(self) -> np.ndarray:
        """Mean |SHAP value| per feature, averaged over samples and outputs."""
        return np.abs(self.values).mean(axis=(0, 2))

    def importance_by_output(self) -> np.ndarray:
        """(n_features, n_outputs) mean |SHAP value| per output (for a stacked bar chart)."""
        return np.abs(self.values).mean(axis=0)


def _explainable(model):
    """seqattn's MLP calls ``torch.relu`` functionally, which DeepExplainer cannot see
    (its additivity check then fails); the same weights as an ``nn.Sequential`` of
    modules are fully supported."""
    from torch import nn

    from seqattn.models import MLP

    if isinstance(model, MLP):
        return nn.Sequential(model.norm, model.hidden, nn.ReLU(), model.out).eval()
    return model.eval()


#: Explained rows per SHAP call: the values are computed chunk by chunk so a long explanation reports
#: progress (Deep's values are per row, so the chunks give the same values as one call).
EXPLAIN_CHUNK_ROWS = 10


def explain_model(model, background: np.ndarray, samples: np.ndarray, explainer: str = "auto",
                  random_state: int = 0, gradient_samples: int = 50,
                  progress: Callable[[int, int], Any] | None = None) -> tuple[np.ndarray, str, str]:
    """SHAP values (n, d, outputs) of a torch model; returns (values, explainer used, why it fell back).

    ``explainer="auto"`` tries ``shap.DeepExplainer`` (exact for supported
    layers, with its additivity check on) and falls back to
    ``shap.GradientExplainer`` (expected gradients) when Deep raises — as it
    does for ops it does not support. ``gradient_samples`` is the number of
    background/interpolation draws per explained row for the fallback, seeded
    per chunk from ``random_state``. ``progress(rows_done, rows)`` follows the
    chunks of ``EXPLAIN_CHUNK_ROWS`` rows.
    """
    import torch

    if explainer not in ("auto", "deep", "gradient"):
        raise ValueError(f"explainer must be 'auto', 'deep' or 'gradient', got {explainer!r}.")
    model = _explainable(model)
    device = next(model.parameters()).device
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    xs = torch.tensor(samples, dtype=torch.float32, device=device)
    with torch_threads(1, device):
        return _explain(model, bg, xs, explainer, random_state, gradient_samples, progress)


def _in_chunks(explain: Callable[[Any, int], Any], xs, progress: Callable[[int, int], Any] | None) -> np.ndarray:
    """``explain(rows, chunk_index)`` over chunks of ``xs``, the values stacked along the rows."""
    parts = []
    for index, start in enumerate(range(0, len(xs), EXPLAIN_CHUNK_ROWS)):
        values = np.asarray(explain(xs[start:start + EXPLAIN_CHUNK_ROWS], index), dtype=np.float64)
        parts.append(values if values.ndim == 3 else values[:, :, None])  # single output: no output axis
        if progress is not None:
            progress(min(start + EXPLAIN_CHUNK_ROWS, len(xs)), len(xs))
    return np.concatenate(parts, axis=0)


def _explain(model, bg, xs, explainer: str, random_state: int, gradient_samples: int,
             progress: Callable[[int, int], Any] | None) -> tuple[np.ndarray, str, str]:
    import shap
    import torch

    reason = ""
    values = None
    used = "gradient"
    if explainer in ("auto", "deep"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                deep = shap.DeepExplainer(model, bg)
                values = _in_chunks(lambda rows, _: deep.shap_values(rows, check_additivity=True), xs, progress)
            used = "deep"
        except Exception as exc:  # noqa: BLE001 - any Deep failure means: use the fallback
            if explainer == "deep":
                raise
            reason = f"DeepExplainer failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    if values is None:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(random_state)
            gradient = shap.GradientExplainer(model, bg)
            values = _in_chunks(lambda rows, index: gradient.shap_values(rows, nsamples=gradient_samples,
                                                                         rseed=random_state + index), xs, progress)
    return values, used, reason


def shap_explain(
    dataset: Dataset,
    *,
    n_background: int = 50,
    n_explain: int = 100,
    epochs: int = TrainConfig.epochs,
    hidden: int = TrainConfig.hidden,
    explainer: str = "auto",
    model: Any = None,
    device: str = "auto",
    random_state: int = 0,
    callback: Callback | None = None,
) -> ShapExplanation:
    """Train the dense MLP once on the training split and explain a held-out sample.

    The background (reference distribution) is ``n_background`` training rows;
    ``n_explain`` validation rows are explained. Both drive the cost: Deep is
    roughly O(n_background × n_explain) forward/backward passes. ``model`` may
    be a ready torch module that takes standardised inputs (training is skipped).
    """
    if n_background < 1 or n_explain < 1:
        raise ValueError("n_background and n_explain must be at least 1.")
    started = time.perf_counter()
    strat = dataset.y if dataset.task == "classification" else None
    train, val, _ = split_indices(dataset.n_samples, strat, VALIDATION_FRACTION, 0.0, random_state)
    rng = np.random.default_rng(random_state)
    X_train = dataset.X[train]
    X_train = (X_train.toarray() if sp.issparse(X_train) else np.asarray(X_train)).astype(np.float64)
    bg_rows = rng.choice(len(train), min(n_background, len(train)), replace=False)
    ex_rows = val[np.sort(rng.choice(len(val), min(n_explain, len(val)), replace=False))]
    explained = dataset.X[ex_rows]
    explained = (explained.toarray() if sp.issparse(explained) else np.asarray(explained)).astype(np.float64)
    train_std, explained_std = standardise(X_train, explained)
    n_out = dataset.n_classes if dataset.task == "classification" else 1
    report = _ShapProgress(callback)
    given_model = model
    if model is None:
        report.training(0, 1)
        model = train_mlp(train_std, dataset.y[train], dataset.task, n_out, seed=random_state,
                          config=TrainConfig(epochs=epochs, hidden=hidden), device=device, progress=report.training)
    report.explaining(0, len(ex_rows))
    values, used, reason = explain_model(model, train_std[bg_rows], explained_std, explainer=explainer,
                                         random_state=random_state, progress=report.explaining)
    if callback is not None:
        callback(report.UNITS, report.UNITS, f"SHAP done ({used} explainer)")
    outputs = (list(dataset.class_names or [f"class {c}" for c in range(n_out)])
               if dataset.task == "classification" else ["target"])
    settings = {"explainer": used, "explainer_requested": explainer, "fallback_reason": reason,
                "n_background": len(bg_rows), "n_explain": len(ex_rows), "epochs": epochs, "hidden": hidden,
                "random_state": random_state, "model": "mlp" if given_model is None else "given",
                "seconds": time.perf_counter() - started}
    return ShapExplanation(values=values, data=explained, feature_names=list(dataset.feature_names),
                           output_names=outputs[:values.shape[2]], explainer=used, fallback_reason=reason,
                           settings=settings, labels=dataset.y[ex_rows])


class _ShapProgress:
    """shap_explain's progress: training the dense model (the first ``TRAINING_SHARE``), then the SHAP values
    chunk by chunk, as ``callback(done, UNITS, message)``. A callback's stop request is not honoured mid-way:
    an explanation is all or nothing."""

    UNITS = 100
    TRAINING_SHARE = 0.4  # digits, 2 cores: training 6 s, explaining 8 s

    def __init__(self, callback: Callback | None):
        self.callback = callback

    def training(self, step: int, total: int) -> None:
        if self.callback is not None:
            self.callback(int(self.UNITS * self.TRAINING_SHARE * step / max(total, 1)), self.UNITS,
                          f"training the dense model ({step}/{total} steps)" if step else "training the dense model")

    def explaining(self, rows: int, total: int) -> None:
        if self.callback is not None:
            share = self.TRAINING_SHARE + (1 - self.TRAINING_SHARE) * rows / max(total, 1)
            self.callback(int(self.UNITS * share), self.UNITS, f"computing SHAP values ({rows}/{total} rows)")


def shap_select(dataset: Dataset, k: int, *, random_state: int = 0, device: str = "auto",
                callback: Callback | None = None, n_background: int = 50, n_explain: int = 100,
                epochs: int = TrainConfig.epochs, explainer: str = "auto", explanation: ShapExplanation | None = None,
                pinned: Sequence[int] = (), banned: Sequence[int] = ()) -> SelectionTrace:
    """Rank features by mean |SHAP value| of the dense MLP (see :func:`shap_explain`).

    Pass a precomputed ``explanation`` to reuse it (the Compare page caches one
    for the summary plot). ``trace.settings["explainer"]`` says whether Deep or
    the Gradient fallback produced the values.
    """
    started = time.perf_counter()
    reused_seconds = 0.0
    if explanation is None:
        explanation = shap_explain(dataset, n_background=n_background, n_explain=n_explain, epochs=epochs,
                                   explainer=explainer, device=device, random_state=random_state,
                                   callback=callback)
    elif len(explanation.feature_names) != dataset.n_features:
        raise ValueError("The SHAP explanation was computed on a data set with different columns.")
    else:  # computed earlier: count its time, the ranking is nothing without it
        reused_seconds = float(explanation.settings.get("seconds", 0.0))
    settings = {"k": k, "score": "mean |SHAP value| over held-out rows and outputs", **explanation.settings}
    trace = ranking_trace("shap", dataset, explanation.importance, k, settings=settings,
                          random_state=random_state, started=started, pinned=pinned, banned=banned,
                          aggregate="sum")  # a feature group's SHAP: the sum of its columns' (additive)
    from seqattn.device import describe_device, resolve_device

    trace.device = describe_device(resolve_device(device))
    trace.settings["wall_seconds"] += reused_seconds
    return trace
