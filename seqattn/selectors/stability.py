"""Stable selection: Sequential Attention run B times, the picks ranked by how often and how early they are made.

One SA run on a few hundred cells is a sample, not an answer: another seed can give a panel that shares a
third of its genes. A list someone will act on is therefore the agreement of B runs — each with its own seed
(initialisation, batch order, validation split) or, with ``resample="bootstrap"``, also its own bootstrap
sample of the training rows — as stability selection (Meinshausen & Bühlmann 2010) does:

* **the panel** (:func:`consensus_order`): the units picked by the most runs, ties broken by the mean pick
  position in the runs that made them (earlier first), then by index. Every pick carries "picked in b of B
  runs" (``SelectionStep.picked_in``) and its *kept share* (``SelectionStep.kept_share``,
  :func:`resampled_kept_shares`): the runs are independent given the data, so drawing the B runs again with
  replacement and rebuilding the consensus with the same rule estimates how often another set of B runs —
  another seed — would keep the pick. It is flagged *unstable* (:func:`seqattn.trace.is_unstable`) when
  b ≤ UNSTABLE_SHARE · B or its kept share is below MIN_KEPT_SHARE, whatever its margin inside the runs that
  did; its confidence and separation are the medians over those runs. A count alone cannot say it: on
  pbmc68k_reduced a gene picked in 7 of 8 runs of one seed was missing from another seed's panel while a
  gene picked in 4 of 8 was in all three (benchmarks/README.md, *Stability*).
* **the runs themselves** stay in the trace (``settings["runs"]``: each run's picks in order;
  ``settings["run_seeds"]``), so a genes × runs matrix or selection-frequency bars can be drawn from it, and
  each step's ``scores`` are every candidate's share of runs (NaN for units already in the panel).

:class:`BatchedSATrainer` trains the B runs side by side as stacked weights (one
:class:`~seqattn.models.StackedMLP`, a B × units logit matrix, one :class:`~seqattn.schedule` object and one
selection state per run), which on small and medium inputs costs a fraction of B separate runs
(``benchmarks/bench_panels.py --stability-timing``). Where it does not apply — rows on disk (backed), the
linear model, several processes — :func:`fit_runs` trains the runs one after another with
:class:`~seqattn.selectors.sa_trainer.SATrainer`, with the same seeds.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from seqattn import distributed
from seqattn.data.stream import as_row_source, standardisation
from seqattn.device import describe_device, resolve_device, torch_threads
from seqattn.models import StackedMLP
from seqattn.objectives import SelectionObjective
from seqattn.schedule import Probe
from seqattn.scoring import subset_metric
from seqattn.selectors.sa_trainer import (
    LOGIT_INIT_STD,
    REPORT_EVERY,
    SAConfig,
    SATrainer,
    SelectionUnits,
    auto_threads,
    convergence_check_rows,
    network_columns,
    readout_rows,
    sa_trace,
    training_rows,
)
from seqattn.trace import MIN_KEPT_SHARE, SelectionTrace, UNSTABLE_SHARE, assess_pick

ProgressCallback = Callable[[int, int, str], Any]
RESAMPLES = ("seeds", "bootstrap")
#: How many resampled consensus panels estimate each pick's kept share (:func:`resampled_kept_shares`): a
#: share of 0.9 is then known to about ±0.02 (binomial standard error), at ~1 ms per panel for k = 20.
RESAMPLED_PANELS = 200
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, as SATrainer's logits use them


@dataclass
class RunRecord:
    """What one run picked, in order, with its within-run verdict on each pick."""

    seed: int
    picks: list[int] = field(default_factory=list)
    confidence: list[float | None] = field(default_factory=list)
    separation: list[float | None] = field(default_factory=list)
    total_steps: int = 0
    warmup_steps: int | None = None
    #: A shared selection (several networks, one panel): per pick, the attention averaged over the networks,
    #: each network's own leader, and how many of them led with the pick.
    scores: list[np.ndarray] = field(default_factory=list)
    leaders: list[list[int]] = field(default_factory=list)
    votes: list[int] = field(default_factory=list)

    def add(self, feature: int, scores: np.ndarray, leaders: Sequence[int] = ()) -> None:
        confidence, _, _, separation = assess_pick(scores, feature)
        self.picks.append(int(feature))
        self.confidence.append(confidence)
        self.separation.append(separation)
        if len(leaders):
            self.scores.append(np.asarray(scores, dtype=np.float64).copy())
            self.leaders.append([int(u) for u in leaders])
            self.votes.append(int(sum(int(u) == int(feature) for u in leaders)))

    @classmethod
    def from_trace(cls, seed: int, trace: SelectionTrace) -> "RunRecord":
        record = cls(seed, total_steps=int(trace.settings.get("total_steps") or 0),
                     warmup_steps=trace.settings.get("warmup_steps"))
        for step in trace.steps:
            record.picks.append(step.feature)
            record.confidence.append(step.confidence)
            record.separation.append(step.separation)
        return record


def run_seeds(random_state: int | None, n_runs: int) -> list[int]:
    """B independent seeds drawn from ``random_state`` (so two stable selections with neighbouring seeds share
    no runs, unlike seed, seed + 1, …)."""
    rng = np.random.default_rng(0 if random_state is None else int(random_state))
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n_runs)]


# --------------------------------------------------------------------------- the consensus
def selection_counts(runs: Sequence[Sequence[int]], n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, mean_position)`` per unit: how many runs picked it, and its mean 1-based pick position in
    those runs (NaN where none did)."""
    picks = [np.asarray(p, dtype=np.int64) for p in runs if len(p)]
    flat = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    positions = np.concatenate([np.arange(1, len(p) + 1) for p in picks]) if picks else np.zeros(0)
    counts = np.bincount(flat, minlength=n_units)[:n_units].astype(np.int64)
    position_sum = np.bincount(flat, weights=positions, minlength=n_units)[:n_units]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_position = np.where(counts > 0, position_sum / np.maximum(counts, 1), np.nan)
    return counts, mean_position


