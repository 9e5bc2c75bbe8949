"""The ``Dataset`` type and the checks and transforms every reader, selector and evaluator shares.

Everything that reads user data raises :class:`DataError` with a message a
person can act on; the app shows that message, the CLI prints it and exits 2.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from seqattn.data.errors import DataError

TASKS = ("classification", "regression")


@dataclass
class Dataset:
    """Features, target and what we know about them.

    ``X`` is float32, dense ``np.ndarray`` or ``scipy.sparse.csr_matrix`` (large
    single-cell data stays sparse until a mini-batch needs it). ``y`` holds
    integer class codes (``class_names`` maps them back) or float targets.
    ``X`` may also be a :class:`seqattn.data.stream.BackedRows` (``backed``:
    an h5ad matrix left on disk); SA streams it, other methods need it in memory.
    ``informative`` is the ground truth for synthetic data (indices), ``None``
    when unknown. ``groups`` (:class:`~seqattn.data.groups.FeatureGroups`) makes
    several columns one selection unit (one-hot text columns, missing-value
    indicators, gene sets); ``None`` means one group per column.
    """

    X: Any
    y: np.ndarray
    feature_names: list[str]
    task: str
    name: str = "data"
    class_names: list[str] | None = None
    image_shape: tuple[int, int] | None = None
    informative: np.ndarray | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    groups: Any = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"task must be one of {TASKS}, got {self.task!r}.")
        if getattr(self.X, "is_backed", False):
            pass  # rows on disk (seqattn.data.stream.BackedRows): read in chunks, never loaded whole
        elif sp.issparse(self.X):
            self.X = sp.csr_matrix(self.X, dtype=np.float32)
        else:
            self.X = np.ascontiguousarray(np.asarray(self.X, dtype=np.float32))
        if self.X.ndim != 2:
            raise DataError(f"X must be 2-D (samples × features), got shape {self.X.shape}.")
        self.y = np.asarray(self.y)
        self.y = self.y.astype(np.int64) if self.task == "classification" else self.y.astype(np.float32)
        if len(self.y) != self.X.shape[0]:
            raise DataError(f"X has {self.X.shape[0]} rows but y has {len(self.y)} values.")
        self.feature_names = [str(n) for n in self.feature_names]
        if len(self.feature_names) != self.X.shape[1]:
            raise DataError(f"{len(self.feature_names)} feature names for {self.X.shape[1]} columns.")
        if self.informative is not None:
            self.informative = np.asarray(self.informative, dtype=np.int64)
        if self.groups is not None:
            if self.groups.n_columns != self.X.shape[1]:
                raise DataError(f"The feature groups cover {self.groups.n_columns} columns but X has "
                                f"{self.X.shape[1]}.")
            if self.groups.trivial and list(self.groups.names) == self.feature_names:
                self.groups = None

    @property
    def n_groups(self) -> int:
        """Selection units: groups when the data set has them, else columns."""
        return self.groups.n_groups if self.groups is not None else self.n_features

    def with_groups(self, groups: Any) -> "Dataset":
        """A copy whose selection units are ``groups``: a mapping ``{name: [column names or indices]}``
        (columns in no group keep their current group) or a :class:`~seqattn.data.groups.FeatureGroups`."""
        from dataclasses import replace

        from seqattn.data.groups import FeatureGroups

        if not isinstance(groups, FeatureGroups):
            groups = FeatureGroups.from_mapping(groups, self.feature_names, self.groups)
        return replace(self, groups=groups, extra=dict(self.extra))

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1 if self.task == "classification" and len(self.y) else 0

    @property
    def backed(self) -> bool:
        """True when the rows stay on disk (h5ad opened with ``backed=True``)."""
        return bool(getattr(self.X, "is_backed", False))

    def dense_X(self) -> np.ndarray:
        """X as a dense float32 array (materialises sparse or backed data: mind the memory)."""
        if self.backed:
            X = self.X.to_memory()
            return X.toarray() if sp.issparse(X) else X
        return self.X.toarray() if sp.issparse(self.X) else self.X

    def frame(self) -> Any:
        """X as a pandas DataFrame whose columns are the feature names (sparse X stays sparse, in pandas'
        sparse columns): what scikit-learn estimators read names from (``feature_names_in_``), so
        ``SequentialAttentionSelector().fit(dataset.frame(), dataset.y)`` reports gene names, not ``x641``."""
        import pandas as pd

        if self.backed:
            raise DataError("This data set's rows stay on disk (backed); fit a selector with fit_dataset(dataset) "
                            "instead, which keeps the feature names and streams the rows.")
        if sp.issparse(self.X):
            return pd.DataFrame.sparse.from_spmatrix(self.X, columns=self.feature_names)
        return pd.DataFrame(self.X, columns=self.feature_names, copy=False)

    def summary(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": self.name,
            "samples": self.n_samples,
            "features": self.n_features,
            "task": self.task,
            "sparse": bool(sp.issparse(self.X) or getattr(self.X, "sparse", False)),
        }
        if self.backed:
            info["backed (on disk)"] = True
        if self.task == "classification":
            info["classes"] = self.n_classes
        if self.image_shape:
            info["image_shape"] = f"{self.image_shape[0]}×{self.image_shape[1]}"
        if self.groups is not None:
            info["feature groups"] = self.groups.n_groups
        if self.informative is not None:
            info["informative (ground truth)"] = len(self.informative)
        return info


def infer_task(y: np.ndarray) -> str:
    """Classification for non-float targets or few distinct integer values, else regression."""
    y = np.asarray(y)
    if y.dtype.kind in "OUSb":
        return "classification"
    values = np.unique(y[~np.isnan(y)]) if y.dtype.kind == "f" else np.unique(y)
    integral = y.dtype.kind in "iu" or np.all(np.mod(values, 1) == 0)
    if integral and len(values) <= max(20, int(0.05 * len(y)) if len(y) < 400 else 20):
        return "classification"
    return "regression"


def encode_target(y: np.ndarray, task: str) -> tuple[np.ndarray, list[str] | None]:
    """Class labels -> integer codes 0..C-1 (with names); regression targets -> float32."""
    y = np.asarray(y)
    if task == "regression":
        try:
            return y.astype(np.float32), None
        except (TypeError, ValueError) as exc:
            raise DataError("The target is not numeric, so it cannot be a regression target; "
                            "choose task='classification'.") from exc
    classes, codes = np.unique(y.astype(str) if y.dtype.kind == "O" else y, return_inverse=True)
    return codes.astype(np.int64), [str(c) for c in classes]


def column_mean_var(X: Any, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) variance in float64; sparse X is never densified."""
    if getattr(X, "is_backed", False):  # on disk: one streaming pass
        from seqattn.data.stream import stream_mean_var

        return stream_mean_var(X, rows)
    if rows is not None:
        X = X[rows]
    n = X.shape[0]
    if n == 0:
        return np.zeros(X.shape[1]), np.zeros(X.shape[1])
    if sp.issparse(X):
        mean = np.asarray(X.sum(axis=0), dtype=np.float64).ravel() / n
        sq = X.copy()
        sq.data = sq.data.astype(np.float64) ** 2
        mean_sq = np.asarray(sq.sum(axis=0)).ravel() / n
    else:
        X64 = X.astype(np.float64, copy=False)
        mean = X64.mean(axis=0)
        mean_sq = (X64 ** 2).mean(axis=0)
    return mean, np.maximum(mean_sq - mean ** 2, 0.0)


