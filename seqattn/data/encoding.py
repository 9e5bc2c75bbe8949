"""Turn a table's feature columns into a float matrix: one-hot text columns, optional imputation.

Everyday tables hold text columns (``sex``, ``day``) and the odd missing
value. Text columns with few distinct values are one-hot encoded, and each
becomes one feature *group* named after the original column, so selectors pick
``day`` rather than ``day=Sat``. Missing values are an error unless
``impute`` is given; imputing adds a ``<column> (missing)`` indicator in the
column's group, so a selector can still use the fact that a value was missing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from seqattn.data.errors import DataError
from seqattn.data.groups import FeatureGroups

IMPUTE_CHOICES = ("median", "most_frequent")
#: Text columns with more distinct values than this are refused rather than one-hot encoded
#: (an ID, a date or free text would add a column per row).
MAX_CATEGORY_LEVELS = 50
MISSING_SUFFIX = " (missing)"


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f", ... and {len(names) - limit} more" if len(names) > limit else "")


def check_impute(impute: str | None) -> str | None:
    """``impute`` itself when it is None or one of :data:`IMPUTE_CHOICES`, else :class:`DataError`."""
    if impute is not None and impute not in IMPUTE_CHOICES:
        raise DataError(f"impute must be None, 'median' or 'most_frequent', got {impute!r}.")
    return impute


def _text_kind(column: pd.Series) -> tuple[str, str]:
    """``("category", "")`` for a text column to one-hot encode, else ``("bad", why)``."""
    values = column.dropna()
    if values.empty:
        return "category", ""
    as_text = values.astype(str)
    numeric = pd.to_numeric(as_text, errors="coerce").notna()
    if numeric.mean() >= 0.5:  # mostly numbers with a few stray words: a typo, not a category
        example = as_text[~numeric].iloc[0]
        return "bad", f"numbers mixed with text such as {example!r}"
    levels = as_text.nunique()
    if levels > MAX_CATEGORY_LEVELS or (levels > 2 and levels >= 0.5 * len(values)):
        return "bad", f"{levels} distinct text values (an ID, a date or free text?)"
    return "category", ""


def missing_value_error(counts: dict[str, int]) -> DataError:
    """The refusal for missing / infinite feature values (``{column: count}``) that names the impute option."""
    details = ", ".join(f"{n!r} ({c})" for n, c in list(counts.items())[:10])
    more = f", ... and {len(counts) - 10} more columns" if len(counts) > 10 else ""
    return DataError(f"Missing or infinite values (NaN/inf) in {len(counts)} feature column(s): {details}{more}. "
                     "Fill them with impute='median' or impute='most_frequent' (CLI --impute; Data page: "
                     "'Missing values'), or drop those rows or columns.")


def encode_features(features: pd.DataFrame, impute: str | None = None
                    ) -> tuple[np.ndarray, list[str], FeatureGroups | None, list[str]]:
    """``(X float32, column names, groups or None, notes)`` for a frame of feature columns.

    Numeric and boolean columns pass through; text columns with at most
    ``MAX_CATEGORY_LEVELS`` values become one-hot columns ``name=level`` in one
    group ``name``; other text columns raise :class:`DataError` naming them.
    With ``impute`` a column's missing values are filled (``median`` for
    numbers, the most frequent value for text and for ``most_frequent``) and a
    0/1 indicator column joins the column's group.
    """
    impute = check_impute(impute)
    names = [str(c) for c in features.columns]
    dtypes = list(features.dtypes)
    text_pos = [j for j, dt in enumerate(dtypes)
                if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))]
    bad: list[str] = []
    why: list[str] = []
    for j in text_pos:
        kind, reason = _text_kind(features.iloc[:, j])
        if kind == "bad":
            bad.append(names[j])
            why.append(f"{names[j]!r}: {reason}")
    if bad:
        raise DataError(f"Non-numeric feature columns: {_listing(bad)}. Encode them as numbers or drop them "
                        f"({'; '.join(why[:5])}). Text columns with up to {MAX_CATEGORY_LEVELS} distinct values "
                        "are one-hot encoded automatically.")
    numeric_pos = [j for j in range(len(names)) if j not in set(text_pos)]
    # numeric block converted at once: per-column access costs seconds on 100k-column tables
    numeric = features.iloc[:, numeric_pos].to_numpy(dtype=np.float32) if numeric_pos else \
        np.empty((len(features), 0), np.float32)
    nan_counts = np.isnan(numeric).sum(axis=0)
    missing = {names[numeric_pos[i]]: int(nan_counts[i]) for i in np.flatnonzero(nan_counts)}
    for j in text_pos:
        n_missing = int(features.iloc[:, j].isna().sum())
        if n_missing:
            missing[names[j]] = n_missing
    if not text_pos and not missing:  # the common case: nothing to encode
        return numeric, names, None, []
    if missing and impute is None:  # infinite values are counted too: one message for both
        bad_counts = (~np.isfinite(numeric)).sum(axis=0)
        counts = {**missing, **{names[numeric_pos[i]]: int(bad_counts[i]) for i in np.flatnonzero(bad_counts)}}
        raise missing_value_error({n: counts[n] for n in names if n in counts})
    empty = [n for n, c in missing.items() if c == len(features)]
    if empty:
        raise DataError(f"Feature column(s) {_listing(empty)} hold no values at all, so there is nothing to impute "
                        "from; drop them.")

    notes: list[str] = []
    blocks: list[np.ndarray] = []
    out_names: list[str] = []
    group_names: list[str] = []
    group_cols: list[tuple[int, ...]] = []
    numeric_index = {j: i for i, j in enumerate(numeric_pos)}
    imputed: list[str] = []
    encoded: list[str] = []
    start = 0

    def add(name: str, cols: list[np.ndarray], col_names: list[str]) -> None:
        nonlocal start
        blocks.extend(c.reshape(-1, 1) for c in cols)
        out_names.extend(col_names)
        group_names.append(name)
        group_cols.append(tuple(range(start, start + len(cols))))
        start += len(cols)

    # contiguous runs of complete numeric columns are copied as blocks, not column by column
    run: list[int] = []

    def flush() -> None:
        nonlocal start
        if not run:
            return
        block = numeric[:, [numeric_index[j] for j in run]]
        blocks.append(block)
        for offset, j in enumerate(run):
            out_names.append(names[j])
            group_names.append(names[j])
            group_cols.append((start + offset,))
        start += len(run)
        run.clear()

    for j, name in enumerate(names):
        if j in numeric_index and name not in missing:
            run.append(j)
            continue
        flush()
        if j in numeric_index:
            values = numeric[:, numeric_index[j]].copy()
            absent = np.isnan(values)
            fill = np.nanmedian(values) if impute == "median" else _most_frequent(values[~absent])
            values[absent] = fill
            add(name, [values, absent.astype(np.float32)], [name, name + MISSING_SUFFIX])
            imputed.append(f"{name!r} ({int(absent.sum())} with {float(fill):.4g})")
            continue
        column = features.iloc[:, j]
        absent = column.isna().to_numpy()
        text = column.astype(str).where(~absent, None)
        if absent.any():  # text columns: the most frequent level, whatever ``impute`` says
            fill = text[~absent].value_counts().index[0]
            text = text.fillna(fill)
            imputed.append(f"{name!r} ({int(absent.sum())} with {fill!r})")
        levels = sorted(text.unique())
        cols = [(text.to_numpy() == level).astype(np.float32) for level in levels]
        col_names = [f"{name}={level}" for level in levels]
        if absent.any():
            cols.append(absent.astype(np.float32))
            col_names.append(name + MISSING_SUFFIX)
        add(name, cols, col_names)
        encoded.append(f"{name!r} ({len(levels)} values)")
    flush()
    if encoded:
        notes.append(f"One-hot encoded text column(s) {', '.join(encoded)}; each is selected as one group.")
    if imputed:
        rule = "median" if impute == "median" else "most frequent value"
        notes.append(f"Imputed missing values ({rule}; text columns: most frequent value) in "
                     f"{', '.join(imputed[:10])}{' …' if len(imputed) > 10 else ''}; a '<column>{MISSING_SUFFIX}' "
                     "indicator joins each column's group.")
    X = np.hstack(blocks).astype(np.float32, copy=False) if blocks else numeric
    groups = FeatureGroups(tuple(group_names), tuple(group_cols), X.shape[1])
    return X, out_names, (None if groups.trivial and group_names == out_names else groups), notes


def _most_frequent(values: np.ndarray) -> float:
    uniques, counts = np.unique(values, return_counts=True)
    return float(uniques[np.argmax(counts)])  # ties: the smallest value
