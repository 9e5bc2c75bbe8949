"""A rare cell type beside two large ones: the planted data of the panel-objective tests."""
from __future__ import annotations

import numpy as np


def rare_type_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two large types (A, B: 300 cells each) told apart by six marker columns (0–5, each a noisy copy of
    the A/B signal: up in A, down in B) and a rare type C (12 cells, 2 %) whose only marker is column 6."""
    rng = np.random.default_rng(seed)
    y = np.array([0] * 300 + [1] * 300 + [2] * 12)
    X = rng.normal(size=(len(y), 30)).astype(np.float32)
    ab = np.where(y == 0, 1.0, np.where(y == 1, -1.0, 0.0))
    X[:, :6] += 1.2 * ab[:, None]
    X[y == 2, 6] += 5.0
    return X, y
