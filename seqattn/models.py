"""The small networks every selector and evaluator shares.

``MLP`` is the reference model of the Sequential Attention paper:
BatchNorm -> Linear(hidden) -> ReLU -> Linear(out). ``LinearModel`` is the
ℓ2-regularised linear model used for the OMP link. Both accept an optional
``feature_weights`` vector that multiplies the (normalised) inputs: that is
where the attention mask plugs in.
"""
from __future__ import annotations

import torch
from torch import nn

DEFAULT_HIDDEN = 67  # the reference implementation's hidden width


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
