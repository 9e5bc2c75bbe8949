"""A parsed table (a pandas frame from any reader) into a :class:`~seqattn.data.Dataset`.

The text, workbook and parquet readers each produce a frame and its raw
header; :func:`dataset_from_frame` does the rest for all of them: the target
column, columns to leave out, a first column of row names, numbers stored as
text, text columns encoded (:mod:`~seqattn.data.encoding`), and the shared
checks of :mod:`~seqattn.data.checks`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from seqattn.data import limits
from seqattn.data.checks import (
    check_enough_samples,
    check_finite_dense,
    constant_columns,
    constant_columns_to_keep,
    finish_dataset,
    listing,
    raise_duplicates,
)
from seqattn.data.dataset import Dataset
from seqattn.data.encoding import check_impute, encode_features
from seqattn.data.errors import DataError
from seqattn.data.groups import FeatureGroups


def dataset_from_frame(
    frame: pd.DataFrame,
    target: str | None,
    *,
    task: str = "auto",
    name: str = "data",
    header: list[str] | None = None,
    drop_constant: bool = False,
    source_format: str = "table",
    impute: str | None = None,
    drop_columns: Sequence[str] = (),
) -> Dataset:
    """Validate a table and split it into features and the ``target`` column.

    Text feature columns are one-hot encoded (one group each) and ``impute``
    fills missing values: see :func:`seqattn.data.encoding.encode_features`.
    ``drop_columns`` are left out (e.g. an ID or a copy of the target).
    ``header`` is the reader's raw header (before pandas renames duplicates);
    the frame's columns are set to it.
    """
    check_impute(impute)
    header = _name_columns(frame, header)
    _check_target_and_size(frame, header, target)
    drop = _checked_drop_columns(drop_columns, frame, header, target)
    features, notes = _feature_columns(frame, target, drop)
    X, names, groups, encoding_notes = encode_features(features, impute)
    notes.extend(encoding_notes)
    check_finite_dense(X, names)
    X, names, groups = _without_constant(X, names, groups, drop_constant, notes)
    dataset = finish_dataset(X, frame[target].to_numpy(), names, target, task, name,
                             extra={"source_format": source_format, "notes": notes, "target_column": target,
                                    **({"impute": impute} if impute else {}),
                                    **({"dropped_columns": drop} if drop else {})})
    if groups is not None:
        dataset.groups = groups
        dataset.__post_init__()
        dataset.description = dataset.description.replace(" features from", f" columns in {dataset.n_groups} "
                                                          "feature groups from")
    return dataset


def _name_columns(frame: pd.DataFrame, header: list[str] | None) -> list[str]:
    """The header as strings, set as the frame's columns, once the table has columns, rows and unique names."""
    if header is None or len(header) != frame.shape[1]:
        header = list(frame.columns)
    header = [str(c) for c in header]
    if frame.shape[1] == 0 or (frame.shape[0] == 0 and not header):
        raise DataError("The file holds no columns: it is empty.")
    if frame.shape[0] == 0:
        raise DataError(f"The file has a header ({listing(header, 8)}) but no data rows.")
    if len(set(header)) != len(header):
        raise_duplicates(header, "column")
    frame.columns = header
    return header


def _check_target_and_size(frame: pd.DataFrame, header: list[str], target: str | None) -> None:
    """The target is one of several columns; enough rows, and not more values than fit in memory."""
    if target is None:
        raise DataError(f"Choose the target column to predict; the columns are: {listing(header)}.")
    if target not in frame.columns:
        hint = ("" if len(header) > 1 else " The file was read as a single column: is it separated by "
                "something other than a comma, semicolon, tab or '|'? Save it as CSV or TSV.")
        raise DataError(f"Target column {target!r} not found. Available columns: {listing(header)}.{hint}")
    if frame.shape[1] < 2:
        raise DataError(f"The only column is the target {target!r}; there are no features to select from.")
    rows, cols = frame.shape
    check_enough_samples(rows, "data row")
    if rows * (cols - 1) > limits.MAX_DENSE_VALUES:
        raise DataError(f"{rows} rows × {cols - 1} features = {rows * (cols - 1):,} values exceeds the "
                        f"in-memory limit of {limits.MAX_DENSE_VALUES:,}. Use sparse .h5ad or prefilter the features.")


def _checked_drop_columns(drop_columns: Sequence[str], frame: pd.DataFrame, header: list[str],
                          target: str) -> list[str]:
    """The columns to leave out, as strings: each must exist and none may be the target."""
    drop = [str(c) for c in drop_columns]
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise DataError(f"Cannot drop {listing(unknown)}: no such column. Available columns: {listing(header)}.")
    if target in drop:
        raise DataError(f"The target {target!r} cannot also be dropped; pick another target or keep it.")
    return drop


def _feature_columns(frame: pd.DataFrame, target: str, drop: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """``(feature columns, notes)``: all but the target and ``drop``, numbers stored as text converted, and a
    first column of row names (unnamed, or distinct text) set aside."""
    features = _numbers_stored_as_text(frame.drop(columns=[target, *drop]))
    notes: list[str] = [f"Dropped column(s) {listing(drop)} as asked."] if drop else []
    if features.shape[1] == 0:
        raise DataError(f"After dropping {listing(drop)} no feature columns are left.")
    first = str(features.columns[0])
    if first in ("", "Unnamed: 0") or _looks_like_row_ids(features[first]):
        # pandas / R write row names (cell barcodes, sample IDs) as an unnamed or text first column
        features = features.drop(columns=[first])
        notes.append(f"Used the first column {first!r} as row identifiers, not as a feature.")
        if features.shape[1] == 0:
            raise DataError(f"Apart from the target {target!r} and the row identifiers {first!r} there are "
                            "no feature columns.")
    return features, notes


def _without_constant(X: np.ndarray, names: list[str], groups: FeatureGroups | None, drop: bool,
                      notes: list[str]) -> tuple[np.ndarray, list[str], FeatureGroups | None]:
    """Constant columns dropped (with a note, and from their groups) or refused: :func:`constant_columns_to_keep`."""
    keep, note = constant_columns_to_keep(constant_columns(X), names, drop)
    if keep is None:
        return X, names, groups
    notes.append(note)
    return X[:, keep], [names[j] for j in keep], (groups.restricted_to(keep) if groups is not None else None)


def _numbers_stored_as_text(features: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value parses as a number (e.g. ``1e400``) become numbers.

    pandas keeps a column as text when one value overflows float64; without this
    such a column would be mistaken for row identifiers or called non-numeric,
    instead of being reported as holding infinite values.
    """
    converted = {}
    for c in [c for c, dtype in features.dtypes.items() if dtype == object]:
        try:
            converted[c] = features[c].astype(np.float64)  # Python float(): "1e400" -> inf
        except (TypeError, ValueError):
            continue  # real text: reported as non-numeric (or used as row identifiers)
    return features.assign(**converted) if converted else features


def _looks_like_row_ids(column: pd.Series) -> bool:
    """Text column whose values are all distinct (barcodes, sample names): row labels, not data."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column) or len(column) < 2:
        return False
    return bool(column.notna().all() and column.is_unique)
