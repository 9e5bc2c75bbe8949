"""Held-out check of one selection: how well a plain model on the picked units predicts rows it never saw.

The Sequential Attention page reports it beside SA's own validation metric;
the Gene panel page's numbers come from the same model, split and confusion
matrix (:func:`seqattn.genomics.panel_model`, :func:`seqattn.genomics.panel_confusion`;
equal to :func:`seqattn.genomics.panel_accuracy`'s, with the picks fitted once):
standardised logistic regression, one stratified 75/25 split, for
classification; standardised ridge regression and R² for regression. A
feature group counts with all its columns. The selection saw every row
(SA's own training/validation split covers the whole table), so this is a
check of the picks' usefulness, not an unbiased estimate of a model built
from them (``benchmarks/bench_compare.py`` selects on training rows only).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from seqattn.data import DataError, Dataset
from seqattn.data.groups import groups_of

TEST_FRACTION = 0.25


def held_out_check(dataset: Dataset, units: Sequence[int], *, test_fraction: float = TEST_FRACTION,
                   random_state: int = 0) -> dict[str, Any]:
    """Held-out score of a model on ``units`` (feature or group indices) and of one on every feature.

    Returns ``{"metric", "selected", "all_features", "n_units", "n_columns", "n_all", "n_train", "n_test",
    "confusion"}``; ``confusion`` (classification only, else None) is the row-normalised confusion matrix
    of the model on the picks (true class × predicted), raw counts in ``attrs["counts"]``.
    """
    if dataset.backed:
        raise DataError("The held-out check reads every row into memory; this data set's rows stay on disk.")
    groups = groups_of(dataset)
    columns = sorted({int(c) for u in units for c in groups.columns[int(u)]})
    if not columns:
        raise DataError("Nothing selected: the held-out check needs at least one pick.")
    from seqattn.genomics import held_out_split, panel_confusion

    classification = dataset.task == "classification"
    train, test = held_out_split(dataset, test_fraction, random_state)  # panel_accuracy's split
    everything = _held_out_score(dataset, dataset.X, train, test)
    if classification:  # one fit on the picks gives the confusion and, from its diagonal, the accuracy
        confusion = panel_confusion(dataset, columns, test_fraction=test_fraction, random_state=random_state)
        counts = confusion.attrs["counts"]
        selected = np.trace(counts) / counts.sum()
        confusion.index.name, confusion.columns.name = "true class", "predicted"
        metric = "accuracy"
    else:
        selected = _held_out_score(dataset, dataset.X[:, columns], train, test)
        confusion, metric = None, "R²"
    n_train, n_test = len(train), len(test)
    return {"metric": metric, "selected": float(selected), "all_features": float(everything),
            "n_units": len(set(map(int, units))), "n_columns": len(columns), "n_all": dataset.n_features,
            "n_train": int(n_train), "n_test": int(n_test), "confusion": confusion}


def _held_out_score(dataset: Dataset, X: Any, train: np.ndarray, test: np.ndarray) -> float:
    """Test accuracy of the panel model (classification) or R² of standardised ridge regression, fitted on
    ``train`` (sparse data scaled, not centred)."""
    if dataset.task == "classification":
        from seqattn.genomics import panel_score

        return panel_score(X, dataset.y, train, test)
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(with_mean=not sp.issparse(X)), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return float(model.fit(X[train], dataset.y[train]).score(X[test], dataset.y[test]))
