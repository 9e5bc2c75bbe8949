"""Warnings about data that loads fine but will mislead a feature selection.

* a feature (group) that alone predicts the target almost perfectly is most
  likely a copy of the target or derived from it ("likely leak: <column>"): it
  will be picked first and say nothing about the problem;
* a classification target with nearly as many classes as rows (or a
  regression target that is 0, 1, 2, … n-1) looks like an ID column.

These are warnings, not errors: the Data page shows them, the CLI prints them
on stderr, the library leaves them in ``dataset.extra["warnings"]``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from seqattn.data.dataset import Dataset, split_indices
from seqattn.data.groups import groups_of

#: Held-out accuracy (classification) or R² (regression) of a one-feature model above which we warn.
LEAK_SCORE = 0.99
#: Only the groups ranked highest by a quick univariate screen (ANOVA F / f_regression: a column that
#: decides the classes has zero within-class spread, so an infinite F) get the tree check; this keeps a
#: load fast (measured on a 2-core VM at load ≈ 8: +0.1 s on 569 × 30, +0.2 s on 5000 × 200, +0.3 s on
#: 2000 × 1000; with 200 groups and 5000 rows it was +2.2 s and +2.6 s).
LEAK_MAX_GROUPS = 25
LEAK_MAX_ROWS = 2000
#: Classes per row above which a classification target looks like an ID.
ID_CLASS_FRACTION = 0.5


def target_warnings(dataset: Dataset) -> list[str]:
    """'this looks like an ID column or a regression target' when the classes are nearly as many as rows."""
    target = dataset.extra.get("target_column", "target")
    n = dataset.n_samples
    if dataset.task == "classification" and n and dataset.n_classes >= max(3, ID_CLASS_FRACTION * n):
        return [f"The target {target!r} has {dataset.n_classes} classes for {n} rows: this looks like an ID "
                "column or a regression target (choose task 'regression' or another target column)."]
    if dataset.task == "regression" and n:
        y = np.sort(np.asarray(dataset.y, dtype=np.float64))
        if np.all(np.diff(y) == 1.0):
            return [f"The target {target!r} holds the consecutive whole numbers {y[0]:g}…{y[-1]:g}, one per row: "
                    "this looks like an ID column or a row counter, not something to predict."]
    return []


def leak_warnings(dataset: Dataset, random_state: int = 0) -> list[str]:
    """'likely leak: <column>' for each feature group that alone predicts the target almost perfectly.

    A shallow decision tree on the group's columns must score ≥ 0.99
    (accuracy, or R²) both held out (fit on 80% of the rows, scored on the
    rest) and in-sample on all rows. The in-sample check keeps a strong but
    honest feature from being called a leak by a lucky split: on real iris,
    petal length scores 30/30 on some 20% splits but 0.95 on all rows. A target
    that is itself almost constant (one class ≥ 0.99 of rows) never triggers it.
    """
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    groups = groups_of(dataset)
    classify = dataset.task == "classification"
    rows = np.arange(dataset.n_samples)
    rng = np.random.default_rng(random_state)
    if len(rows) > LEAK_MAX_ROWS:
        rows = np.sort(rng.choice(rows, LEAK_MAX_ROWS, replace=False))
    y = dataset.y[rows]
    if classify:
        _, counts = np.unique(y, return_counts=True)
        if counts.max() >= LEAK_SCORE * len(y) or len(counts) > 0.5 * len(y):
            return []
    train, val, _ = split_indices(len(rows), y if classify else None, 0.2, 0.0, random_state)
    if len(val) < 5:
        return []
    X = dataset.X[rows]
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    candidates = range(groups.n_groups)
    if groups.n_groups > LEAK_MAX_GROUPS:  # screen by the best column's univariate F score
        from seqattn.scoring import prescreen_scores

        view = Dataset(X=X, y=y, feature_names=dataset.feature_names, task=dataset.task)
        column_scores = np.nan_to_num(prescreen_scores(view, range(dataset.n_features)), nan=-np.inf)
        candidates = np.argsort(-groups.aggregate(column_scores, "max"), kind="stable")[:LEAK_MAX_GROUPS]
    depth = int(np.ceil(np.log2(max(2, dataset.n_classes)))) + 1 if classify else 6
    found = []
    for g in candidates:
        cols = list(groups.columns[int(g)])
        model = (DecisionTreeClassifier if classify else DecisionTreeRegressor)(max_depth=depth,
                                                                                random_state=random_state)
        held_out = model.fit(X[train][:, cols], y[train]).score(X[val][:, cols], y[val])
        if held_out >= LEAK_SCORE and model.fit(X[:, cols], y).score(X[:, cols], y) >= LEAK_SCORE:
            found.append(groups.names[int(g)])
    return [f"likely leak: {name} — this feature alone predicts the target almost perfectly (held-out "
            f"{'accuracy' if classify else 'R²'} ≥ {LEAK_SCORE}); it is probably a copy of the target or "
            "derived from it. Drop it unless that is what you want to find." for name in found]


def data_warnings(dataset: Dataset) -> list[str]:
    """All warnings about ``dataset`` (target looks like an ID; likely leaks)."""
    return target_warnings(dataset) + leak_warnings(dataset)