def consensus_order(runs: Sequence[Sequence[int]], n_units: int, k: int) -> list[int]:
    """The panel of B runs: units by the number of runs that picked them (most first), then by their mean
    pick position in those runs (earliest first), then by index; at most ``k``, never a unit no run picked."""
    counts, mean_position = selection_counts(runs, n_units)
    candidates = np.flatnonzero(counts > 0)
    order = candidates[np.lexsort((candidates, mean_position[candidates], -counts[candidates]))]
    return [int(u) for u in order[:k]]


ConsensusRule = Callable[[list[list[int]], int, int], list[int]]


def resampled_kept_shares(runs: Sequence[Sequence[int]], n_units: int, k: int, order: ConsensusRule | None = None,
                          *, n_resamples: int = RESAMPLED_PANELS, seed: Any = 0) -> np.ndarray:
    """Per unit, the share of ``n_resamples`` resampled consensus panels that contain it: the B runs drawn
    again with replacement (they are independent given the data), the panel rebuilt with the same ``order``
    (:func:`consensus_order`, or a pick rule's own consensus), as a bootstrap estimate of "would another set
    of B runs — another seed — keep this unit?". ``seed`` (e.g. the run seeds) makes it deterministic."""
    order = order or consensus_order
    runs = [list(r) for r in runs]
    kept = np.zeros(n_units)
    if not runs:
        return kept
    rng = np.random.default_rng(seed)
    for draw in rng.integers(0, len(runs), size=(int(n_resamples), len(runs))):
        kept[order([runs[i] for i in draw], n_units, k)] += 1
    return kept / max(1, int(n_resamples))


def kept_shares(trace: SelectionTrace) -> dict[int, float]:
    """Unit → share of the resampled consensus panels that kept it, for every unit some resampled panel held
    (as :func:`consensus_trace` stored it; {} for a trace without them)."""
    units, shares = trace.settings.get("resampled_units"), trace.settings.get("resampled_kept_shares")
    return {int(u): float(v) for u, v in zip(units or [], shares or [])}


