"""Warnings about data that loads fine but will mislead a feature selection.

* a feature (group) that alone predicts the target almost perfectly is most
  likely a copy of the target or derived from it ("likely leak: <column>"): it
  will be picked first and say nothing about the problem;
* a classification target with nearly as many classes as rows (or a
  regression target that is 0, 1, 2, … n-1) looks like an ID column;
* a *feature* holding a different whole number in every row, consecutive or
  rising with the row order, is a row ID or row number
  (:func:`id_like_columns`): whatever it says about the target comes from
  how the file's rows were sorted (wine is sorted by class), not from the
  samples, so it is named as an ID, never as a copy of the target.

These are warnings, not errors: the Data page shows them, the CLI prints them
on stderr, the library leaves them in ``dataset.extra["warnings"]``.
"""
from __future__ import annotations

import re

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
#: Fewest rows for a feature to be called a row ID (on a handful of rows distinct whole numbers are common).
ID_MIN_ROWS = 20
#: Names that say "identifier": ``id``, ``row_id``, ``Sample ID``, ``index``, ``No.`` as a word in any case,
#: ``SampleID`` in camel case, or a ``#``.
ID_NAME = re.compile(r"(?i:(^|[^a-z])(id|ids|row|index|idx|no|num|number)([^a-z]|$))|[a-z]IDs?([^a-z]|$)|#")


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


def id_like_columns(dataset: Dataset) -> list[str]:
    """Feature columns that look like row IDs or row numbers, in column order.

    One column (a group of one), at least ``ID_MIN_ROWS`` rows, a different
    whole number in every row, and either consecutive once sorted (0…n-1,
    1…n, shuffled or not: a row number) or, under an ID-like name (``id``,
    ``row``, ``index``, ``no``, ``#`` as a word), strictly rising or falling
    with the row order (IDs given out in turn). A measurement with distinct
    whole values, say prices in a file sorted by price, is left alone.
    Dense in-memory data only.
    """
    n = dataset.n_samples
    if n < ID_MIN_ROWS or sp.issparse(dataset.X) or getattr(dataset, "backed", False):
        return []
    groups = groups_of(dataset)
    singles = [cols[0] for cols in groups.columns if len(cols) == 1]
    if not singles:
        return []
    head = np.asarray(dataset.X[:ID_MIN_ROWS][:, singles], dtype=np.float64)  # a cheap first screen
    maybe = np.all(np.isfinite(head) & (head == np.round(head)), axis=0)
    maybe &= np.all(np.diff(np.sort(head, axis=0), axis=0) > 0, axis=0)
    names = [dataset.feature_names[singles[j]] for j in np.flatnonzero(maybe)]
    return [name for j, name in zip(np.flatnonzero(maybe), names)
            if is_row_id(np.asarray(dataset.X[:, singles[j]], dtype=np.float64).ravel(), name)]


