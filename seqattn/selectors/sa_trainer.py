"""Sequential Attention's training, top to bottom: warm-up → phases → pick.

:class:`SATrainer` runs one fit. Read it in this order:

1. :class:`SAConfig` — every hyper-parameter, resolved once from the estimator's
   parameters (the MLP's defaults, or :meth:`SAConfig.linear_defaults`);
2. :class:`SequentialAttention` — the mask: one logit per selection unit,
   softmax over the candidates, weight 1 for the picked units;
3. :meth:`SATrainer.run` — the loop. Before every optimizer step the schedule
   (:mod:`seqattn.schedule`) says whether a pick is due; during the dense
   **warm-up** every usable feature has weight 1 and the logits do not train;
   in each **phase** network and logits train together until the schedule ends
   the phase; then :meth:`SATrainer.pick` takes the candidate with the largest
   attention, re-initialises the logits and reads out the metric of the picks;
4. :meth:`SATrainer.should_stop` — the one place that decides "stop?" (time
   limit, Stop from the progress callback) and, with several processes, makes
   every rank agree.

Under ``torch.distributed`` (several ranks) the network and logits train under
DistributedDataParallel, each rank reading its share of every global batch;
the helpers of :mod:`seqattn.distributed` are no-ops for a single process, so
the loop reads the same either way.

Where changes go: the budget (when a phase ends, how long the warm-up runs)
is the schedule's and :class:`SAConfig`'s; several picks at one phase end are a
schedule that stays ``pick_due`` and a mask that selects among the same
attention; a run per seed or bootstrap resample is one trainer per
:class:`SAConfig` (the rows it trains on are chosen in ``_prepare_rows``).
"""
from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from seqattn import distributed
from seqattn.data import DataError, split_indices
from seqattn.data.stream import BatchStream, ReadoutRows, as_row_source, standardisation
from seqattn.device import describe_device, resolve_device, torch_threads
from seqattn.models import DEFAULT_HIDDEN, TrainConfig, build_model
from seqattn.objectives import SelectionObjective
from seqattn.progress import EstimatedTotal
from seqattn.schedule import (CONVERGENCE_PATIENCE, HANDOVER_PATIENCE, PHASE_BUDGET, PHASE_MAX_FACTOR, PICK_BUDGET,
                              ConvergenceSchedule, FixedSchedule, Probe)
from seqattn.scoring import MAX_REFIT_ROWS, VALIDATION_FRACTION, metric_name, subset_metric
from seqattn.trace import SelectionTrace

ProgressCallback = Callable[[int, int, str], Any]
LOGIT_INIT_STD = 1e-5
#: Adam learning rate of the attention logits (MLP). Adam moves a logit by at most about its learning rate per
#: step, and a leader needs a logit lead of ln(2) ≈ 0.7 to reach twice the uniform share: at the network's
#: 3e-3 that takes ≥ 230 steps per phase, at 0.1 about 7. Measured on digits (5 held-out splits, k = 5/10/20):
#: 0.1 with 10-step phases 73.5/92.0/95.9 % at 1.8× the warm-up's steps; 0.05 with 30-step phases
#: 69.7/89.4/95.3 % at 4.1×. See the README ("Training budget").
ATTENTION_LEARNING_RATE = 0.1
#: Shortest phase of the automatic budget (MLP), in optimizer steps.
MLP_MIN_PHASE_STEPS = 10
#: The warm-up's convergence check reads at most VALIDATION_ROWS validation rows and VALIDATION_VALUES values
#: (rows × features, 16 MB as float32), once, and reuses them: a check every 10 steps then costs about 2-3
#: training steps, and wide or backed data stays within its memory bound.
VALIDATION_ROWS = 1024
VALIDATION_VALUES = 4_000_000
#: The read-out refits on at most this many validation rows (and MAX_REFIT_ROWS training rows),
#: held in memory once, so its cost and memory do not grow with the number of cells.
MAX_READOUT_VAL_ROWS = 10_000
#: Progress is reported (and, with several ranks, "stop?" agreed) every this many optimizer steps.
REPORT_EVERY = 10
SMALL_NETWORK_SIZE = 200_000  # inputs × hidden units below which one CPU thread is fastest
#: Machines with at most this many CPU cores train SA on one thread whatever the network size:
#: measured on the 2-core dev box (load ≈ 8), 2 threads were 2.0–5.5× slower than 1 per step at
#: 20,000 inputs (batch 512 / 128) and 6.6–17× slower at 2,000 (benchmarks/README.md).
FEW_CORES = 2