def consensus_trace(records: Sequence[RunRecord], units: SelectionUnits, k: int, *, task: str,
                    settings: dict[str, Any], read_out: Callable[[list[int]], float | None] | None = None,
                    seconds: float = 0.0, dataset_name: str = "", device: str = "cpu",
                    order: ConsensusRule | None = None) -> SelectionTrace:
    """The stable selection's trace: one step per consensus pick, each with its share of runs and of the
    resampled consensus panels that keep it (:func:`resampled_kept_shares`, seeded by the run seeds); ``order``
    replaces :func:`consensus_order` (a pick rule's own consensus, e.g. one that keeps each type's share).
    ``settings`` is copied into the trace (with the kept shares added), never changed."""
    runs = [r.picks for r in records]
    n_runs, n_units = max(1, len(records)), len(units.names)
    counts, mean_position = selection_counts(runs, n_units)
    panel = (order or consensus_order)(runs, n_units, k)
    kept = resampled_kept_shares(runs, n_units, k, order, seed=[r.seed for r in records])
    settings = {**settings, "resampled_panels": RESAMPLED_PANELS, "min_kept_share": MIN_KEPT_SHARE,
                "resampled_units": np.flatnonzero(kept).tolist(), "resampled_kept_shares": kept[kept > 0].tolist()}
    trace = sa_trace(units, task, settings, dataset_name, device)
    available = np.ones(n_units, dtype=bool)
    available[list(units.pinned) + list(units.banned)] = False
    trace.base_metric = previous = read_out(list(units.pinned)) if read_out else None
    for t, unit in enumerate(panel):
        shares = np.where(available, counts / n_runs, np.nan)
        metric = read_out(list(units.pinned) + panel[:t + 1]) if read_out else None
        gain = None if metric is None or previous is None else metric - previous
        step = trace.add_step(unit, shares, gain, metric, seconds)
        within = [(r.confidence[i], r.separation[i]) for r in records for i, p in enumerate(r.picks) if p == unit]
        step.confidence = _median([c for c, _ in within])
        step.separation = _median([s for _, s in within])
        following = panel[t + 1] if t + 1 < len(panel) else _best_left(counts, mean_position, available, unit)
        step.runner_up = following
        step.runner_up_weight = None if following is None else float(counts[following] / n_runs)
        step.picked_in, step.n_runs, step.mean_position = int(counts[unit]), n_runs, float(mean_position[unit])
        step.kept_share = float(kept[unit])
        available[unit] = False
        previous = metric
    trace.stopped_early = len(panel) < k
    return trace


def shared_trace(record: RunRecord, units: SelectionUnits, k: int, *, n_runs: int, task: str,
                 settings: dict[str, Any], read_out: Callable[[list[int]], float | None] | None = None,
                 seconds: float = 0.0, dataset_name: str = "", device: str = "cpu") -> SelectionTrace:
    """The trace of one panel chosen by B networks together: each step's scores are their mean attention,
    ``picked_in`` how many of them led with the pick themselves."""
    trace = sa_trace(units, task, settings, dataset_name, device)
    trace.base_metric = previous = read_out(list(units.pinned)) if read_out else None
    for t, (unit, scores, votes) in enumerate(zip(record.picks, record.scores, record.votes)):
        metric = read_out(list(units.pinned) + record.picks[:t + 1]) if read_out else None
        gain = None if metric is None or previous is None else metric - previous
        step = trace.add_step(unit, scores, gain, metric, seconds)
        step.picked_in, step.n_runs = int(votes), int(n_runs)
        previous = metric
    trace.stopped_early = len(record.picks) < k
    return trace


def _median(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(finite)) if finite else None


def _best_left(counts: np.ndarray, mean_position: np.ndarray, available: np.ndarray, unit: int) -> int | None:
    """The best-ranked unit outside the panel (the last pick's runner-up), or None when no run picked one."""
    left = [int(u) for u in np.flatnonzero(available & (counts > 0)) if u != unit]
    return min(left, key=lambda u: (-counts[u], mean_position[u], u)) if left else None


def unstable_picks(trace: SelectionTrace) -> list[int]:
    """0-based step indices of the picks flagged unstable (:func:`seqattn.trace.is_unstable`)."""
    return [t for t, step in enumerate(trace.steps) if step.unstable]


def selection_matrix(trace: SelectionTrace, panel: Sequence[int] | None = None) -> tuple[list[str], np.ndarray]:
    """``(unit names, matrix)``: units × runs, entry = the unit's 1-based pick position in that run (0: not
    picked), for ``panel`` (default: the trace's picks) then every other unit some run picked, by share of
    runs: the stability view."""
    runs = trace.settings.get("runs") or []
    counts, mean_position = selection_counts(runs, trace.n_features)
    panel = list(trace.selected if panel is None else panel)
    rest = sorted((u for u in np.flatnonzero(counts > 0) if u not in set(panel)),
                  key=lambda u: (-counts[u], mean_position[u], u))
    order = list(panel) + [int(u) for u in rest]
    matrix = np.zeros((len(order), len(runs)), dtype=np.int64)
    row_of = {u: i for i, u in enumerate(order)}
    for r, picks in enumerate(runs):
        for position, unit in enumerate(picks, start=1):
            matrix[row_of[unit], r] = position
    return [trace.feature_names[u] for u in order], matrix


