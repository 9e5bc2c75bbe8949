"""Standardisation that never divides by ~0, shared by in-memory code and the row streams.

A leaf module (numpy only): :mod:`seqattn.data.stream` standardises each batch
with :func:`safe_scale`, and :func:`seqattn.data.column_mean_var` hands backed
data to the stream, so neither may import the other's home.
"""
from __future__ import annotations

import numpy as np


def safe_scale(std: np.ndarray) -> np.ndarray:
    """Column scales with (near-)constant columns set to 1, so standardising never divides by ~0."""
    std = np.array(std, dtype=np.float64)
    std[std < 1e-12] = 1.0
    return std


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``train`` and ``others`` standardised with the training columns' mean and (safe) std."""
    mean, std = train.mean(axis=0), safe_scale(train.std(axis=0))
    return [(a - mean) / std for a in (train, *others)]