def validate_k(k: Any, n_features: int, *, n_pinned: int = 0, n_banned: int = 0, name: str = "k") -> int:
    """The one check of "how many features to pick" against the data; returns ``int(k)``.

    ``n_pinned`` / ``n_banned`` features cannot be picked, so they shrink the
    room. Every selector and reader calls this, so the messages are alike.
    """
    integral = isinstance(k, numbers.Integral) or (isinstance(k, float) and k.is_integer())
    if isinstance(k, bool) or not integral or k < 1:
        raise DataError(f"{name} must be a positive whole number, got {k!r}; give a positive integer (≥ 1).")
    k_int, available = int(k), n_features - n_pinned - n_banned
    if k_int > available:
        if n_pinned or n_banned:
            advice = (f"choose {name} ≤ {available}" if available > 0 else
                      "every feature is pinned or banned: unpin or unban some")
            raise DataError(f"{name}={k_int} but only {max(available, 0)} features can be picked ({n_features} "
                            f"features, {n_pinned} pinned, {n_banned} banned); {advice}.")
        raise DataError(f"{name}={k_int} is larger than the number of features ({n_features}): only "
                        f"{n_features} features can be picked; choose {name} between 1 and {n_features}.")
    return k_int


def dense_columns(X: Any, columns: Sequence[int], dtype: Any = None) -> np.ndarray:
    """A dense copy of some columns (sparse data is densified column-wise only), optionally cast."""
    block = X[:, list(columns)]
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return block if dtype is None else block.astype(dtype, copy=False)