# --------------------------------------------------------------------------- B runs side by side
class MemberBatches:
    """One run's mini-batch rows, forever: a fresh permutation of its training rows every epoch, the last
    incomplete batch dropped — the order :class:`~seqattn.data.stream.BatchStream` gives in memory."""

    def __init__(self, rows: np.ndarray, batch_size: int, seed: int):
        self.rows, self.batch_size = np.asarray(rows, dtype=np.int64), int(batch_size)
        self.rng = np.random.default_rng(seed)
        self.batches_per_epoch = max(1, len(self.rows) // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            order = self.rows[self.rng.permutation(len(self.rows))]
            for b in range(self.batches_per_epoch):
                yield order[b * self.batch_size:(b + 1) * self.batch_size]


class BatchedSATrainer:
    """B SA fits (MLP, in-memory rows) trained as one: stacked networks, a B × units logit matrix.

    Run b is SATrainer's fit with ``random_state = seeds[b]`` (same split, initialisation, batch order and
    schedule rules; floating-point sums differ), on a bootstrap sample of its training rows with
    ``resample="bootstrap"``. Each run has its own schedule and selection state and stops training when it
    has its k picks; the read-out is left to the consensus (:func:`consensus_trace`).
    """

    def __init__(self, config: SAConfig, X: Any, y: np.ndarray, task: str, k: int, units: SelectionUnits,
                 seeds: Sequence[int], *, resample: str = "seeds", shared: bool = False,
                 callback: ProgressCallback | None = None, pick_rule: Any = None):
        self.start = time.perf_counter()
        self.config, self.task, self.k, self.units, self.callback = config, task, k, units, callback
        self.pick_rule = pick_rule  # None: the largest attention; else its choose(scores, picks, seed)
        self.seeds, self.resample = [int(s) for s in seeds], resample
        self.y = np.asarray(y)
        self.y_fit = self.y.astype(np.float32) if task == "regression" else self.y
        self.n_columns = X.shape[1]
        self.columns = network_columns(units, self.n_columns, config.structure_weight)
        self.source = as_row_source(X if self.columns is None else X[:, self.columns])
        self.device = resolve_device(config.device)
        self.threads = config.num_threads if config.num_threads is not None else auto_threads(
            self.source.shape[1], config.hidden)
        self._prepare_members()
        # a selection group shares one schedule and one panel: every run alone, or all runs together
        self.groups = [list(range(len(self.seeds)))] if shared else [[b] for b in range(len(self.seeds))]
        self.group_of = np.array([g for g, members in enumerate(self.groups) for _ in members])
        self.schedules = [config.schedule(k, self.batches[0].batches_per_epoch) for _ in self.groups]
        self.records = [RunRecord(self.seeds[members[0]]) for members in self.groups]
        self.stop_reason: str | None = None
        self.step = 0

    # ------------------------------------------------------------------ set-up
    def _prepare_members(self) -> None:
        """Per run: training / validation rows, column statistics, batch order, convergence-check rows."""
        config, n_cols = self.config, self.n_columns  # the check's row bound as on every column (same rows)
        self.train_rows, self.check_rows, means, scales, self.batches = [], [], [], [], []
        for seed in self.seeds:
            train_idx, val_idx = training_rows(self.y, self.task, config.validation_fraction, seed)
            if self.resample == "bootstrap":
                train_idx = np.sort(np.random.default_rng(seed + 3).choice(train_idx, len(train_idx), replace=True))
            mean, scale = standardisation(self.source, np.unique(train_idx), config.chunk_rows)
            self.train_rows.append(train_idx)
            self.check_rows.append(convergence_check_rows(val_idx, n_cols, seed))
            means.append(mean)
            scales.append(scale)
            self.batches.append(MemberBatches(train_idx, min(config.batch_size, len(train_idx)), seed))
        if self.task == "regression":  # each run standardises the target on its own training rows
            self.target_scale = [(float(self.y[r].mean()), float(self.y[r].std()) or 1.0) for r in self.train_rows]
        self.mean = torch.as_tensor(np.stack(means)[:, None, :], device=self.device)
        self.scale = torch.as_tensor(np.stack(scales)[:, None, :], device=self.device)
        self.scales = scales

    def _build(self) -> None:
        """Networks, logits, optimizers and objective, seeded as SATrainer seeds one fit."""
        config, device, n_units = self.config, self.device, len(self.units.names)
        n_task = int(self.y.max()) + 1 if self.task == "classification" else 1
        self.objective = SelectionObjective.fit(
            task=self.task, n_task_outputs=n_task, y_train=[self.y[r] for r in self.train_rows], scales=self.scales,
            class_weight=config.class_weight, structure_weight=config.structure_weight,
            n_components=config.structure_components, source=self.source, structure_rows=self.train_rows[0],
            device=device, random_state=self.seeds[0])
        n_out = n_task + self.objective.extra_outputs
        self.net = StackedMLP([self.n_columns] * len(self.seeds), n_out, config.hidden, self.seeds, device,
                              keep_inputs=self.columns)
        self.generators = [torch.Generator().manual_seed(seed) for seed in self.seeds]
        self.logits = torch.stack([torch.randn(n_units, generator=g) * LOGIT_INIT_STD
                                   for g in self.generators]).to(device).requires_grad_(True)
        self.selected = torch.zeros((len(self.seeds), n_units), dtype=torch.bool, device=device)
        self.selected[:, list(self.units.pinned)] = True
        self.banned = torch.zeros(n_units, dtype=torch.bool, device=device)
        self.banned[list(self.units.banned)] = True
        column_unit = self.columns if self.units.groups is None else self.units.groups.column_group()
        self.column_unit = (None if column_unit is None else
                            torch.as_tensor(np.asarray(column_unit), dtype=torch.long, device=device))
        self.optimizer = torch.optim.Adam(list(self.net.params.values()), lr=config.learning_rate)
        self.lr_factor = config.lr_gamma(self.schedules[0])
        self.adam_m = torch.zeros_like(self.logits)
        self.adam_v = torch.zeros_like(self.logits)
        self.adam_t = torch.zeros(len(self.seeds), device=device)
        self._check: tuple[torch.Tensor, torch.Tensor] | None = None
        self._validation: tuple[int, np.ndarray] | None = None
        self._host_scores: tuple[int, np.ndarray] | None = None
        self._attention_version = 0  # counts changes of logits or picks: the host copy is stale when it moves

    # ------------------------------------------------------------------ the loop
    def run(self) -> list[RunRecord]:
        """Train every run until its schedule has all k picks (or training is stopped); their records."""
        with torch.random.fork_rng(devices=[]), torch_threads(self.threads, self.device):
            self._build()
            streams = [iter(b) for b in self.batches]
            while self.stop_reason is None:
                self._pick_due()
                active = self._active()
                if not active.any() or self.stop_reason is not None:
                    break
                loss = self.train_step([next(s) for s in streams], active)
                for g, schedule in enumerate(self.schedules):
                    if not schedule.finished:
                        schedule.after_step(self._probe(g))
                self.step += 1
                self._check_stop(loss)
        for record, schedule in zip(self.records, self.schedules):
            summary = schedule.summary()
            record.total_steps, record.warmup_steps = int(summary["total_steps"]), summary.get("warmup_steps")
        return self.records

    def _active(self) -> np.ndarray:
        """Per run: is it still training (its group's schedule has picks to make)?"""
        return np.array([not self.schedules[g].finished for g in self.group_of])

    def train_step(self, rows: list[np.ndarray], active: np.ndarray) -> torch.Tensor:
        """One optimizer step of every run on its own batch; finished runs add nothing to the loss. Returns the
        mean loss of the live runs as a tensor (read on the host only when progress is reported)."""
        xb, yb = self._batch(rows)
        dense_runs = np.array([self.schedules[g].dense for g in self.group_of])
        dense = torch.as_tensor(dense_runs, device=self.device)
        out = self.net.train_forward(xb, self._weights(dense))
        losses = self.objective.member_losses(out, yb, xb)
        live = torch.as_tensor(active, dtype=losses.dtype, device=self.device)
        loss = (losses * live).sum()
        self.optimizer.zero_grad(set_to_none=True)
        self.logits.grad = None
        loss.backward()
        self.optimizer.step()
        if (active & ~dense_runs).any():  # decided on the host: no device sync
            self._logit_step(live.bool() & ~dense)
        if self.lr_factor != 1.0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.lr_factor
        return (losses.detach() * live).sum() / live.sum().clamp_min(1)

    def _batch(self, rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every run's rows, densified and standardised with its own statistics: (B, batch, columns)."""
        if len({len(r) for r in rows}) != 1:
            raise ValueError("Every run needs batches of the same size.")
        flat = np.concatenate(rows)
        block = self.source.read(flat)
        dense = block.toarray() if sp.issparse(block) else np.asarray(block)
        xb = torch.as_tensor(dense, device=self.device).view(len(rows), len(rows[0]), -1)
        xb = (xb - self.mean) / self.scale
        target = self.y_fit[flat]
        if self.task == "regression":
            target = np.concatenate([(self.y[r] - m) / s for r, (m, s) in zip(rows, self.target_scale)])
        dtype = torch.long if self.task == "classification" else torch.float32
        return xb, torch.as_tensor(target, dtype=dtype, device=self.device).view(len(rows), -1)

    def _attention(self) -> torch.Tensor:
        """Softmax of each run's logits over its candidates; 0 elsewhere (B, units)."""
        candidates = ~(self.selected | self.banned)
        masked = self.logits.masked_fill(~candidates, float("-inf"))
        return torch.nan_to_num(torch.softmax(masked, dim=1), nan=0.0)

    def _weights(self, dense: torch.Tensor) -> torch.Tensor:
        """Input weights (B, 1, columns): 1 for usable units in warm-up, else attention + selected (= 1)."""
        phase = self._attention() + self.selected.to(self.logits.dtype)
        usable = (~self.banned).to(self.logits.dtype).expand_as(phase)
        weights = torch.where(dense[:, None], usable, phase)
        if self.column_unit is not None:
            weights = weights[:, self.column_unit]
        return weights[:, None, :]

    @torch.no_grad()
    def _logit_step(self, training: torch.Tensor) -> None:
        """Adam on the logits of the runs in a phase, each row with its own step count (reset at each pick),
        in torch.optim.Adam's arithmetic."""
        if self.logits.grad is None:
            return
        self._attention_version += 1
        (beta1, beta2), rows = ADAM_BETAS, training[:, None]
        grad = self.logits.grad
        self.adam_t += training.to(self.adam_t.dtype)
        self.adam_m.copy_(torch.where(rows, beta1 * self.adam_m + (1 - beta1) * grad, self.adam_m))
        self.adam_v.copy_(torch.where(rows, beta2 * self.adam_v + (1 - beta2) * grad * grad, self.adam_v))
        t = self.adam_t.clamp_min(1)[:, None]
        lr = self.config.attention_learning_rate * (self.lr_factor ** self.step)
        denom = (self.adam_v.sqrt() / torch.sqrt(1 - beta2 ** t)) + ADAM_EPS
        update = lr / (1 - beta1 ** t) * self.adam_m / denom
        self.logits.sub_(torch.where(rows, update, torch.zeros_like(update)))

    # ------------------------------------------------------------------ schedule read-outs
    def _probe(self, g: int) -> Probe:
        """The group's read-outs: its runs' mean validation loss, their mean attention."""
        members = self.groups[g]
        return Probe(lambda: float(np.mean(self._validation_losses()[members])), lambda: self._group_scores(g)[0])

    def _group_scores(self, g: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """The group's attention averaged over its runs, and each run's own (NaN where no candidate)."""
        own = [self._all_scores()[b] for b in self.groups[g]]
        return (own[0] if len(own) == 1 else np.mean(own, axis=0)), own

    def _all_scores(self) -> np.ndarray:
        """Every run's attention on the host (B, units), NaN where no candidate: computed and copied once per
        step and pick, however many runs' schedules read it."""
        key = self._attention_version
        if self._host_scores is None or self._host_scores[0] != key:
            with torch.no_grad():
                scores = self._attention().cpu().double().numpy()
                scores[(self.selected | self.banned).cpu().numpy()] = np.nan
            self._host_scores = (key, scores)
        return self._host_scores[1]

    @torch.no_grad()
    def _validation_losses(self) -> np.ndarray:
        """Every run's dense-network loss on its check rows, computed once per step for all runs."""
        if self._validation is not None and self._validation[0] == self.step:
            return self._validation[1]
        if self._check is None:
            xc, yc = self._batch(self.check_rows)
            self._check = (xc, yc)
        xc, yc = self._check
        dense = torch.ones(len(self.seeds), dtype=torch.bool, device=self.device)
        out = self.net.eval_forward(xc, self._weights(dense))
        losses = self.objective.member_losses(out, yc, xc).cpu().numpy()
        self._validation = (self.step, losses)
        return losses

    # ------------------------------------------------------------------ picks and stopping
    @torch.no_grad()
    def _pick_due(self) -> None:
        """Each group with a pick due takes its (mean) attention's leader; after a phase's last pick its runs'
        logits start afresh."""
        for g, schedule in enumerate(self.schedules):
            members = self.groups[g]
            while schedule.pick_due():
                if not bool(torch.isfinite(self.logits[members]).all()):
                    raise ValueError("Training diverged (the attention logits became NaN/inf); lower the learning "
                                     "rate (or attention_learning_rate) and run again.")
                scores, own = self._group_scores(g)
                feature = (int(np.nanargmax(scores)) if self.pick_rule is None else
                           self.pick_rule.choose(scores, self.records[g].picks, self.seeds[members[0]]))
                self.records[g].add(feature, scores, [int(np.nanargmax(o)) for o in own] if len(own) > 1 else ())
                last_of_phase = schedule.due_now() <= 1  # as SATrainer.pick: joint picks share one attention
                for b in members:
                    self.selected[b, feature] = True
                    if last_of_phase:
                        self.logits[b] = (torch.randn(self.logits.shape[1], generator=self.generators[b])
                                          * LOGIT_INIT_STD).to(self.device)
                        self.adam_m[b], self.adam_v[b], self.adam_t[b] = 0.0, 0.0, 0.0
                self._attention_version += 1  # once per pick: the next pick (a joint one) must not see this one
                schedule.picked()

    def _check_stop(self, loss: torch.Tensor) -> None:
        limit = self.config.max_seconds
        if limit is not None and time.perf_counter() - self.start > limit:
            self.stop_reason = "time limit"
        elif self.callback and self.step % REPORT_EVERY == 0:
            done = sum(s.finished for s in self.schedules)
            picks = sum(len(r.picks) for r in self.records)
            total = max(s.estimated_total() for s in self.schedules)
            if self.callback(self.step, total, f"{len(self.seeds)} runs: {picks}/{self.k * len(self.seeds)} "
                                               f"picks, {done} finished, loss {float(loss):.4f}"):
                self.stop_reason = "stopped"


# --------------------------------------------------------------------------- one entry point
def can_batch(config: SAConfig, X: Any) -> bool:
    """The batched trainer covers the MLP on in-memory rows in one process."""
    return config.model == "mlp" and not as_row_source(X).is_backed and distributed.world_size() == 1


def fit_runs(config: SAConfig, X: Any, y: np.ndarray, task: str, k: int, units: SelectionUnits, *, n_runs: int,
             resample: str = "seeds", shared: bool = False, batched: bool | None = None,
             callback: ProgressCallback | None = None, dataset_name: str = "",
             pick_rule: Any = None) -> SelectionTrace:
    """B = ``n_runs`` SA fits and their consensus trace (see the module docstring).

    ``batched=None`` trains them side by side where :func:`can_batch` allows, else one after another;
    ``True`` / ``False`` force either (``True`` where it cannot apply is a ValueError). ``pick_rule``
    (:class:`~seqattn.selectors.coverage.TypeCoverage`) makes every run's picks and the consensus.
    """
    if resample not in RESAMPLES:
        raise ValueError(f"resample must be one of {RESAMPLES}, got {resample!r}.")
    if n_runs < 2:
        raise ValueError(f"A stable selection needs at least 2 runs, got n_runs={n_runs}.")
    possible = can_batch(config, X)
    if batched and not possible:
        raise ValueError("Runs can be trained side by side only for the MLP on in-memory rows in one process.")
    if resample == "bootstrap" and not possible:
        raise ValueError("resample='bootstrap' needs the MLP on in-memory rows; use resample='seeds'.")
    if shared and not possible:
        raise ValueError("A shared selection trains the runs side by side: the MLP on in-memory rows only.")
    batched = possible if batched is None else batched
    start = time.perf_counter()
    seeds = run_seeds(config.random_state, n_runs)
    if shared:
        trainer = BatchedSATrainer(config, X, y, task, k, units, seeds, resample=resample, shared=True,
                                   callback=callback, pick_rule=pick_rule)
        records = trainer.run()
        device, objective, stop_reason = _device_name(trainer), _trained_on(trainer), trainer.stop_reason
    else:
        runner = _batched_runs if batched else _sequential_runs
        records, device, objective, stop_reason = runner(config, X, y, task, k, units, seeds, resample, callback,
                                                         pick_rule)
    settings = {**_settings(config, k, records, resample, batched, X), **objective,
                "combine": "shared" if shared else "runs"}
    read_out = _consensus_read_out(config, X, y, task, units) if config.gain_model != "none" else None
    build = dict(task=task, settings=settings, read_out=read_out, seconds=time.perf_counter() - start,
                 dataset_name=dataset_name, device=device)
    if shared:
        settings.update(n_runs=n_runs, run_seeds=seeds, run_leaders=records[0].leaders,
                        runs=[[leaders[b] for leaders in records[0].leaders] for b in range(n_runs)])
        trace = shared_trace(records[0], units, k, n_runs=n_runs, **build)
    else:
        if pick_rule is not None:
            settings["consensus"] = pick_rule.CONSENSUS
        trace = consensus_trace(records, units, k, order=pick_rule.consensus if pick_rule else None, **build)
    if trace.stopped_early or any(len(r.picks) < k for r in records):
        trace.stopped_early = True
        trace.settings["stop_reason"] = stop_reason or "stopped"  # "time limit" or "stopped" (Stop pressed)
    return trace


Runs = tuple[list[RunRecord], str, dict[str, Any], str | None]  # records, device, objective, why training stopped


def _batched_runs(config, X, y, task, k, units, seeds, resample, callback, pick_rule=None) -> Runs:
    trainer = BatchedSATrainer(config, X, y, task, k, units, seeds, resample=resample, callback=callback,
                               pick_rule=pick_rule)
    records = trainer.run()
    if trainer.stop_reason is not None:
        records = [r for r in records if r.picks]
    return records, _device_name(trainer), _trained_on(trainer), trainer.stop_reason


def _trained_on(trainer: BatchedSATrainer) -> dict[str, Any]:
    """The objective's settings and how many input columns the networks read (network_columns: candidates and
    pinned units, not every column, where the rest is banned)."""
    return {**trainer.objective.describe(), "network_inputs": int(trainer.source.shape[1])}


def _device_name(trainer: BatchedSATrainer) -> str:
    with torch_threads(trainer.threads, trainer.device):
        return describe_device(trainer.device)


def _sequential_runs(config, X, y, task, k, units, seeds, resample, callback, pick_rule=None) -> Runs:
    records, device, objective, stop_reason = [], "cpu", {}, None
    for b, seed in enumerate(seeds):
        def progress(step: int, total: int, message: str, b: int = b) -> Any:
            return callback(b * total + step, len(seeds) * total, f"run {b + 1}/{len(seeds)}: {message}")

        trainer = SATrainer(replace(config, random_state=seed, gain_model="none"), X, y, task, k, units,
                            callback=progress if callback else None, pick_rule=pick_rule)
        trace = trainer.run()
        records.append(RunRecord.from_trace(seed, trace))
        device = trace.device
        objective = {key: trace.settings[key] for key in ("class_weight", "structure_weight", "structure_components",
                                                          "structure_variance_shares") if key in trace.settings}
        if trace.stopped_early:
            stop_reason = trace.settings.get("stop_reason")
            break
    return records, device, objective, stop_reason


def _settings(config: SAConfig, k: int, records: list[RunRecord], resample: str, batched: bool,
              X: Any) -> dict[str, Any]:
    """The trace's settings: SA's own, the stability rule, and every run's picks (the stability view's data)."""
    settings = {name: getattr(config, name) for name in (
        "model", "hidden", "epochs", "batch_size", "learning_rate", "attention_learning_rate", "lr_decay",
        "selection_point", "validation_fraction", "gain_model", "random_state", "num_threads", "max_seconds",
        "class_weight", "structure_weight", "structure_components")}
    settings.update(k=k, requested_device=config.device, n_runs=len(records), resample=resample,
                    batched=bool(batched), unstable_share=UNSTABLE_SHARE,
                    consensus="most runs first, then earliest mean pick position",
                    run_seeds=[r.seed for r in records], runs=[list(r.picks) for r in records],
                    run_total_steps=[r.total_steps for r in records],
                    run_warmup_steps=[r.warmup_steps for r in records],
                    backed=bool(as_row_source(X).is_backed))
    return settings


def _consensus_read_out(config: SAConfig, X: Any, y: np.ndarray, task: str,
                        units: SelectionUnits) -> Callable[[list[int]], float | None]:
    """The metric of a cheap model refit on a prefix of the panel, on the first run's split (as SA's read-out)."""
    source, seed = as_row_source(X), config.seed
    train, val = readout_rows(source, *training_rows(np.asarray(y), task, config.validation_fraction, seed), seed)
    y = np.asarray(y)

    def read_out(panel: list[int]) -> float | None:
        columns = units.columns(panel)
        return subset_metric(train.columns(columns), y[train.rows], val.columns(columns), y[val.rows],
                             list(range(len(columns))), task, seed, config.gain_model)

    return read_out


__all__ = ["BatchedSATrainer", "RESAMPLED_PANELS", "RESAMPLES", "RunRecord", "consensus_order", "consensus_trace",
           "fit_runs", "kept_shares", "resampled_kept_shares", "run_seeds", "selection_counts", "selection_matrix",
           "unstable_picks"]