def is_row_id(values: np.ndarray, name: str) -> bool:
    """The rule of :func:`id_like_columns` for one column's values (in row order) and its name."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < ID_MIN_ROWS or not np.all(np.isfinite(values) & (values == np.round(values))):
        return False
    steps = np.diff(np.sort(values))
    if not np.all(steps > 0):
        return False  # a value repeats: not one per row
    rows_in_turn = bool(np.all(np.diff(values) > 0) or np.all(np.diff(values) < 0))
    return bool(np.all(steps == 1) or (rows_in_turn and ID_NAME.search(str(name))))


def id_warnings(dataset: Dataset, random_state: int = 0) -> list[str]:
    """'looks like a row ID: <column>' for each :func:`id_like_columns` feature, saying whether it also
    predicts the target (then the file's rows are sorted by it, and a selector would pick the sort order)."""
    ids = id_like_columns(dataset)
    sample = _LeakSample.draw(dataset, random_state) if ids else None
    return _id_sentences(dataset, ids, sample, random_state)


def _id_sentences(dataset: Dataset, ids: list[str], sample: "_LeakSample | None", random_state: int) -> list[str]:
    groups = groups_of(dataset)
    found = []
    for name in ids:
        cols = list(groups.columns[groups.names.index(name)])
        values = np.asarray(dataset.X[:, cols[0]], dtype=np.float64).ravel()
        predicts = sample is not None and sample.predicts(cols, random_state)
        found.append(
            f"looks like a row ID: {name} — a different whole number in every row ({values.min():g}…"
            f"{values.max():g}): a row number or ID, not a measurement. "
            + ("It predicts the target here only because the file's rows are sorted by the target, so a "
               "selector would pick the file's sort order. " if predicts else
               "Any link to the target comes from how the file's rows were ordered, not from the samples. ")
            + "Drop it before selecting features.")
    return found


class _LeakSample:
    """The rows (at most ``LEAK_MAX_ROWS``) and split the one-feature leak check scores on."""

    def __init__(self, X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, classify: bool,
                 depth: int):
        self.X, self.y, self.train, self.val, self.classify, self.depth = X, y, train, val, classify, depth

    @classmethod
    def draw(cls, dataset: Dataset, random_state: int) -> "_LeakSample | None":
        """None when no feature can be a leak: a target that is (almost) one class, or an ID-like one."""
        classify = dataset.task == "classification"
        rows = np.arange(dataset.n_samples)
        rng = np.random.default_rng(random_state)
        if len(rows) > LEAK_MAX_ROWS:
            rows = np.sort(rng.choice(rows, LEAK_MAX_ROWS, replace=False))
        y = dataset.y[rows]
        if classify:
            _, counts = np.unique(y, return_counts=True)
            if counts.max() >= LEAK_SCORE * len(y) or len(counts) > 0.5 * len(y):
                return None
        train, val, _ = split_indices(len(rows), y if classify else None, 0.2, 0.0, random_state)
        if len(val) < 5:
            return None
        X = dataset.X[rows]
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        depth = int(np.ceil(np.log2(max(2, dataset.n_classes)))) + 1 if classify else 6
        return cls(X, y, train, val, classify, depth)

    def predicts(self, cols: list[int], random_state: int) -> bool:
        """A shallow tree on ``cols`` alone scores ≥ ``LEAK_SCORE`` held out *and* in-sample."""
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        model = (DecisionTreeClassifier if self.classify else DecisionTreeRegressor)(max_depth=self.depth,
                                                                                     random_state=random_state)
        X, y, train, val = self.X[:, cols], self.y, self.train, self.val
        held_out = model.fit(X[train], y[train]).score(X[val], y[val])
        return held_out >= LEAK_SCORE and model.fit(X, y).score(X, y) >= LEAK_SCORE


def leak_warnings(dataset: Dataset, random_state: int = 0) -> list[str]:
    """'likely leak: <column>' for each feature group that alone predicts the target almost perfectly.

    A shallow decision tree on the group's columns must score ≥ 0.99
    (accuracy, or R²) both held out (fit on 80% of the rows, scored on the
    rest) and in-sample on all rows. The in-sample check keeps a strong but
    honest feature from being called a leak by a lucky split: on real iris,
    petal length scores 30/30 on some 20% splits but 0.95 on all rows. A target
    that is itself almost constant (one class ≥ 0.99 of rows) never triggers it.
    Row IDs are :func:`id_warnings`' to name (their cause is the file's row order).
    """
    return _leak_sentences(dataset, id_like_columns(dataset), _LeakSample.draw(dataset, random_state), random_state)


def _leak_sentences(dataset: Dataset, ids: list[str], sample: _LeakSample | None, random_state: int) -> list[str]:
    if sample is None:
        return []
    groups = groups_of(dataset)
    id_names = set(ids)
    candidates = [g for g in range(groups.n_groups) if groups.names[g] not in id_names]
    if len(candidates) > LEAK_MAX_GROUPS:  # screen by the best column's univariate F score
        from seqattn.scoring import prescreen_scores

        view = Dataset(X=sample.X, y=sample.y, feature_names=dataset.feature_names, task=dataset.task)
        column_scores = np.nan_to_num(prescreen_scores(view, range(dataset.n_features)), nan=-np.inf)
        group_scores = groups.aggregate(column_scores, "max")[candidates]
        candidates = [candidates[i] for i in np.argsort(-group_scores, kind="stable")[:LEAK_MAX_GROUPS]]
    found = [groups.names[g] for g in candidates if sample.predicts(list(groups.columns[g]), random_state)]
    return [f"likely leak: {name} — this feature alone predicts the target almost perfectly (held-out "
            f"{'accuracy' if sample.classify else 'R²'} ≥ {LEAK_SCORE}); it is probably a copy of the target or "
            "derived from it. Drop it unless that is what you want to find." for name in found]


def data_warnings(dataset: Dataset) -> list[str]:
    """All warnings about ``dataset`` (target looks like an ID; features that look like row IDs; likely leaks).
    The ID columns and the leak check's row sample are found once and shared by both checks."""
    ids = id_like_columns(dataset)
    sample = _LeakSample.draw(dataset, 0)
    return target_warnings(dataset) + _id_sentences(dataset, ids, sample, 0) + _leak_sentences(dataset, ids, sample, 0)