def attach_preprocessing(settings: dict[str, Any], dataset: "Dataset") -> dict[str, Any]:
    """Copy the data set's preprocessing record (``extra["preprocessing"]``) into run settings.

    The one place provenance is attached, so a saved trace says how its input was prepared.
    """
    if "preprocessing" in dataset.extra:
        settings["preprocessing"] = dataset.extra["preprocessing"]
    return settings


def check_pinned_banned(n_features: int, pinned: Sequence[int] = (), banned: Sequence[int] = (),
                        feature_names: Sequence[str] | None = None) -> tuple[list[int], list[int]]:
    """Pinned and banned feature indices, checked against ``n_features`` and de-duplicated in order.

    Every selector takes both lists; one check keeps their messages alike.
    Negative indices are refused rather than silently counted from the end.
    With ``feature_names``, a feature both pinned and banned is named, not numbered.
    """
    pinned, banned = _whole_numbers("pinned", pinned), _whole_numbers("banned", banned)
    for label, indices in (("pinned", pinned), ("banned", banned)):
        outside = [i for i in indices if not 0 <= i < n_features]
        if outside:
            raise DataError(f"{label} holds indices outside 0..{n_features - 1}: {outside}.")
    both = sorted(set(pinned) & set(banned))
    if both:
        named = f" ({', '.join(str(feature_names[i]) for i in both)})" if feature_names is not None else ""
        raise DataError(f"Features both pinned and banned: {both}{named}; unpin or unban them.")
    return list(dict.fromkeys(pinned)), list(dict.fromkeys(banned))


def _whole_numbers(label: str, values: Sequence[Any]) -> list[int]:
    """Feature indices as ints; 1.5, "3", True or a gene name are refused instead of silently truncated."""
    if isinstance(values, (str, bytes)):
        raise DataError(f"{label} must be a list of feature indices, got the single string {values!r}.")
    bad = [v for v in values if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, numbers.Real))
           or (not isinstance(v, numbers.Integral) and not float(v).is_integer())]
    if bad:
        raise DataError(f"{label} must hold feature indices (whole numbers), got {_short_list(bad)}; to name features "
                        "use their indices (e.g. seqattn.genomics.genes_to_indices).")
    return [int(v) for v in values]


def _short_list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "") + "]"


def split_indices(
    n_samples: int,
    y: np.ndarray | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test index arrays, stratified when ``y`` holds classes."""
    from sklearn.model_selection import train_test_split

    index = np.arange(n_samples)
    strat = y if y is not None and _can_stratify(y, val_fraction + test_fraction) else None
    holdout = val_fraction + test_fraction
    if holdout <= 0:
        return index, index[:0], index[:0]
    train, rest = train_test_split(index, test_size=holdout, random_state=random_state, stratify=strat)
    if test_fraction <= 0:
        return train, rest, index[:0]
    if val_fraction <= 0:
        return train, index[:0], rest
    strat_rest = y[rest] if strat is not None and _can_stratify(y[rest], test_fraction / holdout) else None
    val, test = train_test_split(
        rest, test_size=test_fraction / holdout, random_state=random_state, stratify=strat_rest
    )
    return train, val, test


def _can_stratify(y: np.ndarray, fraction: float) -> bool:
    y = np.asarray(y)
    if y.dtype.kind not in "iub":
        return False
    _, counts = np.unique(y, return_counts=True)
    return len(counts) > 1 and counts.min() >= 2 and fraction * len(y) >= len(counts)
