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
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features)).astype(np.float32)
    positions = rng.permutation(n_features)
    linear = positions[:n_informative]
    xor = positions[n_informative:n_signal].reshape(-1, 2) if xor_pairs else np.empty((0, 2), dtype=int)
    copies = positions[n_signal:n_signal + redundant]

    weights = rng.uniform(1.0, 2.0, size=n_informative) * rng.choice([-1.0, 1.0], size=n_informative)
    signal = X[:, linear] @ weights if n_informative else np.zeros(n_samples)
    for a, b in xor:
        signal = signal + 1.5 * np.sign(X[:, a] * X[:, b])
    signal = (signal - signal.mean()) / (signal.std() + 1e-12)
    originals = np.concatenate([linear, xor.ravel()]).astype(int)
    redundant_of = {}
    for j, col in enumerate(copies):
        source = int(originals[j % len(originals)])
        X[:, col] = X[:, source] + 0.1 * rng.standard_normal(n_samples).astype(np.float32)
        redundant_of[int(col)] = source

    target = signal + noise * rng.standard_normal(n_samples)
    if task == "classification":
        if n_classes < 2:
            raise DataError("n_classes must be at least 2.")
        edges = np.quantile(target, np.linspace(0, 1, n_classes + 1)[1:-1])
        y = np.digitize(target, edges)
        class_names = [f"class {c}" for c in range(n_classes)]
    else:
        y = target.astype(np.float32)
        class_names = None

    informative = np.sort(originals)
    names = [f"x{i}" for i in range(n_features)]
    return Dataset(
        X=X,
        y=y,
        feature_names=names,
        task=task,
        name="planted",
        class_names=class_names,
        informative=informative,
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
