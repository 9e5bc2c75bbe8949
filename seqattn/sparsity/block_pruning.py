"""SA++: Sequential-Attention-style block sparsification of an MLP, beside magnitude pruning.

Each pruned layer carries one logit per block of its weight matrix. The block
attention ``A = n_blocks · softmax(L)`` has mean 1, so switching it on does
not change the network's scale, and the effective weight is
``W ⊙ A ⊙ mask`` (blocks broadcast to the weight's shape). Training follows
the SA++ recipe (Yasuda et al., 2024), which wraps the differentiable
attention inside ACDC-style alternating phases:

    dense warm-up → (sparsify → sparse → dense) × N → final sparsify → sparse fine-tune

During a *sparsify* phase the logits train with the weights and the pruned
share of blocks follows ``s(t) = s·(1 − e^{−ct})/(1 − e^{−c})`` (c = 4) over
the phase; each update keeps the highest-scoring blocks among those still
alive (pruned blocks stay pruned within a phase). *Sparse* phases train the
surviving weights with the mask fixed; *dense* phases let every block regrow
from zero (the ACDC move that lets early pruning mistakes be undone). The
block score is the attention ``A`` (``mask_score="attention"``, the default)
or the norm of the attention-weighted block ``‖(W ⊙ A)_b‖``
(``"attention_norm"``: what the logits learned times how large the block is).

The baseline is gradual block-magnitude pruning with the same block size,
schedule, final sparsity and number of optimizer steps; the reference is the
same network trained dense.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from seqattn.data import DataError, Dataset, split_indices
from seqattn.device import resolve_device, torch_threads
from seqattn.models import TrainConfig, batch_rows, loss_function
from seqattn.sparsity.attention_patterns import exponential_schedule

Callback = Callable[[int, int, str], Any]
MASK_SCORES = ("attention", "attention_norm")


# --------------------------------------------------------------------------- shared SA++ pieces
def mean_one_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``n · softmax(L)`` over all ``n`` entries of ``logits`` (mean 1), in the logits' shape.

    Mean 1 means switching the attention on does not change the network's
    scale; the structured (transformer) SA++ uses the same function per kind of unit.
    """
    return logits.numel() * torch.softmax(logits.flatten(), 0).view(logits.shape)


def keep_best(scores: torch.Tensor, alive: torch.Tensor, n_keep: int) -> torch.Tensor:
    """0/1 mask (``scores``' shape) keeping the ``n_keep`` best-scoring entries among those still alive."""
    s = scores.flatten().masked_fill(alive.flatten() == 0, float("-inf"))
    new = torch.zeros(s.numel(), device=s.device)
    new[s.topk(n_keep).indices] = 1.0
    return new.view(scores.shape)


# --------------------------------------------------------------------------- model
class BlockAttentionLinear(nn.Module):
    """``nn.Linear`` whose weight is ``W ⊙ A ⊙ mask`` with per-block attention ``A``.

    Edge blocks may be partial when the block size does not divide the
    weight's shape; sparsity is always counted in blocks.
    """

    def __init__(self, in_features: int, out_features: int, block_size: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.block_size = block_size
        self.grid = (math.ceil(out_features / block_size), math.ceil(in_features / block_size))
        self.logits = nn.Parameter(torch.zeros(self.grid))
        self.register_buffer("mask", torch.ones(self.grid))
        self.use_attention = True

    @property
    def n_blocks(self) -> int:
        return self.grid[0] * self.grid[1]

    def attention(self) -> torch.Tensor:
        """``n_blocks · softmax(L)`` over all blocks of the layer (mean 1)."""
        return mean_one_softmax(self.logits)

    def expand(self, per_block: torch.Tensor) -> torch.Tensor:
        """Block grid -> weight-shaped tensor."""
        bs, (g0, g1) = self.block_size, self.grid
        out_f, in_f = self.linear.weight.shape
        full = per_block[:, None, :, None].expand(g0, bs, g1, bs).reshape(g0 * bs, g1 * bs)
        return full[:out_f, :in_f]

    def block_scale(self) -> torch.Tensor:
        return self.mask * self.attention() if self.use_attention else self.mask

    def effective_weight(self) -> torch.Tensor:
        return self.linear.weight * self.expand(self.block_scale())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.effective_weight(), self.linear.bias)

    @torch.no_grad()
    def block_norms(self, with_attention: bool) -> torch.Tensor:
        """Frobenius norm of every block of ``W`` (or of ``W ⊙ A``), mask ignored."""
        w = self.linear.weight * (self.expand(self.attention()) if with_attention else 1.0)
        bs = self.block_size
        out_f, in_f = w.shape
        padded = nn.functional.pad(w, (0, self.grid[1] * bs - in_f, 0, self.grid[0] * bs - out_f))
        return padded.reshape(self.grid[0], bs, self.grid[1], bs).pow(2).sum(dim=(1, 3)).sqrt()

    @torch.no_grad()
    def zero_pruned_weights(self) -> None:
        """Pruned blocks restart from zero when a dense phase lets them regrow (ACDC)."""
        self.linear.weight.mul_(self.expand(self.mask))


