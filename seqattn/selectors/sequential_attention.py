"""Sequential Attention (Yasuda et al., ICLR 2023): the scikit-learn estimator.

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

This module is the estimator: its parameters and their rules (declared once in
``_parameter_constraints``), the input checks, and the fitted attributes. The
training itself — warm-up, phases, picks — reads top to bottom in
:mod:`seqattn.selectors.sa_trainer`.

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

from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from seqattn import distributed
from seqattn.data import Dataset, DataError, TASKS, check_pinned_banned, encode_target, infer_task, validate_k
from seqattn.data.stream import BackedRows
from seqattn.device import resolve_device
from seqattn.models import DEFAULT_HIDDEN, TrainConfig
from seqattn.schedule import PHASE_MAX_FACTOR
from seqattn.selectors.defaults import (CLASS_WEIGHTS, COVERAGE_RULES, COVERAGE_SCORES, DEFAULT_K, SA_MODELS,
                                        default_k)
from seqattn.selectors.sa_trainer import (
    SAConfig,
    SATrainer,
    SelectionUnits,
    SequentialAttention,
    auto_threads,
)
from seqattn.trace import SelectionTrace

__all__ = ["MAX_LEARNING_RATE", "SequentialAttention", "SequentialAttentionSelector", "auto_threads", "default_k",
           "fit_dataset_distributed", "quick_start_settings", "run_sa"]

ProgressCallback = Callable[[int, int, str], Any]
#: Adam beyond this only diverges (and float32 state can overflow): refused up front.
MAX_LEARNING_RATE = 10.0
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_LEARNING_RATE = Interval(Real, 0, MAX_LEARNING_RATE, closed="right")
#: What each parameter is for, added to scikit-learn's "must be …" message so it says how to fix it.
PARAMETER_HINTS = {
    "epochs": "None (the default) trains until the picks have converged; N trains exactly N epochs",
    "learning_rate": "Adam's step size, typically 1e-3 to 0.05; beyond 10 it only diverges",
    "attention_learning_rate": "Adam's step size for the attention logits, typically 0.01 to 0.1",
    "lr_decay": "the factor on the learning rate over a fixed-epochs run (1 = constant)",
    "validation_fraction": "the share of rows held out to check convergence and read out the metric",
    "l2": "the linear model's penalty on candidate coefficients, a finite number ≥ 0",
    "random_state": "the seed, a whole number",
    "max_seconds": "a wall-clock limit in seconds, or None for none",
    "chunk_rows": "rows per chunk of the mini-batch order, or None for automatic",
    "class_weight": "None, or 'balanced' to weigh every class equally in the loss",
    "structure_weight": "the weight λ ≥ 0 of the head that reconstructs the leading principal components (0: none)",
    "marker_pool": "0 (all genes are candidates) or a whole number m ≥ 1: candidates = the m·k-gene t-test marker panel",
    "coverage": "'none' (the largest attention), or 'turns' / 'worst': each pick for the worst-served cell type",
    "coverage_score": "'recall', 'f1' or 'probability': how the coverage rule measures each type's served-ness",
    "marker_fdr": "None, or a false-discovery rate in (0, 1): a type's pool keeps only its significant markers",
}


class SequentialAttentionSelector(SelectorMixin, BaseEstimator):
    """Feature selector (scikit-learn API) that runs Sequential Attention.

    Parameters
    ----------
    n_features_to_select : number of features SA picks, *in addition* to
        ``pinned`` ones. ``None``: :func:`default_k` ({default_k} picks, or half of the
        candidates on narrow data).
    task : ``"auto"`` (from ``y``), ``"classification"`` or ``"regression"``.
    model : ``"mlp"`` (BN → Linear(hidden) → ReLU → Linear) or ``"linear"``
        (ℓ2-regularised linear model; its picks coincide with OMP's on least
        squares).
    epochs : ``None`` (default): a budget that follows convergence
        (:class:`~seqattn.schedule.ConvergenceSchedule`): the dense warm-up runs
        until the validation loss stops improving, each phase until the
        attention has separated (a leader ≥ 2× the uniform share and clear of
        the other candidates, for 10 steps), between ``min_steps_per_phase``
        and ``max_steps_per_phase`` optimizer steps, the phases within a shared
        budget (1.5× the warm-up's steps, or 3 minimum phases per pick), one
        pick per phase (``max_picks_per_phase``). ``epochs=N``: exactly N
        epochs, 10% warm-up, k equal phases; when N epochs hold fewer optimizer
        steps than k phases need, the fit warns and trains the fewest that do.
    batch_size, learning_rate, min_steps_per_phase : ``None`` means the
        model's default (:class:`~seqattn.selectors.sa_trainer.SAConfig`): MLP
        {mlp.batch_size} / {mlp.learning_rate} / {mlp.min_steps_per_phase}; linear
        (``SAConfig.linear_defaults()``) full-batch (≤ {linear.batch_size}) /
        {linear.learning_rate} / {linear.min_steps_per_phase} (the linear model must
        converge within each phase for the OMP link).
    attention_learning_rate : Adam learning rate of the attention logits;
        ``None``: {mlp.attention_learning_rate} for the MLP (the logits must move by ~0.7 to
        double a share, which the network's {mlp.learning_rate} takes hundreds of steps to
        do), the model's learning rate for the linear model.
    max_steps_per_phase : cap of an automatic phase (``None``: {phase_max_factor} × the minimum).
    max_picks_per_phase : automatic budget only: ``1`` (default) picks one
        feature per phase, greedy-faithful. More picks, at one phase end, the
        candidates whose attention separated *together* — fewer phases where they
        do, but not greedy: redundant candidates (two markers of one cell type)
        can separate together and both be picked, where greedy would take one.
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
        ``{{name: [column indices]}}`` or a :class:`~seqattn.data.groups.FeatureGroups`;
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
    class_weight : ``None`` or ``"balanced"``: cross-entropy with each class weighted
        ``n / (C · n_c)`` (scikit-learn's rule) so rare classes are not crowded out by
        large ones — the attention then serves balanced accuracy (:mod:`seqattn.objectives`).
    structure_weight, structure_components : λ ≥ 0 and the number of leading principal
        components a second head of the network reconstructs from the attention-weighted
        inputs (as PERSIST does), so the picks keep the data's structure as well as the
        labels; the loss adds λ × the share of those components' variance left unexplained.
        With a coverage rule, a share λ / (1 + λ) of the picks is also made for the structure:
        the largest attention over the whole marker pool, whatever the type
        (:func:`seqattn.selectors.coverage.structure_share`). 0 (default): no head. The trade-off
        on pbmc68k_reduced is measured in benchmarks/README.md, *Structure*.
    marker_pool : 0 (default) or m ≥ 1: the candidates are only the ``m · k`` genes of the
        per-cell-type t-test marker panel (Welch t, one type vs rest, types taking turns:
        :func:`seqattn.selectors.ttest.ttest_markers`, on the rows SA is fitted on); SA then
        chooses among markers of every type instead of among all genes, which on a few hundred
        cells keeps it from spending picks on genes no type is marked by. Classification on
        single columns in memory only; the trace's ``banned`` stays the user's bans and its
        settings record ``marker_pool`` and ``candidates``.
    coverage : the pick rule (:mod:`seqattn.selectors.coverage`); needs ``marker_pool`` ≥ 1.
        ``"none"`` (default): the largest attention, plain SA. ``"turns"``: each pick is made for a
        cell type — among the types with the fewest picks so far, the worst-served one (lowest recall
        of a logistic regression refitted on the picks, on the validation rows of the fit) — and is the
        largest-attention candidate of that type's marker pool; ``"worst"``: the worst-served type
        while it is at most 2 picks ahead of the least-picked type. Several runs then agree on a panel
        that keeps each type's mean share of picks. The trace's ``settings["pick_types"]`` says which type
        each pick was made for.
    coverage_score : how the coverage rule measures a type's served-ness on the validation rows:
        ``"recall"`` (default), ``"f1"`` (recall and precision: a type that other types' cells are called as
        counts as badly served too) or ``"probability"`` (the mean probability of the true type).
    marker_fdr : ``None`` (default) or a false-discovery rate such as 0.05: the coverage rule's pool of a
        type keeps only genes up-regulated in it with a Benjamini–Hochberg-adjusted Welch p below it
        (:func:`seqattn.selectors.ttest.significant_markers`); a type with none gets no pool and no pick,
        and the trace's ``settings["types_without_pool"]`` names it. ``None``: a type's pool is every
        gene the round robin gave it, its next-best t whatever it is.
    n_runs, resample : ``n_runs`` > 1 runs SA that many times — each with its own seed
        (``resample="seeds"``) or also its own bootstrap sample of the training rows
        (``"bootstrap"``) — side by side as stacked networks where possible
        (:mod:`seqattn.selectors.stability`), and returns their consensus: the features
        picked by the most runs, earliest first, each step carrying "picked in b of B
        runs" and the share of resampled consensus panels that keep it, and flagged
        *unstable* when at most half the runs picked it or fewer than 90 % of those
        panels keep it (:func:`seqattn.trace.is_unstable`). ``model_`` and
        ``attention_`` are then ``None`` (B networks were trained); ``runs_`` holds each
        run's picks and ``selection_frequency_`` each unit's share of runs.

    Feature names come from a DataFrame's columns (``feature_names_in_``, as in
    scikit-learn; sparse DataFrames too), from ``fit(..., feature_names=…)``, or
    from the data set in :meth:`fit_dataset`; a bare array gives ``x0, x1, …``.

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

    #: The parameters' rules, declared once (scikit-learn's convention; checked by ``_validate_params``
    #: at the start of every fit). k, pinned and banned are checked against the data, in :meth:`_units`.
    _parameter_constraints: dict = {
        "n_features_to_select": "no_validation",  # validate_k, against the data (the one rule for k)
        "task": [StrOptions({"auto", *TASKS})],
        "model": [StrOptions(set(SA_MODELS))],
        "hidden": [_POSITIVE_INT],
        "epochs": [_POSITIVE_INT, None],
        "batch_size": [_POSITIVE_INT, None],
        "learning_rate": [_LEARNING_RATE, None],
        "lr_decay": [Interval(Real, 0, 1, closed="right")],
        "l2": [Interval(Real, 0, None, closed="left")],
        "min_steps_per_phase": [_POSITIVE_INT, None],
        "max_steps_per_phase": [_POSITIVE_INT, None],
        "max_picks_per_phase": [_POSITIVE_INT],
        "attention_learning_rate": [_LEARNING_RATE, None],
        "selection_point": [StrOptions({"end", "start"})],
        "validation_fraction": [Interval(Real, 0, 0.9, closed="left")],
        "gain_model": [StrOptions({"linear", "mlp", "none"})],
        "device": [str, torch.device, None],
        "num_threads": [_POSITIVE_INT, None],
        "random_state": [Interval(Integral, 0, 2**32 - 1, closed="both"), None],
        "pinned": ["array-like"],
        "banned": ["array-like"],
        "max_seconds": [Interval(Real, 0, None, closed="neither"), None],
        "groups": "no_validation",  # a mapping or FeatureGroups, checked against the columns in _units
        "chunk_rows": [_POSITIVE_INT, None],
        "class_weight": [StrOptions({w for w in CLASS_WEIGHTS if w is not None}), None],
        "structure_weight": [Interval(Real, 0, None, closed="left")],
        "structure_components": [_POSITIVE_INT],
        "marker_pool": [Interval(Integral, 0, None, closed="left")],
        "coverage": [StrOptions(set(COVERAGE_RULES))],
        "coverage_score": [StrOptions(set(COVERAGE_SCORES))],
        "marker_fdr": [Interval(Real, 0, 1, closed="neither"), None],
        "n_runs": [_POSITIVE_INT],
        "resample": [StrOptions({"seeds", "bootstrap"})],
        "combine": [StrOptions({"shared", "runs"})],
    }

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
        max_picks_per_phase: int = 1,
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
        class_weight: str | None = None,
        structure_weight: float = 0.0,
        structure_components: int = 20,
        marker_pool: int = 0,
        coverage: str = "none",
        coverage_score: str = "recall",
        marker_fdr: float | None = None,
        n_runs: int = 1,
        resample: str = "seeds",
        combine: str = "shared",
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
        self.max_picks_per_phase = max_picks_per_phase
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
        self.class_weight = class_weight
        self.structure_weight = structure_weight
        self.structure_components = structure_components
        self.marker_pool = marker_pool
        self.coverage = coverage
        self.coverage_score = coverage_score
        self.marker_fdr = marker_fdr
        self.n_runs = n_runs
        self.resample = resample
        self.combine = combine

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, *, feature_names: Sequence[str] | None = None,
            callback: ProgressCallback | None = None, dataset_name: str = "") -> "SequentialAttentionSelector":
        """Run SA on ``X`` (array, DataFrame — dense or sparse — or CSR matrix) and target ``y``.

        ``callback(step, total, message)`` is called as training progresses; if
        it returns ``True`` training stops and the picks made so far are kept
        (``trace_.stopped_early`` is set).
        """
        self._validate_params()
        X, y = self._check_arrays(X, y)
        if feature_names is None:
            feature_names = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                             else [f"x{i}" for i in range(X.shape[1])])
        units, k = self._units(list(map(str, feature_names)), None)
        task = self._resolve_task(y=y)
        y_enc, classes = encode_target(y, task)
        self._train(X, y_enc, task, classes, k, units, callback, dataset_name)
        return self

    def fit_dataset(self, dataset: Dataset, callback: ProgressCallback | None = None) -> "SequentialAttentionSelector":
        """Fit on a :class:`~seqattn.data.Dataset`, keeping its names, task and feature groups."""
        self._validate_params()
        task = self._resolve_task(dataset_task=dataset.task)
        self.__dict__.pop("feature_names_in_", None)  # scikit-learn's reset: no names from an earlier fit's frame
        self.n_features_in_ = dataset.n_features
        classes = dataset.class_names or list(range(dataset.n_classes))
        units, k = self._units(list(dataset.feature_names), dataset.groups)
        self._train(dataset.X, dataset.y, task, classes, k, units, callback, dataset.name)
        if not dataset.class_names:
            self.classes_ = None  # class codes without names
        return self

    def _train(self, X, y: np.ndarray, task: str, classes: Sequence | None, k: int, units: SelectionUnits,
               callback: ProgressCallback | None, dataset_name: str) -> None:
        """Run the trainer; the fitted attributes come from what it trained."""
        if task == "classification" and (len(y) == 0 or int(np.max(y)) < 1):
            raise DataError("The target has a single class; classification needs at least two.")
        self.task_ = task
        self.classes_ = np.array(classes) if task == "classification" else None
        user_banned, rule = list(units.banned), None
        if self.coverage != "none" and not self.marker_pool:
            raise ValueError(f"coverage={self.coverage!r} picks from each cell type's marker pool; set "
                             "marker_pool ≥ 1 (e.g. 3) or coverage='none'.")
        if self.marker_fdr is not None and self.coverage == "none":
            raise ValueError("marker_fdr filters the coverage rule's per-type pools; it needs coverage='worst' or "
                             "'turns' (with coverage='none' it would change nothing).")
        if self.marker_pool:
            units, rule = self._marker_candidates(X, y, task, k, units)
        if self.n_runs > 1:
            self._train_runs(X, y, task, k, units, callback, dataset_name, rule)
        else:
            self._train_one(X, y, task, k, units, callback, dataset_name, rule)
        if self.marker_pool:  # the trace says what the user banned; the pool is a setting
            self.trace_.banned = user_banned
            self.trace_.settings.update(marker_pool=int(self.marker_pool),
                                        candidates=len(units.names) - len(units.banned) - len(units.pinned))
        if rule is not None:
            self.trace_.settings.update(rule.describe(), pick_types=rule.pick_types(self.trace_.selected, classes),
                                        marker_fdr=self.marker_fdr,
                                        types_without_pool=rule.types_without_pool(
                                            list(classes) if classes is not None else range(len(rule.pools))))

    def _marker_candidates(self, X, y: np.ndarray, task: str, k: int,
                           units: SelectionUnits) -> tuple[SelectionUnits, Any]:
        """``units`` with every gene outside the ``marker_pool · k``-gene t-test marker panel banned, and the
        coverage pick rule on that panel's per-type pools (``None`` with ``coverage="none"``)."""
        from dataclasses import replace

        from seqattn.selectors.coverage import TypeCoverage, structure_share
        from seqattn.selectors.sa_trainer import training_rows
        from seqattn.selectors.ttest import significant_markers, ttest_markers, ttest_statistics

        if task != "classification":
            raise ValueError("marker_pool needs cell types (a classification target); set marker_pool=0.")
        if units.groups is not None:
            raise ValueError("marker_pool ranks single genes; it does not apply to feature groups.")
        if isinstance(X, BackedRows):
            raise DataError("marker_pool needs the matrix in memory (the t-test reads every row); load it without "
                            "backed mode, or set marker_pool=0.")
        free = len(units.names) - len(units.pinned) - len(units.banned)
        data = Dataset(X=X, y=np.asarray(y), feature_names=list(units.names), task="classification")
        statistics = ttest_statistics(data)
        panel = ttest_markers(data, min(free, int(self.marker_pool) * k), pinned=units.pinned, banned=units.banned,
                              statistics=statistics)
        outside = set(range(len(units.names))) - set(panel.selected) - set(units.pinned)
        rule = None
        if self.coverage != "none":
            fraction = float(self.validation_fraction)
            rule = TypeCoverage.from_marker_panel(self.coverage, panel.selected, panel.settings["marker_types"], X, y,
                                                  lambda seed: training_rows(np.asarray(y), task, fraction, seed),
                                                  self.coverage_score, structure_share(self.structure_weight),
                                                  None if self.marker_fdr is None
                                                  else significant_markers(*statistics, self.marker_fdr))
        return replace(units, banned=sorted(outside)), rule

    def _train_one(self, X, y: np.ndarray, task: str, k: int, units: SelectionUnits,
                   callback: ProgressCallback | None, dataset_name: str, rule: Any = None) -> None:
        """One SA fit; the fitted attributes come from what it trained."""
        trainer = SATrainer(SAConfig.from_params(self.get_params()), X, y, task, k, units, callback=callback,
                            dataset_name=dataset_name, pick_rule=rule)
        self.trace_ = trainer.trace  # grows pick by pick: callbacks (the notebook live view) read the picks so far
        trainer.run()
        self.model_ = trainer.net.cpu().eval()
        self.attention_ = trainer.mask.cpu()
        self.selected_features_ = np.array(units.columns(units.pinned + self.trace_.selected), dtype=np.int64)
        self.device_ = str(trainer.device)
        self.n_iter_ = trainer.schedule.step

    def _train_runs(self, X, y: np.ndarray, task: str, k: int, units: SelectionUnits,
                    callback: ProgressCallback | None, dataset_name: str, rule: Any = None) -> None:
        """``n_runs`` fits and their consensus (:func:`seqattn.selectors.stability.fit_runs`)."""
        from seqattn.selectors.stability import fit_runs, selection_counts

        config = SAConfig.from_params(self.get_params())
        self.trace_ = fit_runs(config, X, y, task, k, units, n_runs=self.n_runs, resample=self.resample,
                               shared=self.combine == "shared", callback=callback, dataset_name=dataset_name,
                               pick_rule=rule)
        self.runs_ = [list(r) for r in self.trace_.settings["runs"]]
        counts, _ = selection_counts(self.runs_, len(units.names))
        self.selection_frequency_ = counts / max(1, len(self.runs_))
        self.model_ = self.attention_ = None
        self.selected_features_ = np.array(units.columns(units.pinned + self.trace_.selected), dtype=np.int64)
        self.device_ = str(resolve_device(self.device))
        self.n_iter_ = int(sum(self.trace_.settings["run_total_steps"]))

    # ------------------------------------------------------------ checks
    def _validate_params(self) -> None:
        """scikit-learn's check of ``_parameter_constraints``, with what the parameter is for added."""
        try:
            super()._validate_params()
        except InvalidParameterError as error:
            name = next((n for n in PARAMETER_HINTS if f"'{n}' parameter" in str(error)), None)
            if name is None:
                raise
            raise InvalidParameterError(f"{error} ({name}: {PARAMETER_HINTS[name]}.)") from None

    def _check_arrays(self, X, y) -> tuple[Any, np.ndarray]:
        """X as float32 (dense, CSR, or rows on disk) and y, with scikit-learn's input checks."""
        if not hasattr(X, "columns"):  # scikit-learn's reset: a refit on unnamed columns forgets old names
            self.__dict__.pop("feature_names_in_", None)
        if isinstance(X, BackedRows):  # rows stay on disk; the loader checked the values
            self.n_features_in_ = X.shape[1]
            return X, np.asarray(y)
        if hasattr(X, "sparse") and hasattr(X, "columns"):  # a sparse DataFrame: keep it sparse, keep its names
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            X = X.sparse.to_coo()
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=np.float32)
            if not np.all(np.isfinite(X.data)):
                raise ValueError("Input X contains NaN or infinity.")
            self.n_features_in_ = X.shape[1]
            if X.shape[1] < 2:
                raise ValueError(f"Sequential Attention needs at least 2 features, got n_features = {X.shape[1]}.")
            return X, np.asarray(y)
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=False, ensure_min_samples=2,
                             ensure_min_features=2)
        return X, y

    def _resolve_task(self, *, y: np.ndarray | None = None, dataset_task: str | None = None) -> str:
        """The task, decided once: the data set's, else ``task``, else inferred from ``y``."""
        if dataset_task is not None:
            if self.task not in ("auto", dataset_task):
                raise DataError(f"Selector task {self.task!r} does not match the data set's task {dataset_task!r}.")
            return dataset_task
        return infer_task(y) if self.task == "auto" else self.task

    def _units(self, feature_names: list[str], dataset_groups: Any) -> tuple[SelectionUnits, int]:
        """The selection units (``groups`` if given, else the data set's groups, else the columns) with
        pinned and banned checked against them, and k checked against what is left to pick."""
        from seqattn.data.groups import FeatureGroups

        groups = self.groups if self.groups is not None else dataset_groups
        if groups is not None and not isinstance(groups, FeatureGroups):
            groups = FeatureGroups.from_mapping(groups, feature_names)
        if groups is not None and groups.n_columns != len(feature_names):
            raise DataError(f"groups cover {groups.n_columns} columns but X has {len(feature_names)}.")
        names = list(feature_names) if groups is None else list(groups.names)
        pinned, banned = check_pinned_banned(len(names), self.pinned, self.banned, names)
        k = self.n_features_to_select
        if k is None:
            k = default_k(len(names) - len(pinned) - len(banned))
        k = validate_k(k, len(names), n_pinned=len(pinned), n_banned=len(banned), name="n_features_to_select")
        return SelectionUnits(names, list(feature_names), pinned, banned, groups), k

    # ------------------------------------------------------- selector API
    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "selected_features_")
        support = np.zeros(self.n_features_in_, dtype=bool)
        support[self.selected_features_] = True
        return support

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The selected columns' names: as scikit-learn gives them, but without ``input_features`` the
        names the fit saw (a DataFrame's columns, ``feature_names=`` or the data set's), not ``x0, x1, …``."""
        if input_features is None and not hasattr(self, "feature_names_in_") and hasattr(self, "trace_"):
            input_features = self.trace_.column_names or self.trace_.feature_names
        return super().get_feature_names_out(input_features)

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


SequentialAttentionSelector.__doc__ = SequentialAttentionSelector.__doc__.format(
    mlp=SAConfig(), linear=SAConfig.linear_defaults(), phase_max_factor=PHASE_MAX_FACTOR, default_k=DEFAULT_K)


def run_sa(dataset: Dataset, k: int, *, device: str = "auto", random_state: int | None = 0,
           callback: ProgressCallback | None = None, **params: Any) -> SelectionTrace:
    """Registry runner: ``params`` are :class:`SequentialAttentionSelector` parameters (checked by the registry)."""
    selector = SequentialAttentionSelector(k, device=device, random_state=random_state, **params)
    return selector.fit_dataset(dataset, callback=callback).trace_


def quick_start_settings(dataset: Dataset) -> dict[str, Any]:
    """Settings for a first SA run on ``dataset``: ``run_method(dataset, "sa", **settings)`` keywords.

    The budget is the automatic one (``epochs=None``: until converged), the same for every data set — no
    per-data-set epoch table; ``k`` is :func:`default_k` of the selection units.
    """
    return {"k": default_k(dataset.n_groups), "epochs": None, "hidden": TrainConfig.hidden,
            "learning_rate": TrainConfig.learning_rate, "random_state": 0, "model": "mlp"}


def fit_dataset_distributed(selector: SequentialAttentionSelector, dataset: Dataset, n_procs: int,
                            backend: str = "gloo") -> SequentialAttentionSelector:
    """Fit an SA selector on ``dataset`` with ``n_procs`` local processes (DDP); return rank 0's fitted copy.

    Python's ``torchrun``: the dataset is pickled to each process (a backed
    dataset pickles as its file path and view, so each rank reads its rows
    from disk). Every rank's picks are compared here as well as during training.
    """
    results = distributed.spawn(_fit_on_rank, n_procs, selector.get_params(), dataset, backend=backend)
    picks = [r["selected"] for r in results]
    if any(p != picks[0] for p in picks[1:]):
        raise RuntimeError(f"Ranks returned different picks: {picks}.")
    return results[0]["selector"]


def _fit_on_rank(params: dict[str, Any], dataset: Dataset) -> dict[str, Any]:
    """One rank of :func:`fit_dataset_distributed` (module level, so spawned processes can import it)."""
    selector = SequentialAttentionSelector(**params).fit_dataset(dataset)
    return {"rank": distributed.rank(), "selected": selector.selected_features_.tolist(),
            "selector": selector if distributed.is_rank_zero() else None}
