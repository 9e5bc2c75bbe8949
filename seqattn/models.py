"""The small networks every selector and evaluator shares.

``MLP`` is the reference model of the Sequential Attention paper:
BatchNorm -> Linear(hidden) -> ReLU -> Linear(out). ``LinearModel`` is the
ℓ2-regularised linear model used for the OMP link. Both accept an optional
``feature_weights`` vector that multiplies the (normalised) inputs: that is
where the attention mask plugs in.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

DEFAULT_HIDDEN = 67  # the reference implementation's hidden width


@dataclass(frozen=True)
class TrainConfig:
    """The shared hyper-parameters of a dense MLP fit, listed once.

    Passed whole to :func:`train_mlps` / :func:`train_mlp` (retraining on top-k
    picks, SHAP's dense model) and the source of Sequential Attention's MLP
    defaults (:class:`~seqattn.selectors.sa_trainer.SAConfig`). The class
    attributes are the defaults, so signatures can say ``epochs: int = TrainConfig.epochs``.
    """

    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 3e-3
    hidden: int = DEFAULT_HIDDEN
    lr_decay: float = 0.1  # the learning rate falls by this factor over the run (exponentially)


class MLP(nn.Module):
    """BN -> Linear(hidden) -> ReLU -> Linear(n_outputs)."""

    def __init__(self, n_features: int, n_outputs: int, hidden: int = DEFAULT_HIDDEN, batch_norm: bool = True):
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features) if batch_norm else nn.Identity()
        self.hidden = nn.Linear(n_features, hidden)
        self.out = nn.Linear(hidden, n_outputs)

    def forward(self, x: torch.Tensor, feature_weights: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        if feature_weights is not None:
            x = x * feature_weights
        return self.out(torch.relu(self.hidden(x)))


class LinearModel(nn.Module):
    """y = (x ⊙ w_attn) W + b, with the ℓ2 penalty applied by the trainer.

    No BatchNorm: the OMP correspondence assumes the caller already scaled the
    columns (unit norm), and BN would re-weight them.
    """

    def __init__(self, n_features: int, n_outputs: int):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, x: torch.Tensor, feature_weights: torch.Tensor | None = None) -> torch.Tensor:
        if feature_weights is not None:
            x = x * feature_weights
        return self.linear(x)


def build_model(kind: str, n_features: int, n_outputs: int, hidden: int = DEFAULT_HIDDEN) -> nn.Module:
    """``"mlp"`` or ``"linear"``; anything else is a clear ``ValueError``."""
    if kind == "mlp":
        return MLP(n_features, n_outputs, hidden)
    if kind == "linear":
        return LinearModel(n_features, n_outputs)
    raise ValueError(f"model must be 'mlp' or 'linear', got {kind!r}.")


# --------------------------------------------------------------------------- the one MLP trainer
BATCH_NORM_EPS, BATCH_NORM_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm1d's defaults


def loss_function(task: str) -> nn.Module:
    """Cross-entropy for classification, mean squared error for (standardised) regression targets."""
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def exponential_lr(optimizer: torch.optim.Optimizer, decay: float, total_steps: int
                   ) -> torch.optim.lr_scheduler.ExponentialLR:
    """The learning rate falls by the factor ``decay`` over ``total_steps`` optimizer steps (1.0: constant)."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(decay) ** (1.0 / max(1, total_steps)))


def batch_rows(n_rows: int, batch_size: int, generators: Sequence[torch.Generator]) -> Iterator[torch.Tensor]:
    """Mini-batch row indices for ``len(generators)`` side-by-side trainings, shape (M, batch_size), forever.

    Each generator draws a fresh permutation of the rows whenever the current one cannot fill
    another batch (the incomplete rest is dropped), so with ``batch_size ≤ n_rows`` every
    epoch visits ``n_rows // batch_size`` full batches.
    """
    def permutations() -> torch.Tensor:
        return torch.stack([torch.randperm(n_rows, generator=g) for g in generators])

    orders, cursor = permutations(), 0
    while True:
        if cursor + batch_size > n_rows:
            orders, cursor = permutations(), 0
        yield orders[:, cursor:cursor + batch_size]
        cursor += batch_size


class StackedMLP:
    """M networks of :class:`MLP`'s architecture as one set of stacked (grouped) weights.

    Member m has its own inputs (``widths[m]`` of them: narrower inputs are zero-padded
    and masked after the BatchNorm, so padding gets no gradient), its own initialisation
    (drawn as ``MLP(widths[m], …)`` draws it after ``torch.manual_seed(seeds[m])``), its
    own BatchNorm statistics and — through the summed loss and element-wise Adam — its own
    gradients and optimizer state. One batched step (``baddbmm``) of a small MLP costs
    about what one network's step costs, which is why evaluation trains them together.
    """

    def __init__(self, widths: Sequence[int], n_outputs: int, hidden: int, seeds: Sequence[int],
                 device: torch.device, keep_inputs: Sequence[int] | None = None):
        """``keep_inputs``: every member is drawn as ``MLP(widths[m], …)`` and then keeps only these input
        columns (its BatchNorm and first-layer weights on them): the same network as the full-width one on
        those columns, for inputs that would be weighted 0 anyway (Sequential Attention's banned genes)."""
        keep = None if keep_inputs is None else torch.as_tensor(np.asarray(keep_inputs), dtype=torch.long)
        kept = list(widths) if keep is None else [len(keep)] * len(widths)
        M, K = len(widths), max(kept)
        self.widths, self.n_outputs, self.hidden = kept, n_outputs, hidden
        self.params = {name: torch.zeros(shape, device=device) for name, shape in (
            ("gamma", (M, 1, K)), ("beta", (M, 1, K)), ("w1", (M, K, hidden)), ("b1", (M, 1, hidden)),
            ("w2", (M, hidden, n_outputs)), ("b2", (M, 1, n_outputs)))}
        for m, (width, seed) in enumerate(zip(widths, seeds)):
            torch.manual_seed(seed)
            net = MLP(width, n_outputs, hidden)
            gamma, beta, w1 = net.norm.weight.detach(), net.norm.bias.detach(), net.hidden.weight.detach().T
            if keep is not None:
                gamma, beta, w1 = gamma[keep], beta[keep], w1[keep]
            self.params["gamma"][m, 0, :len(gamma)] = gamma
            self.params["beta"][m, 0, :len(beta)] = beta
            self.params["w1"][m, :len(w1)] = w1
            self.params["b1"][m, 0] = net.hidden.bias.detach()
            self.params["w2"][m] = net.out.weight.detach().T
            self.params["b2"][m, 0] = net.out.bias.detach()
        for value in self.params.values():
            value.requires_grad_(True)
        self.mask = torch.zeros((M, 1, K), device=device)
        for m, width in enumerate(kept):
            self.mask[m, 0, :width] = 1.0
        self.running_mean = torch.zeros((M, 1, K), device=device)
        self.running_var = torch.ones((M, 1, K), device=device)
        self.steps = 0
        self.target_scales = [(0.0, 1.0)] * M  # (mean, std) of standardised regression targets

    def train_forward(self, x: torch.Tensor, feature_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (M, rows, outputs) with batch statistics; the running statistics follow, as in training mode.

        ``feature_weights`` (M, 1, inputs) multiply each member's normalised inputs, as :class:`MLP`'s do
        (Sequential Attention's mask, one row per member)."""
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)  # torch's var over dim 1 of a 3-d tensor is ~100× slower
        with torch.no_grad():
            n = x.shape[1]
            self.running_mean.mul_(1 - BATCH_NORM_MOMENTUM).add_(BATCH_NORM_MOMENTUM * mean)
            self.running_var.mul_(1 - BATCH_NORM_MOMENTUM).add_(BATCH_NORM_MOMENTUM * var * (n / max(n - 1, 1)))
        self.steps += 1
        return self._forward(x, mean, var, self.params, self._weighted_mask(feature_weights))

    def eval_forward(self, x: torch.Tensor, feature_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Every member's outputs on its rows ``x`` (M, rows, inputs) with its running statistics (eval mode)."""
        return self._forward(x, self.running_mean, self.running_var, self.params, self._weighted_mask(feature_weights))

    def _weighted_mask(self, feature_weights: torch.Tensor | None) -> torch.Tensor:
        return self.mask if feature_weights is None else self.mask * feature_weights

    @torch.no_grad()
    def predict(self, m: int, x: torch.Tensor) -> np.ndarray:
        """Member m's outputs on ``x`` (rows × its inputs, zero-padded here) with its running statistics."""
        padded = torch.zeros((1, x.shape[0], self.mask.shape[2]), device=x.device)
        padded[0, :, : x.shape[1]] = x
        one = {name: value[m:m + 1] for name, value in self.params.items()}
        return self._forward(padded, self.running_mean[m:m + 1], self.running_var[m:m + 1], one,
                             self.mask[m:m + 1])[0].cpu().numpy()

    @staticmethod
    def _forward(x, mean, var, params: dict, mask) -> torch.Tensor:
        """BN (given statistics) → Linear → ReLU → Linear for every member; x: (members, rows, inputs)."""
        normed = ((x - mean) / torch.sqrt(var + BATCH_NORM_EPS) * params["gamma"] + params["beta"]) * mask
        hidden = torch.relu(torch.baddbmm(params["b1"], normed, params["w1"]))
        return torch.baddbmm(params["b2"], hidden, params["w2"])

    def member(self, m: int) -> MLP:
        """Member m as a plain :class:`MLP` in eval mode (for tools that need a module, e.g. SHAP)."""
        width, params = self.widths[m], {name: value.detach()[m] for name, value in self.params.items()}
        net = MLP(width, self.n_outputs, self.hidden).to(self.mask.device)
        with torch.no_grad():
            net.norm.weight.copy_(params["gamma"][0, :width])
            net.norm.bias.copy_(params["beta"][0, :width])
            net.norm.running_mean.copy_(self.running_mean[m, 0, :width])
            net.norm.running_var.copy_(self.running_var[m, 0, :width])
            net.norm.num_batches_tracked.fill_(self.steps)
            net.hidden.weight.copy_(params["w1"][:width].T)
            net.hidden.bias.copy_(params["b1"][0])
            net.out.weight.copy_(params["w2"].T)
            net.out.bias.copy_(params["b2"][0])
        net.eval()
        net.target_scale = self.target_scales[m]
        return net


def train_mlps(problems: Sequence[tuple[np.ndarray, np.ndarray, int]], task: str, n_outputs: int, *,
               config: TrainConfig = TrainConfig(), device: str | torch.device = "auto",
               progress: Callable[[int, int], Any] | None = None) -> StackedMLP:
    """Train one :class:`MLP` per ``(X_train, y_train, seed)`` side by side (:class:`StackedMLP`); the library's
    one MLP trainer.

    Every problem needs as many training rows; inputs are used as given (standardise them first).
    Adam at ``config.learning_rate``, decaying by ``config.lr_decay`` over the run; ``config.epochs`` epochs
    of ``config.batch_size``-row batches (capped at the rows), each member with its own batch order from
    its seed. Regression targets are standardised for training (``target_scales`` undoes it). On the CPU it
    runs on one thread: a 67-unit MLP only loses from intra-op threading on busy cores. ``progress(step,
    total_steps)`` is called about 50 times along the way (a long training then still reports).
    """
    from seqattn.device import resolve_device, torch_threads

    n_train = {len(p[1]) for p in problems}
    if len(n_train) != 1:
        raise ValueError(f"train_mlps needs equally many training rows in every problem, got {n_train}.")
    dev = resolve_device(device)
    n = n_train.pop()
    widths = [p[0].shape[1] for p in problems]
    X = np.zeros((len(problems), n, max(widths)), dtype=np.float32)
    targets, scales = [], []
    for m, (X_train, y_train, _) in enumerate(problems):
        X[m, :, : widths[m]] = X_train
        scale = (float(y_train.mean()), float(y_train.std()) or 1.0) if task == "regression" else (0.0, 1.0)
        targets.append((y_train - scale[0]) / scale[1] if task == "regression" else y_train)
        scales.append(scale)
    with torch_threads(1, dev), torch.random.fork_rng(devices=[]):
        stack = StackedMLP(widths, n_outputs, config.hidden, [p[2] for p in problems], dev)
        stack.target_scales = scales
        target = torch.tensor(np.stack(targets), dtype=torch.float32 if task == "regression" else torch.long,
                              device=dev)
        _fit_stack(stack, torch.tensor(X, device=dev), target, task, config, [p[2] for p in problems], progress)
    return stack


def _fit_stack(stack: StackedMLP, xt: torch.Tensor, target: torch.Tensor, task: str, config: TrainConfig,
               seeds: Sequence[int], progress: Callable[[int, int], Any] | None = None) -> None:
    """The training loop of :func:`train_mlps`: Adam on the summed per-member mean losses."""
    n = xt.shape[1]
    batch = int(min(config.batch_size, n))
    total_steps = config.epochs * max(1, n // batch)
    optimizer = torch.optim.Adam(list(stack.params.values()), lr=config.learning_rate)
    schedule = exponential_lr(optimizer, config.lr_decay, total_steps)
    rows_stream = batch_rows(n, batch, [torch.Generator().manual_seed(seed) for seed in seeds])
    report_every = max(1, total_steps // 50)
    for step, rows in zip(range(total_steps), rows_stream):
        _stack_step(stack, optimizer, xt, target, rows.to(xt.device), task)
        schedule.step()
        if progress is not None and (step + 1) % report_every == 0:
            progress(step + 1, total_steps)


def _stack_step(stack: StackedMLP, optimizer: torch.optim.Optimizer, xt: torch.Tensor, target: torch.Tensor,
                rows: torch.Tensor, task: str) -> None:
    """One optimizer step of every member on its rows (M, batch) of ``xt`` (M, n, inputs)."""
    members = torch.arange(xt.shape[0], device=xt.device)[:, None]
    out = stack.train_forward(xt[members, rows])
    picked = target[members, rows]
    if task == "regression":
        loss = ((out[..., 0] - picked) ** 2).mean(dim=1).sum()
    else:
        loss = nn.functional.cross_entropy(out.reshape(-1, stack.n_outputs), picked.reshape(-1),
                                           reduction="none").view(xt.shape[0], -1).mean(dim=1).sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@functools.lru_cache(maxsize=64)
def measured_step_seconds(n_inputs: int, batch_size: int, members: int = 1, hidden: int = DEFAULT_HIDDEN,
                          n_outputs: int = 10) -> float:
    """Seconds of one training step of ``members`` stacked MLPs on this machine, measured (median of 5 steps
    after one warm-up step, one CPU thread, random data) and cached per shape: the per-step cost that
    progress estimates multiply by their step counts."""
    import time

    from seqattn.device import torch_threads

    generator = torch.Generator().manual_seed(0)
    with torch_threads(1, "cpu"), torch.random.fork_rng(devices=[]):
        stack = StackedMLP([n_inputs] * members, n_outputs, hidden, [0] * members, torch.device("cpu"))
        xt = torch.randn((members, batch_size, n_inputs), generator=generator)
        target = torch.randint(0, n_outputs, (members, batch_size), generator=generator)
        rows = torch.arange(batch_size).expand(members, batch_size)
        optimizer = torch.optim.Adam(list(stack.params.values()), lr=1e-3)
        times = []
        for _ in range(6):
            started = time.perf_counter()
            _stack_step(stack, optimizer, xt, target, rows, "classification")
            times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def train_mlp(X_train: np.ndarray, y_train: np.ndarray, task: str, n_outputs: int, *, seed: int = 0,
              config: TrainConfig = TrainConfig(), device: str = "auto",
              progress: Callable[[int, int], Any] | None = None) -> MLP:
    """One :class:`MLP` trained by :func:`train_mlps`; returned in eval mode, ``net.target_scale`` holding
    ``(mean, std)`` of the standardised regression target."""
    return train_mlps([(np.asarray(X_train), np.asarray(y_train), seed)], task, n_outputs, config=config,
                      device=device, progress=progress).member(0)
