"""One call from a preset to the whole comparison: train or load the model, prune with every method, time it.

:func:`structured_pruning_study` is what the Structured pruning page, the
notebook and ``benchmarks/bench_structured.py`` call: it loads the cached
dense model (training it first, with progress, if this preset, recipe and
corpus were never trained here), runs SA++ and the baselines at each
fraction and seed (:func:`structured.prune_transformer`), and times the dense model
against the physically pruned ones and an unstructured model of the same
sparsity (:func:`structured_latency.measure_structured_latency`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from seqattn.device import resolve_device, torch_threads
from seqattn.sparsity.block_pruning import Phase, plan_phases
from seqattn.sparsity.latency import CLOCKS, LatencyReport
from seqattn.sparsity.structured import (
    DENSE_REFERENCE,
    METHODS,
    DensePrefix,
    MethodRun,
    PruningSettings,
    baseline_dense_steps,
    prune_transformer,
    train_dense_prefix,
    unit_layouts,
)
from seqattn.sparsity.structured_latency import measure_structured_latency
from seqattn.sparsity.transformer import PRESETS, ModelPreset, TrainedModel, evaluate_loss, load_or_train

Callback = Callable[[int, int, str], Any]


class _Stop(Exception):
    """The progress callback asked to stop."""


@dataclass
class StructuredPruningResult:
    """Every run's quality and kept units, the dense reference, and the latency reports."""

    settings: dict[str, Any]
    model: dict[str, Any]  # preset, config, corpus, training record, from_cache
    dense_val_loss: float
    dense_parameters: int
    unit_names: dict[str, list[str]]
    grid: dict[str, tuple[int, int]]  # kind -> (layers, units per layer) for the grid views; embed: (1, n)
    phases: list[Phase]
    runs: list[MethodRun] = field(default_factory=list)
    latency: list[LatencyReport] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False

    # ------------------------------------------------------------------ lookups
    def run(self, method: str, fraction: float, seed: int | None = None) -> MethodRun:
        for r in self.runs:
            if r.method == method and math.isclose(r.fraction, fraction) and (seed is None or r.seed == seed):
                return r
        raise KeyError(f"No {method} run at fraction {fraction}" + (f", seed {seed}" if seed is not None else ""))

    @property
    def fractions(self) -> list[float]:
        return sorted({r.fraction for r in self.runs if r.method != DENSE_REFERENCE})

    @property
    def methods(self) -> list[str]:
        return [m for m in METHODS if any(r.method == m for r in self.runs)]

    def latency_label(self, method: str, fraction: float) -> str:
        return f"{method} {fraction:.0%}"

    def prefill_ratio(self, method: str, fraction: float) -> float:
        """Median prefill time of this pruned model / dense at the longest timed length (NaN if not timed)."""
        reports = [r for r in self.latency if r.kind == "prefill"]
        if not reports:
            return float("nan")
        report = max(reports, key=lambda r: r.config["seq_len"])
        name = self.latency_label(method, fraction)
        return next((t.ratio_quantile(0.5) for t in report.timings if t.name == name), float("nan"))

    # ------------------------------------------------------------------ tables
    def table(self) -> list[dict[str, Any]]:
        """One row per run (method, fraction, seed)."""
        rows = []
        for r in self.runs:
            row = r.row(self.dense_val_loss)
            row["prefill ratio (longest)"] = round(self.prefill_ratio(r.method, r.fraction), 3)
            rows.append(row)
        return rows

    def summary(self, loss: Callable[[MethodRun], float | None] | None = None) -> list[dict[str, Any]]:
        """Validation loss per method and fraction: mean, sd and range over seeds, beside the dense figures.

        ``loss(run)`` summarises another figure of each run instead (``None`` where a run has none), e.g. the
        benchmark's one-shot loss of its mask; the dense model as trained keeps its own loss either way.
        """
        loss = loss or (lambda run: run.val_loss)
        rows = [{"method": "dense (as trained)", "fraction removed": 0.0, "seeds": 1,
                 "val loss mean": round(self.dense_val_loss, 4), "val loss sd": 0.0,
                 "val loss min": round(self.dense_val_loss, 4), "val loss max": round(self.dense_val_loss, 4),
                 "prefill ratio (longest)": 1.0}]  # the baseline of every ratio
        groups = [(DENSE_REFERENCE, 0.0)] + [(m, f) for f in self.fractions for m in self.methods]
        for method, fraction in groups:
            values = [loss(r) for r in self.runs if r.method == method and math.isclose(r.fraction, fraction)]
            losses = [v for v in values if v is not None]
            if losses:
                rows.append({"method": "dense + same steps" if method == DENSE_REFERENCE else method,
                             "fraction removed": fraction, "seeds": len(losses),
                             "val loss mean": round(float(np.mean(losses)), 4),
                             "val loss sd": round(float(np.std(losses)), 4),
                             "val loss min": round(float(np.min(losses)), 4),
                             "val loss max": round(float(np.max(losses)), 4),
                             # the dense reference has the dense shape; it is not timed separately
                             "prefill ratio (longest)": None if method == DENSE_REFERENCE
                             else round(self.prefill_ratio(method, fraction), 3)})
        return rows

    def survivors(self, method: str, fraction: float, kind: str = "heads", seed: int | None = None) -> np.ndarray:
        """Kept units on the (layer × unit) grid as 0/1."""
        layers, per = self.grid[kind]
        return self.run(method, fraction, seed).masks[kind].reshape(layers, per).astype(int)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, floats) for downloads."""
        return {
            "settings": self.settings, "model": self.model, "dense_val_loss": self.dense_val_loss,
            "dense_parameters": self.dense_parameters, "unit_names": self.unit_names,
            "phases": [vars(p) for p in self.phases], "stopped_early": self.stopped_early, "seconds": self.seconds,
            "runs": [{**r.row(self.dense_val_loss), "pruned_config": r.pruned_config.to_dict(),
                      "masks": {k: v.astype(int).tolist() for k, v in r.masks.items()},
                      "scores": {k: np.round(v, 6).tolist() for k, v in r.scores.items()},
                      "snapshots": [{"label": s.label, "phase": s.phase, "step": s.step, "target": s.target,
                                     "val_loss": s.val_loss,
                                     "attention": {k: np.round(v, 5).tolist() for k, v in s.attention.items()},
                                     "mask": {k: v.astype(int).tolist() for k, v in s.mask.items()}}
                                    for s in r.snapshots]} for r in self.runs],
            "latency": [r.to_dict() for r in self.latency],
        }


def _grid(config, layouts) -> dict[str, tuple[int, int]]:
    out = {}
    for kind, layout in layouts.items():
        out[kind] = (1, layout.n_units) if kind in ("embed", "layers") else (config.n_layer,
                                                                             layout.n_units // config.n_layer)
    return out


def structured_pruning_study(
    preset: str | ModelPreset = "standard",
    fractions: Sequence[float] = (0.5, 0.75),
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0,),
    settings: PruningSettings | None = None,
    trained: TrainedModel | None = None,
    dense_reference: bool = True,
    latency: bool = True,
    seq_lens: tuple[int, ...] | None = None,
    latency_repeats: int = 10,
    unstructured_fraction: float | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device = "auto",
    num_threads: int | None = 1,
    callback: Callback | None = None,
    clock: str = "auto",
) -> StructuredPruningResult:
    """Load (or train and cache) the preset's model, prune it with every method, time the results.

    ``dense_reference`` also trains the dense model for the same steps
    (per seed), the fair figure to hold pruned models against.
    ``seq_lens`` default to a quarter, half and all of the model's context.
    ``unstructured_fraction`` (default: the first fraction) is the sparsity of
    the unstructured comparison models. ``callback(step, total, message)``
    may return True to stop; what finished is kept (``stopped_early``).
    ``clock="auto"`` times one CPU thread by its own CPU time (``"thread_cpu"``:
    on a busy shared machine the wall clock mostly measures waiting for a core;
    at load 15–24 its medians were 7–200× the CPU time, benchmarks/README.md) and
    uses the wall clock otherwise (accelerators, several threads).
    ``num_threads`` pins torch's CPU threads for training, pruning and timing
    (1 by default: these small models gain little from intra-op threads and,
    on busy shared cores, run several times slower with two; ``None`` leaves
    torch's default).
    """
    settings = settings or PruningSettings()
    chosen = _checked_preset(preset, fractions, methods, seeds, settings, trained)
    dev = resolve_device(device)
    timing_clock(clock, dev, num_threads)  # a bad clock is refused before anything trains
    plan = _run_plan(seeds, fractions, methods, dense_reference)
    train_steps = 0 if trained is not None else chosen.train.steps
    tracker = _Progress(callback, train_steps + _optimizer_steps(plan, settings) + (1 if latency else 0))
    started = time.perf_counter()
    result = None
    try:
        if trained is None:
            trained = load_or_train(chosen, cache_dir=cache_dir, device=dev, num_threads=num_threads,
                                    callback=tracker.training)
            if trained.record.get("stopped_early"):
                raise _Stop
        tracker.finish_training(train_steps)
        dense = trained.model.to(dev).eval()
        result = _new_result(trained, chosen, dense, settings, dev, num_threads,
                             {"fractions": list(fractions), "methods": list(methods), "seeds": list(seeds)})
        _prune_all(result, plan, dense, trained.corpus, settings, dev, num_threads, tracker)
        result.seconds["pruning"] = time.perf_counter() - started
        if latency:
            tracker.message("timing dense vs pruned models (interleaved rounds)")
            result.settings["latency_clock"] = timing_clock(clock, dev, num_threads)
            result.latency = _time_models(result, dense, seq_lens, latency_repeats, unstructured_fraction,
                                          num_threads, dev, tracker)
    except _Stop:
        if result is None:
            raise RuntimeError("Stopped while training the dense model; nothing was pruned yet.") from None
        result.stopped_early = True
    result.seconds["total"] = time.perf_counter() - started
    if not result.stopped_early:
        tracker.done()
    return result


def _checked_preset(preset: str | ModelPreset, fractions: Sequence[float], methods: Sequence[str],
                    seeds: Sequence[int], settings: PruningSettings, trained: TrainedModel | None) -> ModelPreset:
    """Refuse a bad study before anything trains; the preset that describes the model pruned."""
    settings.check()
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"Unknown or no methods {bad}; choose from {', '.join(METHODS)}.")
    if not fractions or any(not 0.0 < f < 1.0 for f in fractions):
        raise ValueError(f"Fractions removed must be in (0, 1), got {list(fractions)}.")
    if not seeds:
        raise ValueError("Give at least one seed.")
    if isinstance(preset, str) and preset not in PRESETS:
        raise ValueError(f"Unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if trained is not None and trained.preset is not None:
        return trained.preset  # describe the model that is pruned, not the default preset
    return PRESETS[preset] if isinstance(preset, str) else preset


def _run_plan(seeds: Sequence[int], fractions: Sequence[float], methods: Sequence[str],
              dense_reference: bool) -> list[tuple[int, str, float]]:
    """``(seed, method, fraction)`` of every run, seed by seed (a seed's baselines share one dense prefix)."""
    reference = [(0.0, DENSE_REFERENCE)] if dense_reference else []
    return [(seed, method, fraction) for seed in seeds
            for fraction, method in reference + [(f, m) for f in fractions for m in methods]]


def _optimizer_steps(plan: list[tuple[int, str, float]], settings: PruningSettings) -> int:
    """The study's optimizer steps for progress: every run's, the shared dense prefix counted once per seed."""
    shared = baseline_dense_steps(settings)
    prefix_seeds = {seed for seed, method, _ in plan if method != "SA++"}
    n_prefixed = sum(method != "SA++" for _, method, _ in plan)
    return len(plan) * settings.steps - n_prefixed * shared + len(prefix_seeds) * shared


def _new_result(trained: TrainedModel, chosen: ModelPreset, dense, settings: PruningSettings, dev: torch.device,
                num_threads: int | None, study: dict[str, list]) -> StructuredPruningResult:
    """The empty result: the settings, the model's description and the dense model's validation loss."""
    layouts = unit_layouts(dense.config, settings.kinds, settings.mlp_block, settings.embed_block)
    with torch_threads(num_threads, dev):
        dense_loss = evaluate_loss(dense, trained.corpus.val_windows(settings.eval_windows, dense.config.context))
    return StructuredPruningResult(
        settings={**vars(settings), "kinds": list(settings.kinds), **study, "device": str(dev),
                  "num_threads": num_threads},
        model={"preset": trained.name, "description": chosen.description, "config": dense.config.to_dict(),
               "corpus": trained.corpus.describe(),
               "training": {k: v for k, v in trained.record.items() if k != "history"},
               "from_cache": trained.from_cache, "n_parameters": dense.n_parameters()},
        dense_val_loss=dense_loss, dense_parameters=dense.n_parameters(),
        unit_names={k: list(l.names) for k, l in layouts.items()}, grid=_grid(dense.config, layouts),
        phases=plan_phases(settings.steps, settings.n_cycles))


def _prune_all(result: StructuredPruningResult, plan: list[tuple[int, str, float]], dense, corpus,
               settings: PruningSettings, dev: torch.device, num_threads: int | None, tracker: "_Progress") -> None:
    """Every run of ``plan`` into ``result.runs``; a seed's baselines continue from one shared dense prefix."""
    prefix: DensePrefix | None = None
    with torch_threads(num_threads, dev):
        for seed, method, fraction in plan:
            if method != "SA++" and (prefix is None or prefix.seed != seed):
                prefix = train_dense_prefix(dense, corpus, settings, seed, dev, tracker.pruning, num_threads)
            result.runs.append(prune_transformer(method, dense, corpus, fraction, settings, seed, dev,
                                                 progress=tracker.pruning,
                                                 prefix=None if method == "SA++" else prefix))


def timing_clock(clock: str, device: torch.device, num_threads: int | None) -> str:
    """The clock ``"auto"`` means here: the thread's CPU time for one CPU thread, else the wall clock."""
    if clock not in ("auto", *CLOCKS):
        raise ValueError(f"clock must be 'auto' or one of {CLOCKS}, got {clock!r}.")
    if clock != "auto":
        return clock
    return "thread_cpu" if device.type == "cpu" and num_threads == 1 else "wall"


def _time_models(result: StructuredPruningResult, dense, seq_lens, repeats, unstructured_fraction, num_threads,
                 dev, tracker: "_Progress") -> list[LatencyReport]:
    seed = result.runs[0].seed
    pruned = {result.latency_label(r.method, r.fraction): r.model for r in result.runs
              if r.seed == seed and r.method != DENSE_REFERENCE}
    context = dense.config.context
    seq_lens = seq_lens or tuple(sorted({max(8, context // 4), max(8, context // 2), context}))
    fraction = unstructured_fraction if unstructured_fraction is not None else result.fractions[0]
    share = _block_weight_share_removed(result, fraction, seed)
    start = time.perf_counter()
    reports = measure_structured_latency(dense, pruned, seq_lens, context, share, repeats, num_threads, dev,
                                         callback=tracker.latency, clock=result.settings["latency_clock"])
    result.seconds["latency"] = time.perf_counter() - start
    result.settings["unstructured_fraction"] = share
    return reports


def _block_weight_share_removed(result: StructuredPruningResult, fraction: float, seed: int) -> float:
    """Share of the block matrices' weights the SA++ (else first) model at ``fraction`` removed."""
    runs = [r for r in result.runs if math.isclose(r.fraction, fraction) and r.seed == seed
            and r.method != DENSE_REFERENCE]
    run = next((r for r in runs if r.method == "SA++"), runs[0] if runs else result.runs[-1])
    cfg, small = result.model["config"], run.pruned_config

    def block_weights(d, hd, heads, mlp):
        return sum(4 * d * h * hd + 2 * d * m for h, m in zip(heads, mlp))

    dense_w = block_weights(cfg["d_model"], cfg["head_dim"], cfg["heads"], cfg["mlp_hidden"])
    return round(1.0 - block_weights(small.d_model, small.head_dim, small.heads, small.mlp_hidden) / dense_w, 4)


class _Progress:
    """Maps training steps, pruning steps and timing rounds onto one ``callback(step, total, message)``."""

    def __init__(self, callback: Callback | None, total: int):
        self.callback, self.total, self.step = callback, max(1, total), 0
        self.every = max(1, total // 200)

    def _report(self, message: str, force: bool = False) -> None:
        if self.callback is not None and (force or self.step % self.every == 0):
            if self.callback(min(self.step, self.total), self.total, message):
                raise _Stop

    def training(self, step: int, total: int, message: str) -> bool:
        self.step = step
        try:
            self._report(message + " (first time for this model; cached afterwards)", force=True)
        except _Stop:
            return True
        return False

    def finish_training(self, steps: int) -> None:
        self.step = steps

    def pruning(self, message: str) -> None:
        self.step += 1
        self._report(message)

    def latency(self, done: int, total: int, message: str) -> bool:
        try:
            self._report(f"timing: {message}", force=True)
        except _Stop:
            return True
        return False

    def message(self, text: str) -> None:
        self._report(text, force=True)

    def done(self) -> None:
        if self.callback is not None:
            self.callback(self.total, self.total, "done")
