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

from seqattn.data.checks import listing
from seqattn.data.errors import DataError
from seqattn.data.groups import FeatureGroups

IMPUTE_CHOICES = ("median", "most_frequent")
#: Text columns with more distinct values than this are refused rather than one-hot encoded
#: (an ID, a date or free text would add a column per row).
MAX_CATEGORY_LEVELS = 50
MISSING_SUFFIX = " (missing)"


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
    text_pos = [j for j, dt in enumerate(features.dtypes)
                if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))]
    _refuse_unencodable_text(features, names, text_pos)
    numeric_pos = [j for j in range(len(names)) if j not in set(text_pos)]
    # numeric block converted at once: per-column access costs seconds on 100k-column tables
    numeric = features.iloc[:, numeric_pos].to_numpy(dtype=np.float32) if numeric_pos else \
        np.empty((len(features), 0), np.float32)
    missing = _missing_counts(features, names, numeric, numeric_pos, text_pos)
    if not text_pos and not missing:  # the common case: nothing to encode
        return numeric, names, None, []
    _refuse_missing(missing, impute, numeric, names, numeric_pos, len(features))

    columns = _Columns(numeric, numeric_pos, names)
    imputed: list[str] = []
    encoded: list[str] = []
    for j, name in enumerate(names):
        if j in columns.numeric_index and name not in missing:
            columns.keep(j)
        elif j in columns.numeric_index:
            values, absent, fill = _impute_numeric(numeric[:, columns.numeric_index[j]], impute)
            columns.add_group(name, [values, absent.astype(np.float32)], [name, name + MISSING_SUFFIX])
            imputed.append(f"{name!r} ({int(absent.sum())} with {float(fill):.4g})")
        else:
            cols, col_names, n_levels, filled = _one_hot(features.iloc[:, j], name)
            columns.add_group(name, cols, col_names)
            encoded.append(f"{name!r} ({n_levels} values)")
            imputed.extend(filled)
    X, out_names, groups = columns.result()
    return X, out_names, groups, _encoding_notes(encoded, imputed, impute)


def _refuse_unencodable_text(features: pd.DataFrame, names: list[str], text_pos: list[int]) -> None:
    """One error naming every text column that cannot be one-hot encoded, and why."""
    bad: list[str] = []
    why: list[str] = []
    for j in text_pos:
        kind, reason = _text_kind(features.iloc[:, j])
        if kind == "bad":
            bad.append(names[j])
            why.append(f"{names[j]!r}: {reason}")
    if bad:
        raise DataError(f"Non-numeric feature columns: {listing(bad, 10)}. Encode them as numbers or drop them "
                        f"({'; '.join(why[:5])}). Text columns with up to {MAX_CATEGORY_LEVELS} distinct values "
                        "are one-hot encoded automatically.")


def _missing_counts(features: pd.DataFrame, names: list[str], numeric: np.ndarray, numeric_pos: list[int],
                    text_pos: list[int]) -> dict[str, int]:
    """``{column: missing values}`` for the columns that have any (NaN in numbers, None / NaN in text)."""
    nan_counts = np.isnan(numeric).sum(axis=0)
    missing = {names[numeric_pos[i]]: int(nan_counts[i]) for i in np.flatnonzero(nan_counts)}
    for j in text_pos:
        n_missing = int(features.iloc[:, j].isna().sum())
        if n_missing:
            missing[names[j]] = n_missing
    return missing


def _refuse_missing(missing: dict[str, int], impute: str | None, numeric: np.ndarray, names: list[str],
                    numeric_pos: list[int], n_rows: int) -> None:
    """Missing values without ``impute`` (infinite values counted too: one message for both), or a column with
    no values at all to impute from."""
    if missing and impute is None:
        bad_counts = (~np.isfinite(numeric)).sum(axis=0)
        counts = {**missing, **{names[numeric_pos[i]]: int(bad_counts[i]) for i in np.flatnonzero(bad_counts)}}
        raise missing_value_error({n: counts[n] for n in names if n in counts})
    empty = [n for n, c in missing.items() if c == n_rows]
    if empty:
        raise DataError(f"Feature column(s) {listing(empty, 10)} hold no values at all, so there is nothing to impute "
                        "from; drop them.")


