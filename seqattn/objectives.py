"""What Sequential Attention's network is trained to do: the selection objective.

Plain SA minimises the model's loss (cross-entropy, or MSE for regression), so the attention follows
whatever lowers that loss most. For gene panels two additions matter (issue 20):

* **Every class counts** (``class_weight="balanced"``): cross-entropy with each class weighted by
  ``n / (C · n_c)`` on the rows the network trains on, as scikit-learn's ``class_weight="balanced"``.
  Every class then contributes equally to the loss, as it does to balanced accuracy, so a gene that
  tells a rare cell type apart is worth as much to the attention as one for a large type.
* **Structure as well as labels** (``structure_weight`` λ > 0): the network gets ``structure_components``
  extra outputs (a second head on the same hidden units) that predict the leading principal components
  of *all* the input columns from the attention-weighted inputs, as PERSIST (Covert et al. 2023)
  reconstructs expression from its panel. The loss is ``task loss + λ · unexplained`` where
  ``unexplained`` is the share of those components' variance the head misses (1 for predicting the mean,
  0 for a perfect reconstruction), so λ = 1 weighs "all of the leading structure" like one nat of
  cross-entropy. The components are those of the centred, unscaled columns (as ``sc.tl.pca`` and the
  panel evaluator's kNN and cluster metrics see them), fitted on at most STRUCTURE_ROWS training rows.
  The head sees standardised inputs, so it is blind to a gene's variance, which the evaluator's kNN graph
  on the panel's unscaled genes is not; with a coverage rule λ also sets the share of picks made for the
  structure (:func:`seqattn.selectors.coverage.structure_share`). Off by default: benchmarks/README.md,
  *Structure*, has the measured trade-off.

:class:`SelectionObjective` is fitted once on the training rows and asked for ``loss(out, y, x)`` on every
batch (``x`` the standardised batch the network sees, from which the structure targets are projected:
nothing per cell is stored, so it works for backed data too).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from seqattn.selectors.defaults import CLASS_WEIGHTS  # declared there for the CLI (no torch)

#: The structure head's components are fitted on at most this many training rows (read once).
STRUCTURE_ROWS = 2000


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's ``"balanced"`` weights ``n / (C · n_c)`` over the C classes present; 0 for absent ones."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def structure_components(source: Any, rows: np.ndarray, n_components: int,
                         random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(V, shares)``: the leading principal axes of the centred, unscaled columns (columns × components),
    divided by sqrt(the components' total variance), and each component's share of that variance.

    Fitted on at most STRUCTURE_ROWS of ``rows`` (sparse data stays sparse: arpack with implicit centring).
    A row's scaled scores are ``(x − μ) V``; for a standardised row ``x_std · scale`` replaces ``x − μ``.
    """
    from sklearn.decomposition import PCA

    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) > STRUCTURE_ROWS:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, STRUCTURE_ROWS, replace=False))
    block = source.to_memory(rows) if source.is_backed else source.read(rows)
    n_rows, n_cols = block.shape
    n_components = int(max(1, min(n_components, n_rows - 1, n_cols - 1)))
    if sp.issparse(block):
        pca = PCA(n_components=n_components, svd_solver="arpack", random_state=random_state)
        pca.fit(sp.csr_matrix(block, dtype=np.float64))
    else:
        solver = "full" if min(n_rows, n_cols) <= 500 else "randomized"
        pca = PCA(n_components=n_components, svd_solver=solver, random_state=random_state)
        pca.fit(np.asarray(block, dtype=np.float64))
    variance = pca.explained_variance_
    total = float(variance.sum()) or 1.0
    return (pca.components_.T / np.sqrt(total)).astype(np.float32), variance / total


@dataclass
class SelectionObjective:
    """The loss SA trains on: task loss (class-weighted or not) + λ · the structure head's unexplained share.

    Built by :meth:`fit` for M runs trained side by side (M = 1 for one fit): ``class_weights`` is
    (M, classes), ``projection`` (M, columns, components) maps each run's standardised rows to the scaled
    component scores. ``extra_outputs`` is how many outputs the network needs beyond the task's.
    """

    task: str
    n_task_outputs: int
    class_weights: torch.Tensor | None = None
    structure_weight: float = 0.0
    projection: torch.Tensor | None = None
    shares: np.ndarray | None = None

    @classmethod
    def fit(cls, *, task: str, n_task_outputs: int, y_train: Sequence[np.ndarray], scales: Sequence[np.ndarray],
            class_weight: str | None, structure_weight: float, n_components: int, source: Any,
            structure_rows: np.ndarray, device: torch.device, random_state: int = 0) -> "SelectionObjective":
        """The objective of M runs: ``y_train[m]`` the targets run m trains on (its class weights),
        ``scales[m]`` its column scales; the components come from ``structure_rows`` (training rows only)."""
        if class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be None or 'balanced', got {class_weight!r}.")
        if class_weight is not None and task != "classification":
            raise ValueError("class_weight='balanced' needs a classification target; this one is a regression "
                             "target. Leave class_weight=None.")
        weights = None
        if class_weight == "balanced":
            weights = torch.as_tensor(np.stack([balanced_class_weights(y, n_task_outputs) for y in y_train]),
                                      dtype=torch.float32, device=device)
        projection = shares = None
        if structure_weight > 0:
            axes, shares = structure_components(source, structure_rows, n_components, random_state)
            projection = torch.as_tensor(np.stack([np.asarray(s, dtype=np.float32)[:, None] * axes for s in scales]),
                                         device=device)
        return cls(task, n_task_outputs, weights, float(structure_weight), projection, shares)

    @property
    def extra_outputs(self) -> int:
        return 0 if self.projection is None else int(self.projection.shape[2])

    def member_losses(self, out: torch.Tensor, target: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Each run's loss (M,) from its outputs (M, rows, outputs), targets (M, rows) and inputs (M, rows, cols)."""
        task_out = out[..., :self.n_task_outputs]
        if self.task == "regression":
            loss = (task_out[..., 0] - target).pow(2).mean(dim=1)
        else:  # cross-entropy, weighted per class and normalised by the batch's total weight (as torch does)
            nll = -torch.log_softmax(task_out, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
            if self.class_weights is None:
                loss = nll.mean(dim=1)
            else:
                w = self.class_weights.gather(1, target)
                loss = (w * nll).sum(dim=1) / w.sum(dim=1).clamp_min(1e-12)
        if self.projection is not None:
            loss = loss + self.structure_weight * self.structure_losses(out, x)
        return loss

    def structure_losses(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Each run's share of the leading components' variance its structure head does not reconstruct."""
        target = torch.bmm(x, self.projection)
        return (out[..., self.n_task_outputs:] - target).pow(2).sum(dim=-1).mean(dim=1)

    def loss(self, out: torch.Tensor, target: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One run's loss (the objective built for M = 1) on a batch (rows, ·)."""
        return self.member_losses(out[None], target[None], x[None])[0]

    def describe(self) -> dict[str, Any]:
        """JSON-safe record for the trace's settings."""
        record: dict[str, Any] = {"class_weight": "balanced" if self.class_weights is not None else None,
                                  "structure_weight": self.structure_weight}
        if self.projection is not None:
            record.update(structure_components=self.extra_outputs,
                          structure_variance_shares=[round(float(v), 4) for v in self.shares])
        return record
