"""Sequential Attention (Yasuda et al., ICLR 2023), in PyTorch.

Greedy forward selection done inside one training run:

1. one trainable logit per feature, initialised N(0, 1e-5);
2. attention weights = softmax over the *unselected* candidates (they sum to 1);
   selected features get weight exactly 1, banned features 0;
3. the weights multiply the (batch-normalised) inputs of the model;
4. training = 10% dense warm-up (all weights 1), then k equal phases in
   optimizer steps; at the end of each phase the candidate with the largest
   attention weight is selected and the logits are re-initialised.

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

from seqattn.data import (Dataset, DataError, check_pinned_banned, column_mean_var, encode_target, infer_task,
                          safe_scale, split_indices, validate_k)
from seqattn.device import describe_device, resolve_device, torch_threads
from seqattn.models import DEFAULT_HIDDEN, TrainConfig, build_model
from seqattn.scoring import metric_name, subset_metric
from seqattn.trace import SelectionTrace

ProgressCallback = Callable[[int, int, str], Any]
LOGIT_INIT_STD = 1e-5
WARMUP_FRACTION = 0.1
SMALL_NETWORK_SIZE = 200_000  # inputs × hidden units below which one CPU thread is fastest
#: Adam beyond this only diverges (and float32 state can overflow): refuse it up front.
MAX_LEARNING_RATE = 10.0


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


class _Batches:
    """Mini-batches on the device; sparse rows are densified one batch at a time."""

    def __init__(self, X, y: np.ndarray, mean: np.ndarray, scale: np.ndarray, device: torch.device,
                 target_dtype: torch.dtype):
        self.X, self.y, self.device = X, y, device
        self.sparse = sp.issparse(X)
        self.mean = torch.as_tensor(mean, device=device)
        self.scale = torch.as_tensor(scale, device=device)
        self.target_dtype = target_dtype
        if not self.sparse:  # small enough to live on the device whole
            self.X_dev = (torch.as_tensor(np.asarray(X), device=device) - self.mean) / self.scale
        self.y_dev = torch.as_tensor(y, device=device, dtype=target_dtype)

    def __len__(self) -> int:
        return self.X.shape[0]

    def get(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(rows, device=self.device)
        if self.sparse:
            block = torch.as_tensor(self.X[rows].toarray(), device=self.device)
            xb = (block - self.mean) / self.scale
        else:
            xb = self.X_dev[index]
        return xb, self.y_dev[index]


def _standardisation(X) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales without densifying sparse data; constant columns get scale 1."""
    mean, var = column_mean_var(X)
    scale = safe_scale(np.sqrt(var))
    return mean.astype(np.float32), scale.astype(np.float32)


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
    epochs : training epochs; ``None`` chooses enough for ``min_steps_per_phase``
        optimizer steps per phase (at least 10 epochs).
    batch_size, learning_rate, min_steps_per_phase : ``None`` means the
        model's default: MLP 128 / 3e-3 / 30; linear full-batch (≤1024) / 0.05 / 400
        (the linear model must converge within each phase for the OMP link).
    l2 : linear model only: ℓ2 penalty on the coefficients of the *candidate*
        (attention-weighted) features. Selected features are refit without
        penalty, as in OMP; the penalty on the Hadamard product ``w ⊙ β`` acts
        like a squared-ℓ1 penalty, so one candidate wins per phase.
    selection_point : ``"end"`` (default: pick after training each phase) or
        ``"start"`` (the reference code: pick at the start of each phase).
    num_threads : torch CPU threads during the fit; ``None`` uses 1 for small
        networks (inputs × hidden ≤ 200k, where extra threads only add
        overhead) and torch's default otherwise.
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

    # ------------------------------------------------------------ validation
    def _check_params(self, n_features: int) -> tuple[int, list[int], list[int]]:
        pinned, banned = check_pinned_banned(n_features, self.pinned, self.banned)
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
        for name in ("learning_rate", "batch_size", "hidden", "min_steps_per_phase"):
            value = getattr(self, name)
            if value is None and name != "hidden":
                continue
            if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
        if self.gain_model not in ("linear", "mlp", "none"):
            raise ValueError(f"gain_model must be 'linear', 'mlp' or 'none', got {self.gain_model!r}.")
        if not 0.0 <= self.validation_fraction < 0.9:
            raise ValueError(f"validation_fraction must be in [0, 0.9), got {self.validation_fraction!r}.")
        if self.learning_rate is not None and self.learning_rate > MAX_LEARNING_RATE:
            raise ValueError(f"learning_rate={self.learning_rate!r} is far above any useful value for Adam "
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
        if sp.issparse(X):
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
        k, pinned, banned = self._check_params(X.shape[1] if units is None else units.n_groups)
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
        k, pinned, banned = self._check_params(dataset.n_features if units is None else units.n_groups)
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
        X_train, y_train, X_val, y_val = X[train_idx], y[train_idx], X[val_idx], y[val_idx]
        mean, scale = _standardisation(X_train)
        target_dtype = torch.long if task == "classification" else torch.float32
        if task == "regression":  # standardise the target so one learning rate fits all scales
            y_mu, y_sd = float(y_train.mean()), float(y_train.std()) or 1.0
            y_fit = ((y_train - y_mu) / y_sd).astype(np.float32)
        else:
            y_fit = y_train
        data = _Batches(X_train, y_fit, mean, scale, device, target_dtype)

        linear = self.model == "linear"
        batch_size = self.batch_size or (1024 if linear else TrainConfig.batch_size)
        batch_size = int(min(batch_size, len(train_idx)))
        learning_rate = float(self.learning_rate or (0.05 if linear else TrainConfig.learning_rate))
        min_steps_per_phase = int(self.min_steps_per_phase or (400 if linear else 30))
        batches_per_epoch = max(1, len(train_idx) // batch_size)
        epochs = self.epochs
        if epochs is None:
            needed = min_steps_per_phase * k / (1 - WARMUP_FRACTION)
            epochs = max(10, math.ceil(needed / batches_per_epoch))
        total_steps = epochs * batches_per_epoch
        warmup_steps = int(WARMUP_FRACTION * total_steps)
        phase_steps = (total_steps - warmup_steps) / k
        if phase_steps < 1:
            raise ValueError(
                f"{total_steps} optimizer steps cannot hold {k} selection phases; raise epochs "
                f"to at least {math.ceil(k / (1 - WARMUP_FRACTION) / batches_per_epoch) + 1}."
            )
        # Optimizer step at which phase j (0-based) ends; a pick happens there.
        if self.selection_point == "end":
            pick_steps = [warmup_steps + round((j + 1) * phase_steps) for j in range(k)]
        else:
            pick_steps = [warmup_steps + round(j * phase_steps) for j in range(k)]

        threads = self.num_threads
        if threads is None and X.shape[1] * int(self.hidden) <= SMALL_NETWORK_SIZE:
            threads = 1
        with torch.random.fork_rng(devices=[]), torch_threads(threads, device):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            net = build_model(self.model, X.shape[1], n_outputs, int(self.hidden)).to(device)
            mask = SequentialAttention(len(feature_names), pinned, banned, generator,
                                       None if units is None else units.column_group()).to(device)
            params = [{"params": net.parameters(), "weight_decay": 0.0},
                      {"params": [mask.logits], "weight_decay": 0.0}]
            optimizer = torch.optim.Adam(params, lr=learning_rate)
            gamma = float(self.lr_decay) ** (1.0 / max(1, total_steps))
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
            loss_fn = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
            rng = np.random.default_rng(seed)

            trace = SelectionTrace(
                method="sa", feature_names=feature_names, dataset=dataset_name, task=task,
                metric_name=metric_name(task), device=describe_device(device), pinned=pinned, banned=banned,
                settings=self._settings(k, epochs, total_steps, warmup_steps, batch_size, learning_rate),
                groups=None if units is None else [list(c) for c in units.columns],
                column_names=None if units is None else column_names,
            )
            self.trace_ = trace  # grows pick by pick: callbacks (the notebook live view) read the picks so far

            def read_out(features: list[int]) -> float | None:
                if self.gain_model == "none":
                    return None
                return subset_metric(X_train, y_train, X_val, y_val, expand(features), task, seed, self.gain_model)

            trace.base_metric = read_out(pinned)
            previous_metric = trace.base_metric
            report_every = max(1, total_steps // 100)
            step, next_pick = 0, 0
            stop = timed_out = False

            def make_pick() -> bool:
                nonlocal next_pick, previous_metric
                net.eval()
                if not bool(torch.isfinite(mask.logits).all()):
                    raise ValueError("Training diverged (the attention logits became NaN/inf); "
                                     "lower the learning rate and run again.")
                feature, scores = mask.select()
                _reset_adam_state(optimizer, mask.logits)
                chosen = pinned + trace.selected + [feature]
                metric = read_out(chosen)
                gain = None if metric is None or previous_metric is None else metric - previous_metric
                trace.add_step(feature, scores, gain, metric, time.perf_counter() - start)
                previous_metric = metric
                next_pick += 1
                net.train()
                reading = "" if metric is None else f" ({trace.metric_name} {metric:.3f})"
                message = f"pick {next_pick}/{k}: {feature_names[feature]}{reading}"
                return bool(callback and callback(step, total_steps, message))

            net.train()
            while step < total_steps and not stop:
                order = rng.permutation(len(train_idx))
                for b in range(batches_per_epoch):
                    while next_pick < k and step == pick_steps[next_pick] and not stop:
                        stop = make_pick()
                    if stop or step >= total_steps:
                        break
                    xb, yb = data.get(order[b * batch_size:(b + 1) * batch_size])
                    weights = mask.weights(dense=step < warmup_steps)
                    out = net(xb, weights)
                    loss = loss_fn(out.squeeze(-1) if task == "regression" else out, yb)
                    if self.model == "linear" and self.l2 > 0:
                        # ℓ2 on the attention-weighted (candidate) coefficients only: selected
                        # features are refit freely, as in OMP's least-squares step.
                        loss = loss + float(self.l2) * (net.linear.weight.pow(2) * mask.candidate_indicator).sum()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if step < warmup_steps:
                        mask.logits.grad = None  # logits stay untrained during the dense warm-up
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    if self.max_seconds is not None and time.perf_counter() - start > self.max_seconds:
                        stop = timed_out = True
                        break
                    if callback and step % report_every == 0:
                        phase = "warm-up" if step < warmup_steps else f"phase {min(next_pick + 1, k)}/{k}"
                        stop = bool(callback(step, total_steps, f"{phase}, loss {loss.item():.4f}"))
                        if stop:
                            break
            while next_pick < k and not stop:  # picks that fall exactly on the last step
                stop = make_pick()

        trace.stopped_early = len(trace.steps) < k
        if trace.stopped_early:
            trace.settings["stop_reason"] = "time limit" if timed_out else "stopped"
        self.trace_ = trace
        self.model_ = net.cpu().eval()
        self.attention_ = mask.cpu()
        self.selected_features_ = np.array(expand(pinned + trace.selected), dtype=np.int64)
        self.device_ = str(device)
        self.n_iter_ = step
        if callback:
            callback(total_steps, total_steps, "stopped early" if trace.stopped_early else "done")

    def _settings(self, k: int, epochs: int, total_steps: int, warmup_steps: int, batch_size: int,
                  learning_rate: float) -> dict[str, Any]:
        return {
            "k": k, "model": self.model, "hidden": self.hidden, "epochs": epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "lr_decay": self.lr_decay, "l2": self.l2,
            "total_steps": total_steps, "warmup_steps": warmup_steps, "selection_point": self.selection_point,
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


#: Quick first-run settings per built-in data set (k, epochs): a first click finishes in well
#: under a minute on a 2-core CPU. Anything else gets the generic ones.
QUICK_START = {
    "digits": (10, 20), "mnist_5k": (10, 5), "pbmc68k_reduced": (10, 15), "planted": (8, 20),
    "breast_cancer": (8, 30), "wine": (5, 60), "diabetes": (5, 60),
}
QUICK_START_GENERIC = (10, 20)


def quick_start_settings(dataset: Dataset) -> dict[str, Any]:
    """Settings for a quick first SA run on ``dataset``: ``run_method(dataset, "sa", **settings)`` keywords.

    ``k`` leaves at least one feature unpicked; the rest are the shared MLP defaults (:class:`TrainConfig`).
    """
    k, epochs = QUICK_START.get(dataset.name, QUICK_START_GENERIC)
    return {"k": max(1, min(k, dataset.n_features - 1)), "epochs": epochs, "hidden": TrainConfig.hidden,
            "learning_rate": TrainConfig.learning_rate, "random_state": 0, "model": "mlp"}