def _impute_numeric(column: np.ndarray, impute: str | None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(filled copy, missing mask, fill value)``: the median, or the most frequent value."""
    values = column.copy()
    absent = np.isnan(values)
    fill = np.nanmedian(values) if impute == "median" else _most_frequent(values[~absent])
    values[absent] = fill
    return values, absent, fill


def _one_hot(column: pd.Series, name: str) -> tuple[list[np.ndarray], list[str], int, list[str]]:
    """``(0/1 columns, their names, levels, imputation note)`` of a text column.

    Missing text is filled with the most frequent level, whatever ``impute``
    says, and a ``(missing)`` indicator column is added.
    """
    absent = column.isna().to_numpy()
    text = column.astype(str).where(~absent, None)
    filled: list[str] = []
    if absent.any():
        fill = text[~absent].value_counts().index[0]
        text = text.fillna(fill)
        filled.append(f"{name!r} ({int(absent.sum())} with {fill!r})")
    levels = sorted(text.unique())
    cols = [(text.to_numpy() == level).astype(np.float32) for level in levels]
    col_names = [f"{name}={level}" for level in levels]
    if absent.any():
        cols.append(absent.astype(np.float32))
        col_names.append(name + MISSING_SUFFIX)
    return cols, col_names, len(levels), filled


class _Columns:
    """The encoded matrix, built left to right: column blocks, their names, and one group per source column.

    Contiguous runs of complete numeric columns (:meth:`keep`) are copied as
    one block, not column by column; :meth:`add_group` appends an encoded or
    imputed column's group after the run before it.
    """

    def __init__(self, numeric: np.ndarray, numeric_pos: list[int], names: list[str]):
        self.numeric, self.names = numeric, names
        self.numeric_index = {j: i for i, j in enumerate(numeric_pos)}
        self.blocks: list[np.ndarray] = []
        self.out_names: list[str] = []
        self.group_names: list[str] = []
        self.group_cols: list[tuple[int, ...]] = []
        self.start = 0
        self.run: list[int] = []

    def keep(self, j: int) -> None:
        self.run.append(j)

    def add_group(self, name: str, cols: list[np.ndarray], col_names: list[str]) -> None:
        self._flush()
        self.blocks.extend(c.reshape(-1, 1) for c in cols)
        self.out_names.extend(col_names)
        self.group_names.append(name)
        self.group_cols.append(tuple(range(self.start, self.start + len(cols))))
        self.start += len(cols)

    def _flush(self) -> None:
        if not self.run:
            return
        self.blocks.append(self.numeric[:, [self.numeric_index[j] for j in self.run]])
        for offset, j in enumerate(self.run):
            self.out_names.append(self.names[j])
            self.group_names.append(self.names[j])
            self.group_cols.append((self.start + offset,))
        self.start += len(self.run)
        self.run.clear()

    def result(self) -> tuple[np.ndarray, list[str], FeatureGroups | None]:
        """``(X, column names, groups)``; groups are None when every column is its own group."""
        self._flush()
        X = np.hstack(self.blocks).astype(np.float32, copy=False) if self.blocks else self.numeric
        groups = FeatureGroups(tuple(self.group_names), tuple(self.group_cols), X.shape[1])
        return X, self.out_names, (None if groups.trivial and self.group_names == self.out_names else groups)


def _encoding_notes(encoded: list[str], imputed: list[str], impute: str | None) -> list[str]:
    """What was one-hot encoded and imputed, for ``dataset.extra["notes"]``."""
    notes: list[str] = []
    if encoded:
        notes.append(f"One-hot encoded text column(s) {', '.join(encoded)}; each is selected as one group.")
    if imputed:
        rule = "median" if impute == "median" else "most frequent value"
        notes.append(f"Imputed missing values ({rule}; text columns: most frequent value) in "
                     f"{', '.join(imputed[:10])}{' …' if len(imputed) > 10 else ''}; a '<column>{MISSING_SUFFIX}' "
                     "indicator joins each column's group.")
    return notes


def _most_frequent(values: np.ndarray) -> float:
    uniques, counts = np.unique(values, return_counts=True)
    return float(uniques[np.argmax(counts)])  # ties: the smallest value
