"""Sequential Attention (Yasuda et al., ICLR 2023), in PyTorch.

Greedy forward selection done inside one training run:

1. one trainable logit per feature, initialised N(0, 1e-5);
2. attention weights = softmax over the *unselected* candidates (they sum to 1);
   selected features get weight exactly 1, banned features 0;
3. the weights multiply the (batch-normalised) inputs of the model;
4. training = a dense warm-up (all weights 1), then one phase per pick; at
   the end of each phase the candidate with the largest attention weight is
   selected and the logits are re-initialised. By default the warm-up and
   each phase last until convergence (see :mod:`seqattn.schedule`);
   ``epochs=N`` gives the reference's fixed schedule (10% warm-up, k equal phases).

Deliberate deviation from the reference code: the reference selects at the
*start* of each phase, so its first pick comes from untrained logits. We
select at the *end* of each phase so every pick is trained;
``selection_point="start"`` restores the reference behaviour.

Feature groups (:mod:`seqattn.data.groups`): with groups there is one logit per
*group*, and the group's attention weight multiplies all of its columns (a
one-hot text column, a value with its missing-indicator, a gene set). The
softmax, selection and re-initialisation are unchanged: they run over groups,
and the weights are expanded to columns just before they multiply the inputs.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from seqattn import distributed
from seqattn.data import Dataset, DataError, check_pinned_banned, encode_target, infer_task, split_indices, validate_k
from seqattn.data.stream import BackedRows, BatchStream, ReadoutRows, as_row_source, standardisation
from seqattn.device import describe_device, resolve_device, torch_threads
from seqattn.models import DEFAULT_HIDDEN, TrainConfig, build_model
from seqattn.schedule import PHASE_MAX_FACTOR, WARMUP_FRACTION, ConvergenceSchedule, FixedSchedule, Probe
from seqattn.scoring import MAX_REFIT_ROWS, metric_name, subset_metric
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
    import os

    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if n_inputs * hidden <= SMALL_NETWORK_SIZE or cores <= FEW_CORES or world_size > 1:
        return 1
    return None
#: Adam beyond this only diverges (and float32 state can overflow): refuse it up front.
MAX_LEARNING_RATE = 10.0
#: The read-out refits on at most this many validation rows (and MAX_REFIT_ROWS training rows),
#: held in memory once, so its cost and memory do not grow with the number of cells.
MAX_READOUT_VAL_ROWS = 10_000


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

    def weights(self, dense: bool = False) -> torch.Tensor:
        """Input weights: 1 for every usable feature in warm-up, else softmax + selected (=1)."""
        if dense:
            return self._dense
        return self._to_columns(self.attention() + self._fixed)

    @torch.no_grad()
    def select(self) -> tuple[int, np.ndarray]:
        """Pick the candidate with the largest attention; return it and the score vector."""
        scores = self.attention().detach().cpu().double().numpy()
        scores[~self.candidates.cpu().numpy()] = np.nan
        feature = int(np.nanargmax(scores))
        self.selected[feature] = True
        self.reset_logits()
        self._refresh()
        return feature, scores


class _MaskedNet(nn.Module):
    """Network + attention mask as one module, so DistributedDataParallel all-reduces the
    logits' gradients like any other parameter's."""

    def __init__(self, net: nn.Module, mask: SequentialAttention):
        super().__init__()
        self.net, self.mask = net, mask

    def forward(self, x: torch.Tensor, dense: bool = False) -> torch.Tensor:
        return self.net(x, self.mask.weights(dense=dense))


class SequentialAttentionSelector(SelectorMixin, BaseEstimator):
    """Feature selector (scikit-learn API) that runs Sequential Attention.

    Parameters
    ----------
    n_features_to_select : number of features SA picks, *in addition* to
        ``pinned`` ones. ``None`` picks half of the features.
    task : ``"auto"`` (from ``y``), ``"classification"`` or ``"regression"``.
    model : ``"mlp"`` (BN → Linear(hidden) → ReLU → Linear) or ``"linear"``
        (ℓ2-regularised linear model; its picks coincide with OMP's on least
        squares).
    epochs : ``None`` (default): a budget that follows convergence
        (:class:`~seqattn.schedule.ConvergenceSchedule`): the dense warm-up runs
        until the validation loss stops improving, each phase until the
        attention has separated (a leader ≥ 2× the uniform share and clear of
        the other candidates, for 10 steps), between ``min_steps_per_phase``
        and ``max_steps_per_phase`` optimizer steps. ``epochs=N``: exactly N epochs, 10% warm-up, k equal phases.
    batch_size, learning_rate, min_steps_per_phase : ``None`` means the
        model's default: MLP 128 / 3e-3 / 10; linear full-batch (≤1024) / 0.05 / 400
        (the linear model must converge within each phase for the OMP link).
    attention_learning_rate : Adam learning rate of the attention logits;
        ``None``: 0.1 for the MLP (the logits must move by ~0.7 to double a
        share, which the network's 3e-3 takes hundreds of steps to do), the
        model's learning rate for the linear model.
    max_steps_per_phase : cap of an automatic phase (``None``: 6 × the minimum).
    l2 : linear model only: ℓ2 penalty on the coefficients of the *candidate*
        (attention-weighted) features. Selected features are refit without
        penalty, as in OMP; the penalty on the Hadamard product ``w ⊙ β`` acts
        like a squared-ℓ1 penalty, so one candidate wins per phase.
    selection_point : ``"end"`` (default: pick after training each phase) or
        ``"start"`` (the reference code: pick at the start of each phase).
    num_threads : torch CPU threads during the fit; ``None`` follows
        :func:`auto_threads`: 1 for small networks (inputs × hidden ≤ 200k), on
        machines with ≤ 2 cores (measured: 2 threads were 2–17× slower there,
        also at 20k genes) and per process when several share the cores; torch's
        default otherwise.
    pinned / banned : feature indices that start selected / are never used
        (group indices when ``groups`` is set).
    groups : selection units spanning several columns: a mapping
        ``{name: [column indices]}`` or a :class:`~seqattn.data.groups.FeatureGroups`;
        columns in no group are units of one. One logit per group; its weight
        multiplies all the group's columns. ``fit_dataset`` uses the data set's
        own groups when this is ``None``.
    validation_fraction : held out to report the validation metric per step
        (0 trains on everything and reports a training metric).
    gain_model : model refit on S_t to report the metric and marginal gain of
        each pick: ``"linear"`` (fast), ``"mlp"`` (sees interactions such as XOR)
        or ``"none"`` (no read-out; fastest). It only reports; it never changes the picks.
    max_seconds : wall-clock limit on training; when it is hit, training stops
        as if Stop were pressed (picks so far kept, ``trace_.stopped_early`` set,
        ``trace_.settings["stop_reason"] == "time limit"``). ``None``: no limit.
    chunk_rows : rows per chunk of the mini-batch order (see
        :mod:`seqattn.data.stream`): ``None`` = one chunk (a plain shuffle) for
        in-memory data, ~32 MB per disk read for backed data. Same value, same
        batches, whether the rows are in memory or on disk.

    Memory (float32, ``d`` inputs, ``h`` hidden units, global batch ``B``,
    ``W`` processes): beyond the input itself (in memory) or about three chunks
    (backed: the chunk being batched, the next one and its raw read; a chunk is
    ``chunk_rows`` × bytes per row, ~32 MB by default), a fit holds
    ``16·d·(h+2)`` bytes of parameters, gradients and Adam moments, about
    ``5·4·(B/W)·d`` bytes of activations for a batch, the read-out rows
    (≤ MAX_REFIT_ROWS + MAX_READOUT_VAL_ROWS rows as CSR or dense), the
    warm-up's check rows (≤ VALIDATION_VALUES floats) and ~50 bytes per row of
    labels and row indices — no standardised or split copy of the data. Backed
    rows scattered over the file are read in spans of at most one chunk, so
    with a fixed chunk size only the last term grows with the number of cells.
    On CUDA, dense in-memory input is copied to the device once (raw,
    standardised per batch there).

    Distributed: when a torch.distributed process group with several ranks is
    running (``torchrun`` or :func:`seqattn.distributed.spawn`), the network and
    the attention logits train under DistributedDataParallel, each rank reading
    its share of every global batch; batch norm uses global-batch statistics;
    every pick is checked identical on all ranks; only rank 0 reports progress.
    """

    def __init__(
        self,
        n_features_to_select: int | None = None,
        *,
        task: str = "auto",
        model: str = "mlp",
        hidden: int = DEFAULT_HIDDEN,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        lr_decay: float = 0.1,
        l2: float = 1.0,
        min_steps_per_phase: int | None = None,
        max_steps_per_phase: int | None = None,
        attention_learning_rate: float | None = None,
        selection_point: str = "end",
        validation_fraction: float = 0.2,
        gain_model: str = "linear",
        device: str = "auto",
        num_threads: int | None = None,
        random_state: int | None = 0,
        pinned: Sequence[int] = (),
        banned: Sequence[int] = (),
        max_seconds: float | None = None,
        groups: Any = None,
        chunk_rows: int | None = None,
    ):
        self.n_features_to_select = n_features_to_select
        self.task = task
        self.model = model
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.l2 = l2
        self.min_steps_per_phase = min_steps_per_phase
        self.max_steps_per_phase = max_steps_per_phase
        self.attention_learning_rate = attention_learning_rate
        self.selection_point = selection_point
        self.validation_fraction = validation_fraction
        self.gain_model = gain_model
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state
        self.pinned = pinned
        self.max_seconds = max_seconds
        self.banned = banned
        self.groups = groups
        self.chunk_rows = chunk_rows

    # ------------------------------------------------------------ validation
    def _check_params(self, n_features: int, feature_names: Sequence[str] | None = None
                      ) -> tuple[int, list[int], list[int]]:
        pinned, banned = check_pinned_banned(n_features, self.pinned, self.banned, feature_names)
        n_candidates = n_features - len(pinned) - len(banned)
        k = self.n_features_to_select
        if k is None:
            k = max(1, n_candidates // 2)
        k = validate_k(k, n_features, n_pinned=len(pinned), n_banned=len(banned), name="n_features_to_select")
        if self.model not in ("mlp", "linear"):
            raise ValueError(f"model must be 'mlp' or 'linear', got {self.model!r}.")
        if self.selection_point not in ("end", "start"):
            raise ValueError(f"selection_point must be 'end' or 'start', got {self.selection_point!r}.")
        if self.epochs is not None and (not isinstance(self.epochs, (int, np.integer)) or self.epochs < 1):
            raise ValueError(f"epochs must be a positive integer (or None for automatic), got {self.epochs!r}.")
        for name in ("learning_rate", "batch_size", "hidden", "min_steps_per_phase", "max_steps_per_phase",
                     "attention_learning_rate"):
            value = getattr(self, name)
            if value is None and name != "hidden":
                continue
            if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
        if self.gain_model not in ("linear", "mlp", "none"):
            raise ValueError(f"gain_model must be 'linear', 'mlp' or 'none', got {self.gain_model!r}.")
        chunk = self.chunk_rows
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1):
            raise ValueError(f"chunk_rows must be a positive integer (or None for automatic), got {chunk!r}.")
        if not 0.0 <= self.validation_fraction < 0.9:
            raise ValueError(f"validation_fraction must be in [0, 0.9), got {self.validation_fraction!r}.")
        for name in ("learning_rate", "attention_learning_rate"):
            value = getattr(self, name)
            if value is not None and value > MAX_LEARNING_RATE:
                raise ValueError(f"{name}={value!r} is far above any useful value for Adam "
                                 f"(at most {MAX_LEARNING_RATE}; typical 1e-3 to 0.05).")
        if not (isinstance(self.lr_decay, (int, float, np.number)) and 0 < self.lr_decay <= 1):
            raise ValueError(f"lr_decay (factor on the learning rate over the run) must be in (0, 1], "
                             f"got {self.lr_decay!r}.")
        limit = self.max_seconds
        if limit is not None and not (isinstance(limit, (int, float, np.number)) and math.isfinite(limit) and limit > 0):
            raise ValueError(f"max_seconds must be a positive finite number (or None), got {limit!r}.")
        if not (isinstance(self.l2, (int, float, np.number)) and math.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a finite number ≥ 0, got {self.l2!r}.")
        seed = self.random_state
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= seed < 2**32):
            raise ValueError(f"random_state must be None or a whole number in [0, 2**32), got {seed!r}.")
        return int(k), pinned, banned

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, *, feature_names: Sequence[str] | None = None,
            callback: ProgressCallback | None = None, dataset_name: str = "") -> "SequentialAttentionSelector":
        """Run SA on ``X`` (array, DataFrame or CSR matrix) and target ``y``.

        ``callback(step, total, message)`` is called as training progresses; if
        it returns ``True`` training stops and the picks made so far are kept
        (``trace_.stopped_early`` is set).
        """
        if isinstance(X, BackedRows):  # rows stay on disk; the loader checked the values
            self.n_features_in_ = X.shape[1]
            y = np.asarray(y)
        elif sp.issparse(X):
            X = sp.csr_matrix(X, dtype=np.float32)
            if not np.all(np.isfinite(X.data)):
                raise ValueError("Input X contains NaN or infinity.")
            self.n_features_in_ = X.shape[1]
            y = np.asarray(y)
        else:
            X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=False, ensure_min_samples=2)
        if feature_names is None:
            feature_names = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                             else [f"x{i}" for i in range(X.shape[1])])
        units = self._units(list(map(str, feature_names)), None)
        k, pinned, banned = self._check_params(X.shape[1] if units is None else units.n_groups,
                                               feature_names if units is None else units.names)
        task = infer_task(y) if self.task == "auto" else self.task
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'auto', 'classification' or 'regression', got {self.task!r}.")
        y_enc, classes = encode_target(y, task)
        if task == "classification" and len(classes) < 2:
            raise ValueError("The target has a single class; classification needs at least two.")
        self.task_ = task
        self.classes_ = np.array(classes) if classes is not None else None
        self._fit_arrays(X, y_enc, k, pinned, banned, list(map(str, feature_names)), callback, dataset_name, units)
        return self

    def _units(self, feature_names: list[str], dataset_groups: Any) -> Any:
        """The selection units: ``groups`` if given, else the data set's groups, else ``None`` (columns)."""
        from seqattn.data.groups import FeatureGroups

        groups = self.groups if self.groups is not None else dataset_groups
        if groups is None:
            return None
        if not isinstance(groups, FeatureGroups):
            groups = FeatureGroups.from_mapping(groups, feature_names)
        if groups.n_columns != len(feature_names):
            raise DataError(f"groups cover {groups.n_columns} columns but X has {len(feature_names)}.")
        return groups

    def fit_dataset(self, dataset: Dataset, callback: ProgressCallback | None = None) -> "SequentialAttentionSelector":
        """Fit on a :class:`~seqattn.data.Dataset`, keeping its names and task."""
        if self.task not in ("auto", dataset.task):
            raise DataError(f"Selector task {self.task!r} does not match the data set's task {dataset.task!r}.")
        self.n_features_in_ = dataset.n_features
        self.task_ = dataset.task
        self.classes_ = np.array(dataset.class_names) if dataset.class_names else None
        if dataset.task == "classification" and dataset.n_classes < 2:
            raise DataError("The target has a single class; classification needs at least two.")
        units = self._units(list(dataset.feature_names), dataset.groups)
        k, pinned, banned = self._check_params(dataset.n_features if units is None else units.n_groups,
                                               dataset.feature_names if units is None else units.names)
        self._fit_arrays(dataset.X, dataset.y, k, pinned, banned, dataset.feature_names, callback, dataset.name,
                         units)
        return self

    def _fit_arrays(self, X, y: np.ndarray, k: int, pinned: list[int], banned: list[int],
                    feature_names: list[str], callback: ProgressCallback | None, dataset_name: str,
                    units: Any = None) -> None:
        start = time.perf_counter()
        column_names = list(feature_names)
        expand = (lambda picked: list(picked)) if units is None else units.expand
        if units is not None:  # the trace, picks and progress speak group names
            feature_names = list(units.names)
        device = resolve_device(self.device)
        seed = 0 if self.random_state is None else int(self.random_state)
        task = self.task_
        n_outputs = int(y.max()) + 1 if task == "classification" else 1

        if self.validation_fraction > 0:
            train_idx, val_idx, _ = split_indices(X.shape[0], y if task == "classification" else None,
                                                  self.validation_fraction, 0.0, seed)
        else:  # train on everything; the per-step metric is then a training metric
            train_idx = val_idx = np.arange(X.shape[0])
        if len(train_idx) < 2:  # batch normalisation needs two rows per mini-batch
            raise DataError(f"Only {len(train_idx)} training sample(s) after holding out "
                            f"{len(val_idx)} for validation; SA needs at least 2. Use more samples.")
        source = as_row_source(X)  # no split copies: everything below indexes rows of X
        mean, scale = standardisation(source, train_idx, self.chunk_rows)
        target_dtype = torch.long if task == "classification" else torch.float32
        y_train = y[train_idx]
        if task == "regression":  # standardise the target so one learning rate fits all scales
            y_mu, y_sd = float(y_train.mean()), float(y_train.std()) or 1.0
            y_fit = ((y - y_mu) / y_sd).astype(np.float32)
        else:
            y_fit = y
        rank, world = distributed.rank(), distributed.world_size()
        device = distributed.local_device(device)

        linear = self.model == "linear"
        batch_size = self.batch_size or (1024 if linear else TrainConfig.batch_size)
        batch_size = int(min(batch_size, len(train_idx)))
        if world > 1 and batch_size % world:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the number of processes ({world}) "
                             "so each rank gets an equal share of every batch; choose another batch_size.")
        data = BatchStream(source, train_idx, y_fit, mean, scale, batch_size=batch_size, device=device,
                           target_dtype=target_dtype, chunk_rows=self.chunk_rows, rank=rank, world_size=world)
        learning_rate = float(self.learning_rate or (0.05 if linear else TrainConfig.learning_rate))
        attention_lr = float(self.attention_learning_rate or (learning_rate if linear else ATTENTION_LEARNING_RATE))
        min_steps_per_phase = int(self.min_steps_per_phase or (400 if linear else MLP_MIN_PHASE_STEPS))
        schedule = self._schedule(k, data.batches_per_epoch, min_steps_per_phase)
        # the warm-up's convergence check: a fixed random subset of the validation rows, read once
        n_check = max(64, min(VALIDATION_ROWS, VALIDATION_VALUES // max(1, X.shape[1])))
        check_rows = val_idx if len(val_idx) <= n_check else np.sort(
            np.random.default_rng(seed + 2).choice(val_idx, n_check, replace=False))

        threads = self.num_threads
        if threads is None:
            threads = auto_threads(X.shape[1], int(self.hidden), world)
        with torch.random.fork_rng(devices=[]), torch_threads(threads, device):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            net = build_model(self.model, X.shape[1], n_outputs, int(self.hidden)).to(device)
            mask = SequentialAttention(len(feature_names), pinned, banned, generator,
                                       None if units is None else units.column_group()).to(device)
            model: nn.Module = _MaskedNet(net, mask)
            if world > 1:  # gradients (logits included) all-reduced; batch norm on the global batch
                distributed.sync_batch_norm(net)
                model = nn.parallel.DistributedDataParallel(
                    model, device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=True)  # the logits sit out the dense warm-up
            params = [{"params": net.parameters(), "weight_decay": 0.0},
                      {"params": [mask.logits], "weight_decay": 0.0, "lr": attention_lr}]
            optimizer = torch.optim.Adam(params, lr=learning_rate)
            # a fixed schedule decays the learning rate by lr_decay over the run; the automatic one,
            # whose length is not known in advance, keeps it constant
            gamma = float(self.lr_decay) ** (1.0 / max(1, schedule.total_steps)) if self.epochs else 1.0
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
            loss_fn = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
            rng = np.random.default_rng(seed)

            settings = self._settings(k, batch_size, learning_rate, attention_lr)
            settings.update(chunk_rows=data.chunk_rows, world_size=world, backed=bool(source.is_backed))
            trace = SelectionTrace(
                method="sa", feature_names=feature_names, dataset=dataset_name, task=task,
                metric_name=metric_name(task), device=describe_device(device), pinned=pinned, banned=banned,
                settings=settings,
                groups=None if units is None else [list(c) for c in units.columns],
                column_names=None if units is None else column_names,
            )
            self.trace_ = trace  # grows pick by pick: callbacks (the notebook live view) read the picks so far
            readout = self._readout_rows(source, train_idx, val_idx, seed) if rank == 0 else None

            def read_out(features: list[int]) -> float | None:
                """Rank 0 refits on the read-out rows; every rank gets its answer."""
                metric = None
                if self.gain_model != "none" and readout is not None:
                    columns = expand(features)
                    (train_rows, val_rows), (y_tr, y_va) = readout, (y[readout[0].rows], y[readout[1].rows])
                    metric = subset_metric(train_rows.columns(columns), y_tr, val_rows.columns(columns), y_va,
                                           list(range(len(columns))), task, seed, self.gain_model)
                return distributed.broadcast_object(metric)

            check: list[torch.Tensor] = []  # read on the first check only (a fixed schedule never checks)

            @torch.no_grad()
            def validation_loss() -> float:
                """Loss of the dense network on the check rows (identical on every rank)."""
                if not check:  # backed data: one streaming pass, not the span of disk rows the check rows cover
                    block = source.to_memory(check_rows) if source.is_backed else source.read(check_rows)
                    xc = torch.as_tensor(block.toarray() if sp.issparse(block) else np.asarray(block),
                                         dtype=torch.float32, device=device)
                    del block
                    check.extend([xc.sub_(data.mean).div_(data.scale), torch.as_tensor(
                        np.asarray(y_fit)[check_rows], dtype=target_dtype, device=device)])
                net.eval()
                total = 0.0
                for lo in range(0, len(check_rows), 256):  # small slices: few activations alive at once
                    out = net(check[0][lo:lo + 256], mask.weights(dense=True))
                    yb = check[1][lo:lo + 256]
                    total += float(loss_fn(out.squeeze(-1) if task == "regression" else out, yb)) * len(yb)
                net.train()
                return total / len(check_rows)

            def attention() -> np.ndarray:
                weights = mask.attention().detach().cpu().double().numpy()
                weights[~mask.candidates.cpu().numpy()] = np.nan
                return weights

            probe = Probe(validation_loss, attention)
            trace.base_metric = read_out(pinned)
            previous_metric = trace.base_metric
            report_every = 10
            stop = timed_out = False

            def make_pick() -> bool:
                nonlocal previous_metric
                net.eval()
                if not bool(torch.isfinite(mask.logits).all()):
                    raise ValueError("Training diverged (the attention logits became NaN/inf); "
                                     "lower the learning rate (or attention_learning_rate) and run again.")
                feature, scores = mask.select()
                if world > 1:
                    distributed.check_same_on_all_ranks(feature, f"pick {schedule.picks + 1}")
                _reset_adam_state(optimizer, mask.logits)
                chosen = pinned + trace.selected + [feature]
                metric = read_out(chosen)
                gain = None if metric is None or previous_metric is None else metric - previous_metric
                trace.add_step(feature, scores, gain, metric, time.perf_counter() - start)
                previous_metric = metric
                schedule.picked()
                net.train()
                reading = "" if metric is None else f" ({trace.metric_name} {metric:.3f})"
                message = (f"pick {schedule.picks}/{k}: {feature_names[feature]}{reading}, "
                           f"{trace.steps[-1].confidence:.1f}× uniform")
                wants_stop = bool(rank == 0 and callback and callback(schedule.step, schedule.estimated_total(),
                                                                      message))
                return distributed.any_rank(wants_stop, device) if world > 1 else wants_stop

            net.train()
            while not stop and not schedule.finished:  # epochs until the schedule says the picks are done
                for xb, yb in data.epoch(rng):
                    while schedule.pick_due() and not stop:
                        stop = make_pick()
                    if stop or schedule.finished:
                        break
                    dense = schedule.dense
                    out = model(xb, dense=dense)
                    loss = loss_fn(out.squeeze(-1) if task == "regression" else out, yb)
                    if self.model == "linear" and self.l2 > 0:
                        # ℓ2 on the attention-weighted (candidate) coefficients only: selected
                        # features are refit freely, as in OMP's least-squares step.
                        loss = loss + float(self.l2) * (net.linear.weight.pow(2) * mask.candidate_indicator).sum()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if dense:
                        mask.logits.grad = None  # logits stay untrained during the dense warm-up
                    optimizer.step()
                    scheduler.step()
                    schedule.after_step(probe)  # the same decisions on every rank (synced model and logits)
                    step = schedule.step
                    if world > 1:  # ranks agree on stopping at the report points only (one collective)
                        if step % report_every == 0:
                            timed_out = distributed.any_rank(self.max_seconds is not None and
                                                             time.perf_counter() - start > self.max_seconds, device)
                            stop = timed_out or self._report(callback, rank, schedule, loss, collective=device)
                        if stop:
                            break
                        continue
                    if self.max_seconds is not None and time.perf_counter() - start > self.max_seconds:
                        stop = timed_out = True
                        break
                    if callback and step % report_every == 0:
                        stop = self._report(callback, rank, schedule, loss)
                        if stop:
                            break
                while schedule.pick_due() and not stop:  # picks that fall exactly on the last step
                    stop = make_pick()

        trace.stopped_early = len(trace.steps) < k
        if trace.stopped_early:
            trace.settings["stop_reason"] = "time limit" if timed_out else "stopped"
        self.trace_ = trace
        self.model_ = net.cpu().eval()
        self.attention_ = mask.cpu()
        self.selected_features_ = np.array(expand(pinned + trace.selected), dtype=np.int64)
        trace.settings.update(schedule.summary())
        if self.epochs is not None:
            trace.settings["epochs"] = int(self.epochs)
        self.device_ = str(device)
        self.n_iter_ = schedule.step
        if callback and rank == 0:
            callback(schedule.step, schedule.step, "stopped early" if trace.stopped_early else "done")

    @staticmethod
    def _report(callback: ProgressCallback | None, rank: int, schedule, loss: torch.Tensor,
                collective: torch.device | None = None) -> bool:
        """Progress to the callback (rank 0 only); True when it asks to stop (agreed by all ranks when
        ``collective`` names the training device)."""
        wants_stop = False
        if callback and rank == 0:
            wants_stop = bool(callback(schedule.step, schedule.estimated_total(),
                                       f"{schedule.phase_label()}, loss {loss.item():.4f}"))
        return distributed.any_rank(wants_stop, collective) if collective is not None else wants_stop

    def _readout_rows(self, source, train_idx: np.ndarray, val_idx: np.ndarray,
                      seed: int) -> tuple[ReadoutRows, ReadoutRows] | None:
        """The rows the read-out refits on: a fixed subsample, as subset_metric would draw it."""
        if self.gain_model == "none":
            return None
        train_rows = train_idx
        if len(train_rows) > MAX_REFIT_ROWS:
            train_rows = train_idx[np.random.default_rng(seed).choice(len(train_idx), MAX_REFIT_ROWS, replace=False)]
        val_rows = val_idx
        if len(val_rows) > MAX_READOUT_VAL_ROWS:
            val_rows = np.sort(np.random.default_rng(seed + 1).choice(val_idx, MAX_READOUT_VAL_ROWS, replace=False))
        return ReadoutRows(source, train_rows), ReadoutRows(source, val_rows)

    def _schedule(self, k: int, batches_per_epoch: int, min_steps_per_phase: int):
        """``epochs=N``: the fixed schedule of exactly N epochs; ``None``: the convergence-driven one."""
        if self.epochs is not None:
            total = int(self.epochs) * batches_per_epoch
            if (total - int(WARMUP_FRACTION * total)) / k < 1:
                raise ValueError(
                    f"{total} optimizer steps cannot hold {k} selection phases; raise epochs "
                    f"to at least {math.ceil(k / (1 - WARMUP_FRACTION) / batches_per_epoch) + 1}.")
            return FixedSchedule(k, total, self.selection_point)
        max_steps = int(self.max_steps_per_phase or PHASE_MAX_FACTOR * min_steps_per_phase)
        if max_steps < min_steps_per_phase:
            raise ValueError(f"max_steps_per_phase={max_steps} is below min_steps_per_phase={min_steps_per_phase}.")
        return ConvergenceSchedule(k, min_steps_per_phase, max_steps, self.selection_point)

    def _settings(self, k: int, batch_size: int, learning_rate: float, attention_lr: float) -> dict[str, Any]:
        return {
            "k": k, "model": self.model, "hidden": self.hidden, "epochs": self.epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "attention_learning_rate": attention_lr, "lr_decay": self.lr_decay,
            "l2": self.l2, "selection_point": self.selection_point,
            "validation_fraction": self.validation_fraction, "gain_model": self.gain_model, "random_state": self.random_state,
            "requested_device": self.device, "num_threads": self.num_threads, "max_seconds": self.max_seconds,
        }

    # ------------------------------------------------------- selector API
    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "selected_features_")
        support = np.zeros(self.n_features_in_, dtype=bool)
        support[self.selected_features_] = True
        return support

    def transform(self, X):
        """Keep the selected columns (pinned ones included), in the original column order."""
        check_is_fitted(self, "selected_features_")
        if sp.issparse(X):
            return sp.csr_matrix(X)[:, self._get_support_mask()]
        return super().transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = True
        tags.non_deterministic = False
        return tags


def _reset_adam_state(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> None:
    """Forget Adam's moments for re-initialised logits so a new phase starts fresh."""
    optimizer.state.pop(param, None)


def run_sa(dataset: Dataset, k: int, *, device: str = "auto", random_state: int | None = 0,
           callback: ProgressCallback | None = None, **params: Any) -> SelectionTrace:
    """Registry runner: ``params`` are :class:`SequentialAttentionSelector` parameters (checked by the registry)."""
    selector = SequentialAttentionSelector(k, device=device, random_state=random_state, **params)
    return selector.fit_dataset(dataset, callback=callback).trace_


def quick_start_settings(dataset: Dataset) -> dict[str, Any]:
    """Settings for a first SA run on ``dataset``: ``run_method(dataset, "sa", **settings)`` keywords.

    The budget is the automatic one (``epochs=None``: until converged), the same for every data set — no
    per-data-set epoch table; ``k`` is 10, or half the features on narrow data (at least one left unpicked).
    """
    n_units = dataset.n_groups  # features, or feature groups where the data set defines them
    k = max(1, min(10, n_units // 2, n_units - 1))
    return {"k": k, "epochs": None, "hidden": TrainConfig.hidden, "learning_rate": TrainConfig.learning_rate,
            "random_state": 0, "model": "mlp"}