def auto_threads(n_inputs: int, hidden: int, world_size: int = 1, cpu_count: int | None = None) -> int | None:
    """SA's automatic CPU thread count: 1, or ``None`` (torch's default) where more threads can pay.

    One thread for small networks (inputs × hidden ≤ SMALL_NETWORK_SIZE), on machines with
    ≤ FEW_CORES cores (measured, see above), and for each of several processes sharing the
    cores (torchrun does the same through OMP_NUM_THREADS).
    """
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if n_inputs * hidden <= SMALL_NETWORK_SIZE or cores <= FEW_CORES or world_size > 1:
        return 1
    return None


def training_rows(y: np.ndarray, task: str, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One fit's training and validation rows (stratified for classes); with no validation share both are all rows."""
    if validation_fraction > 0:
        train_idx, val_idx, _ = split_indices(len(y), y if task == "classification" else None,
                                              validation_fraction, 0.0, seed)
    else:  # train on everything; the per-step metric is then a training metric
        train_idx = val_idx = np.arange(len(y))
    if len(train_idx) < 2:  # batch normalisation needs two rows per mini-batch
        raise DataError(f"Only {len(train_idx)} training sample(s) after holding out "
                        f"{len(val_idx)} for validation; SA needs at least 2. Use more samples.")
    return train_idx, val_idx


def convergence_check_rows(val_idx: np.ndarray, n_columns: int, seed: int) -> np.ndarray:
    """The validation rows the warm-up's convergence check reads (at most VALIDATION_ROWS / VALIDATION_VALUES)."""
    n_check = max(64, min(VALIDATION_ROWS, VALIDATION_VALUES // max(1, n_columns)))
    return val_idx if len(val_idx) <= n_check else np.sort(
        np.random.default_rng(seed + 2).choice(val_idx, n_check, replace=False))


def readout_rows(source: Any, train_rows: np.ndarray, val_rows: np.ndarray,
                 seed: int) -> tuple[ReadoutRows, ReadoutRows]:
    """The rows the read-out refits on: a fixed subsample of at most MAX_REFIT_ROWS training and
    MAX_READOUT_VAL_ROWS validation rows (as subset_metric would draw it), held in memory once."""
    if len(train_rows) > MAX_REFIT_ROWS:
        train_rows = train_rows[np.random.default_rng(seed).choice(len(train_rows), MAX_REFIT_ROWS, replace=False)]
    if len(val_rows) > MAX_READOUT_VAL_ROWS:
        val_rows = np.sort(np.random.default_rng(seed + 1).choice(val_rows, MAX_READOUT_VAL_ROWS, replace=False))
    return ReadoutRows(source, train_rows), ReadoutRows(source, val_rows)


def sa_trace(units: "SelectionUnits", task: str, settings: dict[str, Any], dataset_name: str,
             device: str) -> SelectionTrace:
    """An empty SA trace over ``units`` (one fit's, or the consensus of several)."""
    grouped = units.groups is not None
    return SelectionTrace(method="sa", feature_names=list(units.names), task=task, metric_name=metric_name(task),
                          device=device, pinned=list(units.pinned), banned=list(units.banned),
                          settings=dict(settings), dataset=dataset_name,
                          groups=[list(c) for c in units.groups.columns] if grouped else None,
                          column_names=list(units.column_names) if grouped else None)


def network_columns(units: "SelectionUnits", n_columns: int, structure_weight: float) -> np.ndarray | None:
    """The input columns the network reads, or ``None`` for all of them.

    A banned unit is weighted 0 in the warm-up and in every phase, so its columns never reach the network:
    leaving them out of its input gives the same network on the columns that remain (each column's
    normalisation, weights and gradients are its own; initialised as on the full width), at a fraction of the
    cost where most genes are banned — a marker pool keeps 3·k of 20,000. Not with the structure head, whose
    targets are the components of every column, nor with feature groups.
    """
    if not len(units.banned) or structure_weight > 0 or units.groups is not None:
        return None
    columns = np.setdiff1d(np.arange(n_columns), np.asarray(units.banned, dtype=np.int64))
    return columns if len(columns) < n_columns else None


# --------------------------------------------------------------------------- 1. hyper-parameters
@dataclass(frozen=True)
class SAConfig:
    """Every hyper-parameter of one SA fit, resolved once (see :meth:`from_params`).

    The class defaults are the MLP's (:class:`~seqattn.models.TrainConfig` for the
    network); :meth:`linear_defaults` are the linear model's. ``attention_learning_rate``
    ``None`` means "the model's learning rate"; ``max_steps_per_phase`` ``None`` means
    PHASE_MAX_FACTOR × ``min_steps_per_phase``; :meth:`from_params` fills both in.
    """

    model: str = "mlp"
    hidden: int = DEFAULT_HIDDEN
    epochs: int | None = None  # None: the convergence-driven budget
    batch_size: int = TrainConfig.batch_size
    learning_rate: float = TrainConfig.learning_rate
    attention_learning_rate: float | None = ATTENTION_LEARNING_RATE
    lr_decay: float = 0.1
    l2: float = 1.0
    min_steps_per_phase: int = MLP_MIN_PHASE_STEPS
    max_steps_per_phase: int | None = None
    phase_budget: float | None = PHASE_BUDGET  # the phases' steps together ≤ this × the warm-up's (None: unbounded)
    pick_budget: float = PICK_BUDGET  # ... or this × min_steps_per_phase per pick, whichever is larger
    warmup_patience: int = HANDOVER_PATIENCE  # checks without improvement that end the warm-up
    #: One pick per phase (greedy-faithful). More lets candidates that separated together be picked at one phase
    #: end — fewer phases, but not greedy: two redundant candidates (markers of one cell type) can separate
    #: together and both be picked, where greedy would take one and move on. Opt-in only.
    max_picks_per_phase: int = 1
    selection_point: str = "end"
    validation_fraction: float = VALIDATION_FRACTION
    gain_model: str = "linear"
    max_seconds: float | None = None
    chunk_rows: int | None = None
    num_threads: int | None = None
    random_state: int | None = 0
    device: str = "auto"
    class_weight: str | None = None  # "balanced": every class weighs the same in the loss (seqattn.objectives)
    structure_weight: float = 0.0  # λ of the structure head (leading principal components); 0: no head
    structure_components: int = 20

    @classmethod
    def linear_defaults(cls) -> "SAConfig":
        """The linear model's defaults: full batch (≤ 1024 rows), learning rate 0.05 for network and
        logits alike, phases of at least 400 steps — it must converge within each phase for its
        picks to follow OMP's (``tests/unit/test_sequential_attention.py``) — so a warm-up trained to
        convergence and no phase budget."""
        return cls(model="linear", batch_size=1024, learning_rate=0.05, attention_learning_rate=None,
                   min_steps_per_phase=400, phase_budget=None, warmup_patience=CONVERGENCE_PATIENCE)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "SAConfig":
        """The model's defaults overridden by every parameter that is not ``None``, derived values filled in."""
        base = cls.linear_defaults() if params.get("model") == "linear" else cls()
        names = {f.name for f in fields(cls)}
        config = replace(base, **{n: v for n, v in params.items() if n in names and v is not None})
        learning_rate = float(config.learning_rate)
        min_steps = int(config.min_steps_per_phase)
        return replace(
            config, hidden=int(config.hidden), batch_size=int(config.batch_size), learning_rate=learning_rate,
            attention_learning_rate=float(config.attention_learning_rate or learning_rate),
            min_steps_per_phase=min_steps, max_steps_per_phase=int(config.max_steps_per_phase
                                                                   or PHASE_MAX_FACTOR * min_steps))

    @property
    def seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def lr_gamma(self, schedule: FixedSchedule | ConvergenceSchedule) -> float:
        """The per-step learning-rate factor: a fixed schedule decays it by ``lr_decay`` over the run; the
        automatic one, whose length is not known in advance, keeps it constant (1.0)."""
        if self.epochs is None:
            return 1.0
        return float(self.lr_decay) ** (1.0 / max(1, getattr(schedule, "total_steps", 1)))

    def schedule(self, k: int, batches_per_epoch: int) -> FixedSchedule | ConvergenceSchedule:
        """``epochs=N``: exactly N epochs (extended, with a warning, to the fewest steps that hold k
        phases); ``None``: the convergence-driven budget."""
        if self.epochs is None:
            return ConvergenceSchedule(k, self.min_steps_per_phase, self.max_steps_per_phase, self.selection_point,
                                       warmup_patience=self.warmup_patience, phase_budget=self.phase_budget,
                                       pick_budget=self.pick_budget,
                                       max_picks_per_phase=int(self.max_picks_per_phase))
        total = int(self.epochs) * batches_per_epoch
        fewest = FixedSchedule.fewest_steps(k)
        if total >= fewest:
            return FixedSchedule(k, total, self.selection_point)
        note = (f"epochs={self.epochs} gives {total} optimizer steps ({batches_per_epoch} per epoch), too few for "
                f"{k} selection phases; training {fewest} steps instead, the fewest that hold them (raise epochs "
                f"for better-trained picks).")
        warnings.warn(note, UserWarning, stacklevel=4)
        return FixedSchedule(k, fewest, self.selection_point, note=note)  # the trace's settings say so too


# --------------------------------------------------------------------------- 2. the attention mask
class SequentialAttention(nn.Module):
    """The attention mask over features: logits, selection state, weights.

    ``weights()`` is what multiplies the inputs; ``select()`` makes one greedy
    pick and re-initialises the logits for the next phase.
    """

    def __init__(self, n_features: int, pinned: Sequence[int] = (), banned: Sequence[int] = (),
                 generator: torch.Generator | None = None, column_group: Sequence[int] | None = None):
        """``n_features`` selection units; ``column_group[j]`` is the unit of input column j
        (``None``: one unit per column)."""
        super().__init__()
        self.generator = generator
        self.logits = nn.Parameter(torch.empty(n_features))
        self.register_buffer("column_group", None if column_group is None
                             else torch.as_tensor(np.asarray(column_group), dtype=torch.long))
        self.register_buffer("selected", torch.zeros(n_features, dtype=torch.bool))
        self.register_buffer("banned", torch.zeros(n_features, dtype=torch.bool))
        self.selected[list(pinned)] = True
        self.banned[list(banned)] = True
        self.reset_logits()
        self._refresh()

    def _refresh(self) -> None:
        """Cache the per-step constants so a training step costs three small ops, no host sync."""
        candidates = self.candidates
        self._has_candidates = bool(candidates.any())
        self._bias = torch.zeros_like(self.logits).masked_fill(~candidates, float("-inf")).detach()
        self._fixed = self.selected.to(self.logits.dtype)
        self._dense = self._to_columns((~self.banned).to(self.logits.dtype))
        self.candidate_indicator = self._to_columns(candidates.to(self.logits.dtype))

    def _to_columns(self, per_unit: torch.Tensor) -> torch.Tensor:
        """Per-unit values -> per-column values (each column takes its group's value)."""
        return per_unit if self.column_group is None else per_unit[self.column_group]

    def _apply(self, fn, recurse=True):  # keep the cached tensors on the module's device
        super()._apply(fn, recurse)
        self._refresh()
        return self

    @property
    def candidates(self) -> torch.Tensor:
        return ~(self.selected | self.banned)

    def reset_logits(self) -> None:
        with torch.no_grad():
            noise = torch.randn(self.logits.shape, generator=self.generator) * LOGIT_INIT_STD
            self.logits.copy_(noise.to(self.logits.device))

    def attention(self) -> torch.Tensor:
        """Softmax of the logits over the candidates only; 0 elsewhere."""
        if not self._has_candidates:
            return torch.zeros_like(self.logits)
        return torch.softmax(self.logits + self._bias, dim=0)

    def scores(self) -> np.ndarray:
        """The attention as float64 on the host, NaN where a unit is no candidate (what the trace records)."""
        scores = self.attention().detach().cpu().double().numpy()
        scores[~self.candidates.cpu().numpy()] = np.nan
        return scores

    def weights(self, dense: bool = False) -> torch.Tensor:
        """Input weights: 1 for every usable feature in warm-up, else softmax + selected (=1)."""
        if dense:
            return self._dense
        return self._to_columns(self.attention() + self._fixed)

    @torch.no_grad()
    def select(self, reset: bool = True,
               choose: Callable[[np.ndarray], int] | None = None) -> tuple[int, np.ndarray]:
        """Pick the candidate with the largest attention (or ``choose(scores)``'s, a pick rule such as
        :class:`~seqattn.selectors.coverage.TypeCoverage`); return it and the score vector. ``reset=False``
        keeps the logits for another pick from the same attention (renormalised over the candidates left)."""
        scores = self.scores()
        feature = int(np.nanargmax(scores)) if choose is None else int(choose(scores))
        self.selected[feature] = True
        if reset:
            self.reset_logits()
        self._refresh()
        return feature, scores


class MaskedNet(nn.Module):
    """Network + attention mask as one module, so DistributedDataParallel all-reduces the
    logits' gradients like any other parameter's."""

    def __init__(self, net: nn.Module, mask: SequentialAttention):
        super().__init__()
        self.net, self.mask = net, mask

    def forward(self, x: torch.Tensor, dense: bool = False) -> torch.Tensor:
        return self.net(x, self.mask.weights(dense=dense))


@dataclass
class SelectionUnits:
    """What SA selects among: names, pinned and banned units, and how units map to input columns."""

    names: list[str]  # one per unit (group names with feature groups)
    column_names: list[str]
    pinned: list[int]
    banned: list[int]
    groups: Any = None  # FeatureGroups, or None for one unit per column

    def columns(self, units: Sequence[int]) -> list[int]:
        return list(units) if self.groups is None else self.groups.expand(units)


# --------------------------------------------------------------------------- 3. the trainer
class SATrainer:
    """One SA fit. ``__init__`` prepares the rows (nothing is copied: indices into ``X``);
    :meth:`run` trains and returns the :class:`~seqattn.trace.SelectionTrace`."""

    def __init__(self, config: SAConfig, X: Any, y: np.ndarray, task: str, k: int, units: SelectionUnits, *,
                 callback: ProgressCallback | None = None, dataset_name: str = "", pick_rule: Any = None):
        self.start = time.perf_counter()
        self.config, self.task, self.k, self.units, self.callback = config, task, k, units, callback
        self.pick_rule = pick_rule  # None: the largest attention; else its choose(scores, picks, seed)
        self.y = y
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.device = distributed.local_device(resolve_device(config.device))
        self._prepare_rows(X, y)
        self.schedule = config.schedule(k, self.data.batches_per_epoch)
        self.threads = config.num_threads if config.num_threads is not None else auto_threads(
            X.shape[1], config.hidden, self.world)
        self.stop_reason: str | None = None
        self.trace = self._new_trace(dataset_name)

    # ------------------------------------------------------------------ the loop
    def run(self) -> SelectionTrace:
        """Warm-up, then one phase per pick, until the schedule has all k picks or training is stopped."""
        with torch.random.fork_rng(devices=[]), torch_threads(self.threads, self.device):
            self.trace.device = describe_device(self.device)  # with the thread count it trains on
            self._build_network()
            self.trace.base_metric = self.previous_metric = self.read_out(self.units.pinned)
            self.net.train()
            while self.stop_reason is None and not self.schedule.finished:  # one epoch per pass
                for xb, yb in self.data.epoch(self.rng):
                    self._pick_while_due()
                    if self.stop_reason is not None or self.schedule.finished:
                        break
                    loss = self.train_step(xb, yb)
                    self.schedule.after_step(self.probe)  # the same decisions on every rank (synced model)
                    if self.should_stop(loss):
                        break
                self._pick_while_due()  # picks that fall exactly on the last step
        return self._finish()

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """One optimizer step on one mini-batch; the logits stay untrained during the dense warm-up."""
        dense = self.schedule.dense
        loss = self.loss(self.model(xb, dense=dense), yb, xb)
        if self.config.model == "linear" and self.config.l2 > 0:
            # ℓ2 on the attention-weighted (candidate) coefficients only: selected
            # features are refit freely, as in OMP's least-squares step.
            loss = loss + float(self.config.l2) * (self.net.linear.weight.pow(2) * self.mask.candidate_indicator).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if dense:
            self.mask.logits.grad = None
        self.optimizer.step()
        self.lr_schedule.step()
        return loss

    def _pick_while_due(self) -> None:
        while self.schedule.pick_due() and self.stop_reason is None:
            if self.pick():
                self.stop_reason = "stopped"

    # ------------------------------------------------------------------ pick
    def pick(self) -> bool:
        """Select the leading candidate, record it with its read-out; True when the callback asks to stop."""
        self.net.eval()
        if not bool(torch.isfinite(self.mask.logits).all()):
            raise ValueError("Training diverged (the attention logits became NaN/inf); "
                             "lower the learning rate (or attention_learning_rate) and run again.")
        last_of_phase = self.schedule.due_now() <= 1  # several picks at one phase end share its attention
        choose = None if self.pick_rule is None else (
            lambda scores: self.pick_rule.choose(scores, self.trace.selected, self.config.seed))
        feature, scores = self.mask.select(reset=last_of_phase, choose=choose)
        distributed.check_same_on_all_ranks(feature, f"pick {self.schedule.picks + 1}")
        if last_of_phase:
            self.optimizer.state.pop(self.mask.logits, None)  # a new phase starts with fresh Adam moments
        metric = self.read_out(self.units.pinned + self.trace.selected + [feature])
        previous = self.previous_metric
        gain = None if metric is None or previous is None else metric - previous
        self.trace.add_step(feature, scores, gain, metric, time.perf_counter() - self.start)
        self.previous_metric = metric
        self.schedule.picked()
        self.net.train()
        reading = "" if metric is None else f" ({self.trace.metric_name} {metric:.3f})"
        return self._progress(f"pick {self.schedule.picks}/{self.k}: {self.units.names[feature]}{reading}, "
                              f"{self.trace.steps[-1].confidence:.1f}× uniform")

    def read_out(self, units: list[int]) -> float | None:
        """The metric of a cheap model refit on ``units`` (rank 0 refits; every rank gets its answer)."""
        metric = None
        if self.config.gain_model != "none" and self.readout is not None:
            columns = self.units.columns(units)
            train_rows, val_rows = self.readout
            metric = subset_metric(train_rows.columns(columns), self.y[train_rows.rows], val_rows.columns(columns),
                                   self.y[val_rows.rows], list(range(len(columns))), self.task, self.config.seed,
                                   self.config.gain_model)
        return distributed.broadcast_object(metric)

    # ------------------------------------------------------------------ stop?
    def should_stop(self, loss: torch.Tensor) -> bool:
        """After a step: the time limit, or Stop from the progress callback (every REPORT_EVERY steps).

        One process checks the clock every step. Several ranks agree only at the report points, so
        stopping costs one collective per REPORT_EVERY steps and every rank stops at the same step.
        """
        step, limit = self.schedule.step, self.config.max_seconds
        if self.world > 1 and step % REPORT_EVERY:
            return False
        late = limit is not None and time.perf_counter() - self.start > limit
        if distributed.any_rank(late, self.device):
            self.stop_reason = "time limit"
        elif (self.callback or self.world > 1) and step % REPORT_EVERY == 0:
            if self._progress(f"{self.schedule.phase_label()}, loss {loss.item():.4f}" if self.rank == 0 else ""):
                self.stop_reason = "stopped"
        return self.stop_reason is not None

    def _progress(self, message: str) -> bool:
        """Progress to the callback (rank 0 only); True on every rank when it asks to stop."""
        total = self.schedule.estimated_total()
        if isinstance(self.schedule, ConvergenceSchedule):  # the automatic budget only estimates its length
            total = EstimatedTotal(total)
        wants_stop = bool(self.rank == 0 and self.callback and self.callback(self.schedule.step, total, message))
        return distributed.any_rank(wants_stop, self.device)

    # ------------------------------------------------------------------ set-up
    def _prepare_rows(self, X: Any, y: np.ndarray) -> None:
        """Validation split, column statistics, the mini-batch stream and the warm-up's check rows."""
        config, task, seed = self.config, self.task, self.config.seed
        train_idx, val_idx = training_rows(y, task, config.validation_fraction, seed)
        self.source = as_row_source(X)  # no split copies: everything below indexes rows of X
        mean, scale = standardisation(self.source, train_idx, config.chunk_rows)
        self.target_dtype = torch.long if task == "classification" else torch.float32
        self.y_fit = y
        if task == "regression":  # standardise the target so one learning rate fits all scales
            y_train = y[train_idx]
            y_mu, y_sd = float(y_train.mean()), float(y_train.std()) or 1.0
            self.y_fit = ((y - y_mu) / y_sd).astype(np.float32)
        batch_size = int(min(config.batch_size, len(train_idx)))
        if self.world > 1 and batch_size % self.world:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the number of processes ({self.world}) "
                             "so each rank gets an equal share of every batch; choose another batch_size.")
        self.data = BatchStream(self.source, train_idx, self.y_fit, mean, scale, batch_size=batch_size,
                                device=self.device, target_dtype=self.target_dtype, chunk_rows=config.chunk_rows,
                                rank=self.rank, world_size=self.world)
        self.check_rows = convergence_check_rows(val_idx, X.shape[1], seed)
        self.train_idx, self.val_idx = train_idx, val_idx

    def _new_trace(self, dataset_name: str) -> SelectionTrace:
        """The trace that grows pick by pick (callbacks such as the notebook's live view read it)."""
        config, units = self.config, self.units
        settings = {
            "k": self.k, "model": config.model, "hidden": config.hidden, "epochs": config.epochs,
            "batch_size": self.data.batch_size, "learning_rate": config.learning_rate,
            "attention_learning_rate": config.attention_learning_rate, "lr_decay": config.lr_decay,
            "l2": config.l2, "selection_point": config.selection_point,
            "validation_fraction": config.validation_fraction, "gain_model": config.gain_model,
            "random_state": config.random_state, "requested_device": config.device,
            "num_threads": config.num_threads, "max_seconds": config.max_seconds,
            "chunk_rows": self.data.chunk_rows, "world_size": self.world, "backed": bool(self.source.is_backed),
        }
        return sa_trace(units, self.task, settings, dataset_name, str(self.device))

    def _build_network(self) -> None:
        """Network, mask, optimizer and loss, seeded (inside :meth:`run`'s private RNG state)."""
        config, units, device = self.config, self.units, self.device
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        self.objective = self._objective()
        n_outputs = self.objective.n_task_outputs + self.objective.extra_outputs
        self.net = build_model(config.model, self.source.shape[1], n_outputs, config.hidden).to(device)
        column_group = None if units.groups is None else units.groups.column_group()
        self.mask = SequentialAttention(len(units.names), units.pinned, units.banned, generator,
                                        column_group).to(device)
        self.model: nn.Module = MaskedNet(self.net, self.mask)
        if self.world > 1:  # gradients (logits included) all-reduced; batch norm on the global batch
            distributed.sync_batch_norm(self.net)
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True)  # the logits sit out the dense warm-up
        groups = [{"params": self.net.parameters(), "weight_decay": 0.0},
                  {"params": [self.mask.logits], "weight_decay": 0.0, "lr": config.attention_learning_rate}]
        self.optimizer = torch.optim.Adam(groups, lr=config.learning_rate)
        self.lr_schedule = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=config.lr_gamma(self.schedule))
        self.rng = np.random.default_rng(config.seed)
        self.readout = self._readout_rows() if self.rank == 0 else None
        self.probe = Probe(self.validation_loss, self.mask.scores)
        self._check: list[torch.Tensor] = []  # read on the first check only (a fixed schedule never checks)

    def _objective(self) -> SelectionObjective:
        """The loss the network trains on (class weights, structure head), fitted on the training rows."""
        config = self.config
        objective = SelectionObjective.fit(
            task=self.task, n_task_outputs=int(self.y.max()) + 1 if self.task == "classification" else 1,
            y_train=[self.y[self.train_idx]], scales=[self.data.scale.cpu().numpy()],
            class_weight=config.class_weight, structure_weight=config.structure_weight,
            n_components=config.structure_components, source=self.source, structure_rows=self.train_idx,
            device=self.device, random_state=config.seed)
        self.trace.settings.update(objective.describe())
        return objective

    def loss(self, out: torch.Tensor, target: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.objective.loss(out, target, x)

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Loss of the dense network on the check rows (identical on every rank): the warm-up's signal."""
        if not self._check:  # backed data: one streaming pass, not the span of disk rows the check rows cover
            rows = self.check_rows
            block = self.source.to_memory(rows) if self.source.is_backed else self.source.read(rows)
            xc = torch.as_tensor(block.toarray() if sp.issparse(block) else np.asarray(block),
                                 dtype=torch.float32, device=self.device)
            del block
            yc = torch.as_tensor(np.asarray(self.y_fit)[rows], dtype=self.target_dtype, device=self.device)
            self._check.extend([xc.sub_(self.data.mean).div_(self.data.scale), yc])
        self.net.eval()
        total = 0.0
        for lo in range(0, len(self.check_rows), 256):  # small slices: few activations alive at once
            xb, yb = self._check[0][lo:lo + 256], self._check[1][lo:lo + 256]
            out = self.net(xb, self.mask.weights(dense=True))
            total += float(self.loss(out, yb, xb)) * len(yb)
        self.net.train()
        return total / len(self.check_rows)

    def _readout_rows(self) -> tuple[ReadoutRows, ReadoutRows] | None:
        """The rows the read-out refits on (:func:`readout_rows`), or None without a read-out."""
        if self.config.gain_model == "none":
            return None
        return readout_rows(self.source, self.train_idx, self.val_idx, self.config.seed)

    def _finish(self) -> SelectionTrace:
        """Close the trace: stopped early or not, the schedule's record, the final callback."""
        trace, schedule = self.trace, self.schedule
        trace.stopped_early = len(trace.steps) < self.k
        if trace.stopped_early:
            trace.settings["stop_reason"] = self.stop_reason or "stopped"
        trace.settings.update(schedule.summary())
        if self.config.epochs is not None:
            trace.settings["epochs"] = int(self.config.epochs)
        if self.callback and self.rank == 0:
            self.callback(schedule.step, schedule.step, "stopped early" if trace.stopped_early else "done")
        return trace
