"""The small networks every selector and evaluator shares.

``MLP`` is the reference model of the Sequential Attention paper:
BatchNorm -> Linear(hidden) -> ReLU -> Linear(out). ``LinearModel`` is the
ℓ2-regularised linear model used for the OMP link. Both accept an optional
``feature_weights`` vector that multiplies the (normalised) inputs: that is
where the attention mask plugs in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

DEFAULT_HIDDEN = 67  # the reference implementation's hidden width


@dataclass(frozen=True)
class TrainConfig:
    """The shared hyper-parameters of a dense MLP fit, listed once.

    Used by :func:`train_mlp` (retraining on top-k picks, SHAP's dense model)
    and as Sequential Attention's MLP defaults. The class attributes are the
    defaults, so signatures can say ``epochs: int = TrainConfig.epochs``.
    """

    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 3e-3
    hidden: int = DEFAULT_HIDDEN


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


def train_mlp(X_train: np.ndarray, y_train: np.ndarray, task: str, n_outputs: int, *, seed: int = 0,
              config: TrainConfig = TrainConfig(), device: str = "auto") -> MLP:
    """Train :class:`MLP` with Adam (exponential LR decay); returns it in eval mode.

    Regression targets are standardised for training; ``net.target_scale``
    holds ``(mean, std)`` to undo that. On the CPU the training runs on one
    thread: a 67-unit MLP only loses from intra-op threading on busy cores.
    """
    from seqattn.device import resolve_device, torch_threads

    dev = resolve_device(device)
    if task == "regression":
        mu, sd = float(y_train.mean()), float(y_train.std()) or 1.0
        target = torch.tensor((y_train - mu) / sd, dtype=torch.float32, device=dev)
    else:
        mu, sd = 0.0, 1.0
        target = torch.tensor(y_train, dtype=torch.long, device=dev)
    xt = torch.tensor(np.asarray(X_train), dtype=torch.float32, device=dev)
    epochs = config.epochs
    batch = int(min(config.batch_size, len(xt)))
    per_epoch = max(1, len(xt) // batch)
    with torch_threads(1, dev), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MLP(xt.shape[1], n_outputs, config.hidden).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1.0 / max(1, epochs * per_epoch)))
        loss_fn = torch.nn.CrossEntropyLoss() if task == "classification" else torch.nn.MSELoss()
        gen = torch.Generator().manual_seed(seed)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=gen).to(dev)
            for b in range(per_epoch):
                rows = order[b * batch:(b + 1) * batch]
                out = net(xt[rows])
                loss = loss_fn(out.squeeze(-1) if task == "regression" else out, target[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    net.eval()
    net.target_scale = (mu, sd)
    return net
