"""The checks every loader shares, so a table, an h5ad file and an in-memory AnnData refuse alike.

Tables (:mod:`~seqattn.data.frame`), h5ad in memory or backed
(:mod:`~seqattn.data.h5ad`, :mod:`~seqattn.data.h5ad_backed`) and
:func:`seqattn.dataset_from_anndata` all end here: unique names, enough
samples, finite values, the one rule for constant columns, and the target
checks that build the :class:`~seqattn.data.Dataset`. Messages name what is
wrong (:func:`listing` keeps a list of 20k genes readable).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import limits
from seqattn.data.dataset import Dataset, encode_target, infer_task
from seqattn.data.errors import DataError


def listing(names: list[str], limit: int = 20) -> str:
    """``a, b, c, ... and 12 more`` so messages stay readable for 20k genes."""
    names = [str(n) if len(str(n)) <= 60 else str(n)[:57] + "..." for n in names]
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... and {len(names) - limit} more" if len(names) > limit else "")


def raise_duplicates(names: list[str], what: str, hint: str = "") -> None:
    """Raise :class:`DataError` naming each duplicated name once (call it when ``names`` holds duplicates)."""
    seen: set[str] = set()
    dupes: list[str] = []
    for n in names:
        if n in seen and n not in dupes:
            dupes.append(n)
        seen.add(n)
    raise DataError(f"Duplicate {what} names: {listing(dupes)}. Each {what} needs a unique name"
                    + (f"; {hint}" if hint else "; rename or drop the duplicates.") )


def check_enough_samples(n: int, what: str) -> None:
    """Refuse fewer than ``limits.MIN_SAMPLES`` rows / cells (``what``: "data row", "cell")."""
    if n < limits.MIN_SAMPLES:
        raise DataError(f"Only {n} {what}(s); feature selection needs at least {limits.MIN_SAMPLES} samples "
                        "(some are held out for validation). Upload more rows.")


def check_finite_dense(X: np.ndarray, names: list[str]) -> None:
    """Refuse NaN / inf in a dense matrix, naming the first ten columns that hold them and how many."""
    bad_mask = ~np.isfinite(X)
    if bad_mask.any():
        per_col = bad_mask.sum(axis=0)
        where = np.flatnonzero(per_col)
        details = ", ".join(f"{names[j]!r} ({int(per_col[j])})" for j in where[:10])
        more = f", ... and {len(where) - 10} more columns" if len(where) > 10 else ""
        raise DataError(f"Missing or infinite values (NaN/inf) in {len(where)} feature column(s): "
                        f"{details}{more}. Impute or drop those values first.")


def constant_columns(X: Any) -> np.ndarray:
    """Sorted indices of the columns whose values are all equal (dense or CSR; all-zero sparse columns too)."""
    if sp.issparse(X):
        # without a CSC copy: a column with some stored non-zeros and some zeros is not constant,
        # so only empty columns and the (rare) fully stored ones need a look at their values
        stored = X.data != 0
        nnz = np.bincount(X.indices[stored], minlength=X.shape[1])
        full = np.flatnonzero(nnz == X.shape[0])
        constant_full = []
        if len(full):
            block = X[:, full].toarray() if len(full) * X.shape[0] <= 50_000_000 else None
            if block is not None:
                constant_full = full[np.all(block == block[:1], axis=0)].tolist()
        return np.sort(np.concatenate([np.flatnonzero(nnz == 0), np.asarray(constant_full, dtype=np.int64)]))
    if X.shape[0] == 0:
        return np.arange(X.shape[1])
    return np.flatnonzero(np.all(X == X[:1], axis=0))


def constant_columns_to_keep(constant: np.ndarray, names: list[str], drop: bool) -> tuple[np.ndarray | None, str]:
    """The one rule for constant feature columns (in-memory and backed loaders): refuse, or keep the rest.

    Returns ``(keep, note)``: ``keep`` is None when nothing is constant, else the column indices to keep.
    """
    if len(constant) == 0:
        return None, ""
    listed = listing([names[j] for j in constant], 10)
    if len(constant) == len(names):
        raise DataError(f"Every feature column is constant ({listed}); there is nothing to select from.")
    if not drop:
        raise DataError(f"Constant feature column(s) carry no information: {listed}. Drop them "
                        "(or load with drop_constant=True).")
    return np.setdiff1d(np.arange(len(names)), constant), f"Dropped {len(constant)} constant feature(s): {listed}."


def without_constant_columns(X: Any, names: list[str], drop: bool) -> tuple[Any, list[str], str]:
    """``(X, names, note)`` after :func:`constant_columns_to_keep`: constant columns dropped (``drop``) or refused."""
    keep, note = constant_columns_to_keep(constant_columns(X), names, drop)
    if keep is None:
        return X, names, ""
    return X[:, keep], [names[j] for j in keep], note


def finish_dataset(X: Any, y_raw: np.ndarray, names: list[str], target: str, task: str, name: str,
                   extra: dict[str, Any]) -> Dataset:
    """Target checks (missing values, one class) and the ``Dataset``."""
    y_series = pd.Series(y_raw)
    missing = int(y_series.isna().sum())
    if missing:
        raise DataError(f"The target {target!r} is missing in {missing} row(s); drop those rows or fill them in.")
    if task not in ("auto", "classification", "regression"):
        raise DataError(f"task must be 'auto', 'classification' or 'regression', got {task!r}.")
    if isinstance(y_series.dtype, pd.CategoricalDtype):
        y_raw = y_series.astype(str).to_numpy()
    y_arr = np.asarray(y_raw)
    if y_arr.dtype.kind in "fc" and not np.all(np.isfinite(y_arr.astype(np.float64))):
        raise DataError(f"The target {target!r} holds infinite values; fix or drop those rows.")
    if task == "auto":
        task = infer_task(y_arr)
    y, class_names = encode_target(y_arr, task)
    if task == "classification":
        if class_names is not None and len(class_names) < 2:
            raise DataError(f"The target {target!r} has a single class ({class_names[0]!r}); a classifier "
                            "needs at least two. Pick another target column.")
    elif np.nanstd(y) == 0:
        raise DataError(f"The regression target {target!r} is constant; pick another target column.")
    description = (f"{X.shape[0]} samples × {X.shape[1]} features from {extra.get('source_format', 'a table')}, "
                   f"target {target!r} ({task}" + (f", {len(class_names)} classes)" if class_names else ")"))
    return Dataset(X=X, y=y, feature_names=names, task=task, name=name, class_names=class_names,
                   description=description, extra=extra)
