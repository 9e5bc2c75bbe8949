"""Planted synthetic data: features whose relevance is known, for checking selectors against ground truth."""
from __future__ import annotations

import numpy as np

from seqattn.data.dataset import TASKS, Dataset
from seqattn.data.errors import DataError


def make_planted(
    n_samples: int = 1000,
    n_features: int = 50,
    n_informative: int = 5,
    task: str = "classification",
    xor_pairs: int = 0,
    redundant: int = 0,
    noise: float = 0.1,
    n_classes: int = 2,
    random_state: int | None = 0,
) -> Dataset:
    """Synthetic data whose informative features are known.

    * ``n_informative`` features enter the target linearly with weights of
      magnitude 1–2 (random signs);
    * each of ``xor_pairs`` pairs (a, b) enters as ``sign(x_a · x_b)``: neither
      feature has any marginal signal, so univariate filters cannot see them;
    * ``redundant`` extra columns are noisy copies of informative ones (not
      counted as informative: picking the original *or* the copy is fine,
      picking both wastes a slot);
    * the rest is Gaussian noise. ``noise`` scales label/target noise.

    Classification thresholds the signal into ``n_classes`` equal-mass bins.
    """
    n_signal = _check_planted(task, n_samples, n_features, n_informative, xor_pairs, redundant)
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features)).astype(np.float32)
    positions = rng.permutation(n_features)
    linear = positions[:n_informative]
    xor = positions[n_informative:n_signal].reshape(-1, 2) if xor_pairs else np.empty((0, 2), dtype=int)
    copies = positions[n_signal:n_signal + redundant]

    signal = _planted_signal(X, linear, xor, rng)
    originals = np.concatenate([linear, xor.ravel()]).astype(int)
    redundant_of = _add_redundant_copies(X, copies, originals, rng)
    target = signal + noise * rng.standard_normal(n_samples)
    y, class_names = _planted_labels(target, task, n_classes)
    return Dataset(
        X=X,
        y=y,
        feature_names=[f"x{i}" for i in range(n_features)],
        task=task,
        name="planted",
        class_names=class_names,
        informative=np.sort(originals),
        description=(
            f"Synthetic {task}: {n_informative} linear informative features, {xor_pairs} XOR pair(s), "
            f"{redundant} redundant copies, {n_features - n_signal - redundant} pure-noise features."
        ),
        extra={
            "linear": sorted(int(i) for i in linear),
            "xor_pairs": [sorted(int(i) for i in pair) for pair in xor],
            "redundant_of": redundant_of,
        },
    )


def _check_planted(task: str, n_samples: int, n_features: int, n_informative: int, xor_pairs: int,
                   redundant: int) -> int:
    """The number of signal columns (linear + both members of each XOR pair), once the sizes fit."""
    if task not in TASKS:
        raise DataError(f"task must be one of {TASKS}, got {task!r}.")
    n_signal = n_informative + 2 * xor_pairs
    if n_signal == 0:
        raise DataError("Plant at least one informative feature or XOR pair.")
    if n_signal + redundant > n_features:
        raise DataError(
            f"{n_informative} informative + {2 * xor_pairs} XOR + {redundant} redundant features "
            f"do not fit in n_features={n_features}."
        )
    if n_samples < 10:
        raise DataError("n_samples must be at least 10.")
    return n_signal


def _planted_signal(X: np.ndarray, linear: np.ndarray, xor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Standardised signal: random-sign weights (magnitude 1–2) on ``linear``, ``1.5·sign(x_a·x_b)`` per pair."""
    n_informative = len(linear)
    weights = rng.uniform(1.0, 2.0, size=n_informative) * rng.choice([-1.0, 1.0], size=n_informative)
    signal = X[:, linear] @ weights if n_informative else np.zeros(X.shape[0])
    for a, b in xor:
        signal = signal + 1.5 * np.sign(X[:, a] * X[:, b])
    return (signal - signal.mean()) / (signal.std() + 1e-12)


def _add_redundant_copies(X: np.ndarray, copies: np.ndarray, originals: np.ndarray,
                          rng: np.random.Generator) -> dict[int, int]:
    """Overwrite each ``copies`` column with a noisy copy of an original (in turn); ``{copy: original}``."""
    redundant_of = {}
    for j, col in enumerate(copies):
        source = int(originals[j % len(originals)])
        X[:, col] = X[:, source] + 0.1 * rng.standard_normal(X.shape[0]).astype(np.float32)
        redundant_of[int(col)] = source
    return redundant_of


def _planted_labels(target: np.ndarray, task: str, n_classes: int) -> tuple[np.ndarray, list[str] | None]:
    """``(y, class names)``: ``n_classes`` equal-mass bins of the target, or the target itself for regression."""
    if task != "classification":
        return target.astype(np.float32), None
    if n_classes < 2:
        raise DataError("n_classes must be at least 2.")
    edges = np.quantile(target, np.linspace(0, 1, n_classes + 1)[1:-1])
    return np.digitize(target, edges), [f"class {c}" for c in range(n_classes)]