class BlockSparseMLP(nn.Module):
    """BatchNorm -> [BlockAttentionLinear -> ReLU] × len(hidden) -> Linear(out).

    The hidden layers are pruned; the small output layer stays dense. With
    ``hidden=(67,)`` this is the app's reference MLP; wider is fine.
    """

    def __init__(self, n_features: int, n_outputs: int, hidden: tuple[int, ...] = (256,), block_size: int = 8):
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features)
        sizes = [n_features, *hidden]
        self.pruned = nn.ModuleList(
            BlockAttentionLinear(a, b, block_size) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.out = nn.Linear(sizes[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        for layer in self.pruned:
            x = torch.relu(layer(x))
        return self.out(x)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.endswith("logits")]

    def logit_parameters(self) -> list[nn.Parameter]:
        return [layer.logits for layer in self.pruned]

    def block_sparsity(self) -> float:
        """Share of pruned blocks over all pruned layers."""
        total = sum(layer.n_blocks for layer in self.pruned)
        return float(sum((layer.mask == 0).sum().item() for layer in self.pruned) / total)


# --------------------------------------------------------------------------- schedule
@dataclass
class Phase:
    name: str  # warm-up | sparsify | sparse | dense | final sparsify | fine-tune
    cycle: int
    start: int  # first optimizer step
    steps: int

    @property
    def prunes(self) -> bool:
        return self.name in ("sparsify", "final sparsify")

    @property
    def masked(self) -> bool:
        return self.name in ("sparsify", "sparse", "final sparsify", "fine-tune")

    @property
    def restores(self) -> bool:
        """Every unit is switched back on at its start (the ACDC move that lets pruning mistakes be undone)."""
        return self.name in ("dense", "warm-up")


def plan_phases(total_steps: int, n_cycles: int) -> list[Phase]:
    """Split the step budget: warm-up 1 unit, each cycle 3 units, final sparsify 1, fine-tune 2 (+ remainder)."""
    units = 1 + 3 * n_cycles + 3
    if total_steps < units:
        raise ValueError(f"{total_steps} optimizer steps cannot hold {units} phase units; raise epochs.")
    unit = total_steps // units
    names = [("warm-up", 0, 1)]
    for c in range(1, n_cycles + 1):
        names += [("sparsify", c, 1), ("sparse", c, 1), ("dense", c, 1)]
    names += [("final sparsify", n_cycles + 1, 1), ("fine-tune", n_cycles + 1, 2)]
    phases, start = [], 0
    for i, (name, cycle, n_units) in enumerate(names):
        steps = unit * n_units if i < len(names) - 1 else total_steps - start
        phases.append(Phase(name, cycle, start, steps))
        start += steps
    return phases


def method_phases(method: str, phases: list[Phase], learned: str = "SA++", dense: str = "dense") -> list[Phase]:
    """The phases one method runs, with the same total steps for all.

    SA++ (``learned``) runs the whole alternation; a baseline trains dense
    until the final sparsify phase, then takes the same ramp and fine-tune
    (equal step budget, same final schedule); ``dense`` trains dense throughout.
    """
    total = phases[-1].start + phases[-1].steps
    if method == dense:
        return [Phase("dense", 0, 0, total)]
    if method != learned:
        final = phases[-2]
        return [Phase("dense", 0, 0, final.start), final, phases[-1]]
    return phases


def phases_after(phases: list[Phase], done: int) -> list[Phase]:
    """``phases`` without their first ``done`` steps: what a run that continues from a state saved after them
    still trains (a phase cut in two keeps its name and cycle)."""
    return [Phase(p.name, p.cycle, max(p.start, done), p.start + p.steps - max(p.start, done))
            for p in phases if p.start + p.steps > done]


def phase_schedule(phase: Phase, target: float, mask_updates: int = 25) -> Iterator[tuple[int, float, bool]]:
    """``(step, target share pruned, update the mask now?)`` for every optimizer step of ``phase``.

    In a sparsify phase the share follows the exponential schedule
    ``s(1−e^{−ct})/(1−e^{−c})`` and the mask is updated about
    ``mask_updates`` times (every step would cost a top-k per step for no
    visible gain); masked phases hold ``target``, the others 0.
    """
    update_every = max(1, phase.steps // mask_updates)
    for step in range(phase.start, phase.start + phase.steps):
        position = step - phase.start + 1
        if phase.prunes:
            share = float(exponential_schedule(position / phase.steps, target))
            yield step, share, position % update_every == 0 or position == phase.steps
        else:
            yield step, (target if phase.masked else 0.0), False


def snapshot_steps(phase: Phase) -> set[int]:
    """Steps to record for the animation: four along a sparsify ramp, the last step of any other phase."""
    if phase.prunes:
        return set(np.linspace(phase.start, phase.start + phase.steps - 1, 4).round().astype(int).tolist())
    return {phase.start + phase.steps - 1}


def snapshot_label(phase: Phase, step: int) -> str:
    """"sparsify 1 (50%)", "dense 1", "fine-tune": the phase, its cycle and how far along a ramp."""
    label = phase.name + (f" {phase.cycle}" if phase.name in ("sparsify", "sparse", "dense") else "")
    if phase.prunes:
        label += f" ({100 * (step - phase.start + 1) / phase.steps:.0f}%)"
    return label


# --------------------------------------------------------------------------- results
@dataclass
class Snapshot:
    """Block attention and mask of every pruned layer at one moment of SA++ training."""

    label: str
    phase: str
    step: int
    target_sparsity: float
    sparsity: float
    val_accuracy: float
    attention: list[np.ndarray]
    mask: list[np.ndarray]


@dataclass
class BlockPruningResult:
    """What the Sparsity page shows: snapshots, the realised schedule and the accuracy comparison."""

    settings: dict[str, Any]
    phases: list[Phase]
    snapshots: list[Snapshot]
    schedule_steps: np.ndarray
    schedule_sparsity: np.ndarray  # target sparsity per optimizer step (SA++)
    accuracy: dict[str, float]  # test accuracy: dense, SA++, magnitude
    sparsity: dict[str, float]  # achieved block sparsity per method
    layer_shapes: list[tuple[int, int]]
    final_weights: list[np.ndarray] = field(default_factory=list)  # SA++ effective weights (pruned)
    seconds: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False

    def accuracy_table(self) -> list[dict[str, Any]]:
        return [
            {"method": m, "block sparsity": round(self.sparsity.get(m, 0.0), 4), "test accuracy": round(a, 4),
             "train seconds": round(self.seconds.get(m, float("nan")), 2)}
            for m, a in self.accuracy.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, floats) for downloads."""
        return {
            "settings": self.settings,
            "phases": [vars(p) for p in self.phases],
            "accuracy": self.accuracy,
            "sparsity": self.sparsity,
            "layer_shapes": self.layer_shapes,
            "stopped_early": self.stopped_early,
            "snapshots": [
                {"label": s.label, "phase": s.phase, "step": s.step, "target_sparsity": s.target_sparsity,
                 "sparsity": s.sparsity, "val_accuracy": s.val_accuracy,
                 "attention": [a.round(5).tolist() for a in s.attention], "mask": [m.astype(int).tolist() for m in s.mask]}
                for s in self.snapshots
            ],
        }


class _Stop(Exception):
    """Raised inside training when the progress callback asks to stop."""


# --------------------------------------------------------------------------- training
def _prepare(dataset: Dataset, random_state: int):
    if dataset.task != "classification":
        raise DataError("SA++ block pruning here trains a classifier; pick a classification data set.")
    X = dataset.dense_X().astype(np.float32)
    train, val, test = split_indices(dataset.n_samples, dataset.y, 0.15, 0.15, random_state)
    mean, std = X[train].mean(0), X[train].std(0) + 1e-6
    X = (X - mean) / std
    return X, dataset.y.astype(np.int64), train, val, test


@torch.no_grad()
def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    acc = float((model(X).argmax(1) == y).float().mean()) if len(y) else float("nan")
    model.train()
    return acc


@torch.no_grad()
def _prune_to(model: BlockSparseMLP, sparsity: float, score: str) -> None:
    """Per layer: keep the best-scoring alive blocks so that ``round(sparsity·n)`` blocks are pruned."""
    for layer in model.pruned:
        n_prune = int(round(sparsity * layer.n_blocks))
        already = int((layer.mask == 0).sum())
        if n_prune <= already:
            continue
        if score == "magnitude":
            s = layer.block_norms(with_attention=False)
        elif score == "attention":
            s = layer.attention()
        else:
            s = layer.block_norms(with_attention=True)
        layer.mask.copy_(keep_best(s, layer.mask, layer.n_blocks - n_prune))


def _snapshot(model: BlockSparseMLP, label: str, phase: str, step: int, target: float, val_acc: float) -> Snapshot:
    return Snapshot(
        label=label, phase=phase, step=step, target_sparsity=float(target), sparsity=model.block_sparsity(),
        val_accuracy=val_acc,
        attention=[layer.attention().detach().cpu().numpy().copy() for layer in model.pruned],
        mask=[layer.mask.detach().cpu().numpy().astype(bool).copy() for layer in model.pruned],
    )


def _train(
    method: str, X, y, train, val, settings: dict[str, Any], phases: list[Phase], device: torch.device,
    progress: Callable[[str], None],
) -> tuple[BlockSparseMLP, list[Snapshot], np.ndarray]:
    """One run: ``method`` in {"SA++", "magnitude", "dense"}; returns the model, snapshots and target schedule."""
    torch.manual_seed(settings["random_state"])
    gen = torch.Generator().manual_seed(settings["random_state"])
    n_classes = int(y.max()) + 1
    model = BlockSparseMLP(X.shape[1], n_classes, tuple(settings["hidden"]), settings["block_size"]).to(device)
    for layer in model.pruned:
        layer.use_attention = method == "SA++"
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    Xv, yv = Xt[val], yt[val]
    train_t = torch.from_numpy(train)
    opt = torch.optim.Adam(model.weight_parameters(), lr=settings["learning_rate"])
    logit_opt = torch.optim.Adam(model.logit_parameters(), lr=settings["logit_learning_rate"])
    loss_fn = loss_function("classification")
    target_s, score = settings["sparsity"], ("magnitude" if method == "magnitude" else settings["mask_score"])
    total = phases[-1].start + phases[-1].steps
    schedule = np.zeros(total)
    snapshots: list[Snapshot] = []
    batches = batch_rows(len(train_t), settings["batch_size"], [gen])  # the trainer's mini-batch order
    for phase in method_phases(method, phases):
        snap_at = snapshot_steps(phase)
        if phase.restores:
            for layer in model.pruned:
                layer.zero_pruned_weights()
                layer.mask.fill_(1.0)
        for step, current, update_mask in phase_schedule(phase, target_s):
            if update_mask:
                _prune_to(model, current, score)
            schedule[step] = current
            idx = train_t[next(batches)[0]].to(device)
            opt.zero_grad()
            logit_opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            if phase.prunes and method == "SA++":
                logit_opt.step()
            if step in snap_at and method == "SA++":
                snapshots.append(_snapshot(model, snapshot_label(phase, step), phase.name, step, schedule[step],
                                           _accuracy(model, Xv, yv)))
            progress(f"{phase.name}, step {step + 1}/{total}")
    return model, snapshots, schedule


def sa_plus_plus(
    dataset: Dataset,
    sparsity: float = 0.8,
    block_size: int = 8,
    hidden: tuple[int, ...] = (256,),
    epochs: int = 30,
    n_cycles: int = 2,
    batch_size: int = 64,
    learning_rate: float = TrainConfig.learning_rate,
    logit_learning_rate: float = 0.01,
    mask_score: str = "attention",
    device: str = "auto",
    random_state: int = 0,
    baselines: bool = True,
    num_threads: int | None = 1,
    callback: Callback | None = None,
) -> BlockPruningResult:
    """Train SA++ (and, if ``baselines``, magnitude pruning and dense) and compare test accuracy.

    All methods get the same number of optimizer steps (``epochs`` over the
    training split). ``callback(step, total, message)`` may return True to stop;
    the result then holds what finished and ``stopped_early=True``.
    ``num_threads`` pins CPU threads while training (``None`` leaves them).
    ``logit_learning_rate`` (Adam, logits only) defaults to 0.01: in a sweep
    on mnist_5k at 90% sparsity, 0.003–0.01 matched magnitude pruning while
    0.05–0.2 lost 1–2 points (large steps make ``A`` swing between blocks).
    """
    _check_settings(sparsity, block_size, epochs, n_cycles, batch_size, mask_score)
    if callback is not None:
        callback(0, 1, "preparing the data")
    dev = resolve_device(device)
    X, y, train, val, test = _prepare(dataset, random_state)
    total = epochs * max(1, math.ceil(len(train) / batch_size))
    phases = plan_phases(total, n_cycles)
    settings = dict(sparsity=sparsity, block_size=block_size, hidden=list(hidden), epochs=epochs, n_cycles=n_cycles,
                    batch_size=batch_size, learning_rate=learning_rate, logit_learning_rate=logit_learning_rate,
                    mask_score=mask_score, device=str(dev), random_state=random_state, dataset=dataset.name,
                    total_steps=total)
    methods = ["SA++", "magnitude", "dense"] if baselines else ["SA++"]
    progress = _RunProgress(callback, methods, total)
    result = _train_methods(methods, X, y, (train, val, test), settings, phases, dev, num_threads, progress)
    if not result.stopped_early:
        progress.finish()
    return result


def _check_settings(sparsity: float, block_size: int, epochs: int, n_cycles: int, batch_size: int,
                    mask_score: str) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}.")
    if block_size < 1 or epochs < 1 or n_cycles < 0 or batch_size < 1:
        raise ValueError("block_size, epochs and batch_size must be positive and n_cycles non-negative.")
    if mask_score not in MASK_SCORES:
        raise ValueError(f"mask_score must be one of {MASK_SCORES}, got {mask_score!r}.")


class _RunProgress:
    """One overall count over every method's optimizer steps for ``callback(step, total, message)``: reported at
    each method's first step (the slowest: torch warms up) and then about 50 times per method; the text names
    the method and its place in the run. A callback that returns True stops the run (:class:`_Stop`)."""

    def __init__(self, callback: Callback | None, methods: list[str], steps_per_method: int):
        self.callback, self.methods, self.steps_per_method = callback, methods, steps_per_method
        self.grand_total = steps_per_method * len(methods)
        self.done = 0
        self.method = methods[0]

    def labelled(self, message: str) -> str:
        return f"{self.method} (method {self.methods.index(self.method) + 1} of {len(self.methods)}): {message}"

    def start(self, method: str) -> bool:
        """``method`` begins; True when the callback asks to stop before it does."""
        self.method = method
        return self.callback is not None and bool(
            self.callback(self.done, self.grand_total, self.labelled("building the network, first steps")))

    def step(self, message: str) -> None:
        """One optimizer step done (``_train``'s ``progress``)."""
        self.done += 1
        total = self.steps_per_method
        if self.callback is not None and (self.done % total == 1 or self.done % max(1, total // 50) == 0):
            if self.callback(self.done, self.grand_total, self.labelled(message)):
                raise _Stop

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(self.grand_total, self.grand_total, "done")


def _train_methods(methods: list[str], X: np.ndarray, y: np.ndarray, split: tuple[np.ndarray, ...],
                   settings: dict[str, Any], phases: list[Phase], device: torch.device, num_threads: int | None,
                   progress: _RunProgress) -> BlockPruningResult:
    """Train each method in turn on the same split and steps; the result holds what finished (SA++'s snapshots,
    schedule and pruned weights), with ``stopped_early`` when the callback stopped the run."""
    train, val, test = split
    total = phases[-1].start + phases[-1].steps
    result = BlockPruningResult(settings=settings, phases=phases, snapshots=[], schedule_steps=np.arange(total),
                                schedule_sparsity=np.zeros(total), accuracy={}, sparsity={}, layer_shapes=[])
    Xte, yte = torch.from_numpy(X[test]).to(device), torch.from_numpy(y[test]).to(device)
    for method in methods:
        start = time.perf_counter()
        if progress.start(method):
            result.stopped_early = True
            break
        try:
            with torch_threads(num_threads, device):
                model, snapshots, schedule = _train(method, X, y, train, val, settings, phases, device, progress.step)
        except _Stop:
            result.stopped_early = True
            break
        result.seconds[method] = time.perf_counter() - start
        result.accuracy[method] = _accuracy(model, Xte, yte)
        result.sparsity[method] = model.block_sparsity()
        if method == "SA++":
            result.snapshots, result.schedule_sparsity = snapshots, schedule
            result.final_weights = [layer.effective_weight().detach().cpu().numpy() for layer in model.pruned]
            result.layer_shapes = [tuple(layer.linear.weight.shape) for layer in model.pruned]
    return result
