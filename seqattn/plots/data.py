"""Small views of a :class:`~seqattn.data.Dataset` for the Data page: preview rows, class balance, average image."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import scipy.sparse as sp

from seqattn.data import Dataset
from seqattn.safe_text import escape_plot_texts

#: Shade of an imputed cell in the preview (a light amber that reads on the light and the dark theme).
IMPUTED_COLOUR = "rgba(255, 193, 7, 0.35)"


def preview_rows(dataset: Dataset, n_rows: int = 8) -> np.ndarray:
    """The rows to preview: the first ones, with up to half of them swapped for the first rows that had a value
    imputed (so the marks of :func:`imputed_cells` show where a fill happened)."""
    n = dataset.n_samples
    if dataset.backed or not dataset.extra.get("impute"):
        return np.arange(min(n, n_rows))
    imputed = np.flatnonzero(_imputed_rows(dataset))[: n_rows // 2]
    first = [r for r in range(n) if r not in set(imputed.tolist())][: max(n_rows - len(imputed), 0)]
    return np.sort(np.concatenate([imputed, np.asarray(first, dtype=np.int64)]))[:n_rows]


def preview_columns(dataset: Dataset, max_columns: int = 12) -> list[int]:
    """The first ``max_columns`` feature columns, those with imputed values (not their indicators) brought in
    first so a fill is visible, in the data set's column order."""
    imputed = sorted({dataset.feature_names.index(name) for name in _indicators(dataset)})[:max_columns]
    rest = [j for j in range(dataset.n_features) if j not in set(imputed)][: max_columns - len(imputed)]
    return sorted(imputed + rest)


def preview_frame(dataset: Dataset, n_rows: int = 8, max_columns: int = 12) -> pd.DataFrame:
    """The preview rows (:func:`preview_rows`; ``row`` is their number, from 1), the target and up to
    ``max_columns`` features (:func:`preview_columns`; sparse data: only these rows densified)."""
    rows_shown = preview_rows(dataset, n_rows)
    columns = preview_columns(dataset, max_columns)
    first_rows = np.array_equal(rows_shown, np.arange(len(rows_shown)))  # the usual case; rows on disk need a slice
    cols = slice(0, len(columns)) if columns == list(range(len(columns))) else columns  # backed rows take a slice
    rows = dataset.X[: len(rows_shown), cols] if first_rows else dataset.X[rows_shown][:, cols]
    rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
    frame = pd.DataFrame(rows, columns=[dataset.feature_names[j] for j in columns])
    target = dataset.y[rows_shown]
    if dataset.class_names is not None:
        target = [dataset.class_names[int(c)] for c in target]
    frame.insert(0, "target", target)
    frame.insert(0, "row", rows_shown + 1)
    return frame


def imputed_cells(dataset: Dataset, frame: pd.DataFrame) -> pd.DataFrame:
    """True for the cells of a :func:`preview_frame` whose value was filled in: the column's group has a
    ``<column> (missing)`` indicator that is 1 in that row (the indicators themselves are not marked)."""
    marks = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    indicators = _indicators(dataset)
    if not indicators:
        return marks
    rows = frame["row"].to_numpy() - 1
    for column in frame.columns:
        indicator = indicators.get(str(column))
        if indicator is not None:
            values = dataset.X[rows][:, [indicator]]
            values = values.toarray() if sp.issparse(values) else np.asarray(values)
            marks[column] = values[:, 0] == 1
    return marks


def _indicators(dataset: Dataset) -> dict[str, int]:
    """Encoded column name -> index of the ``(missing)`` indicator column of its group (imputed tables only)."""
    from seqattn.data.encoding import MISSING_SUFFIX

    if dataset.groups is None or not dataset.extra.get("impute"):
        return {}
    out = {}
    for columns in dataset.groups.columns:
        names = [dataset.feature_names[c] for c in columns]
        flags = [c for c, name in zip(columns, names) if name.endswith(MISSING_SUFFIX)]
        if flags:
            out.update({name: flags[0] for name in names if not name.endswith(MISSING_SUFFIX)})
    return out


def _imputed_rows(dataset: Dataset) -> np.ndarray:
    """True for the rows where at least one value was imputed."""
    flags = sorted(set(_indicators(dataset).values()))
    if not flags:
        return np.zeros(dataset.n_samples, dtype=bool)
    values = dataset.X[:, flags]
    values = values.toarray() if sp.issparse(values) else np.asarray(values)
    return (values == 1).any(axis=1)


def styled_preview(dataset: Dataset, n_rows: int = 8, max_columns: int = 12):
    """:func:`preview_frame` as a pandas ``Styler`` with imputed cells shaded (a plain frame when none are)."""
    frame = preview_frame(dataset, n_rows, max_columns)
    marks = imputed_cells(dataset, frame)
    if not marks.to_numpy().any():
        return frame
    numbers = [c for c in frame.columns if c != "row" and pd.api.types.is_float_dtype(frame[c])]
    return (frame.style.apply(lambda _: np.where(marks, f"background-color: {IMPUTED_COLOUR}", ""), axis=None)
            .format("{:.4g}", subset=numbers))


def column_table(dataset: Dataset) -> pd.DataFrame | None:
    """The table's columns as read, before encoding (:func:`seqattn.data.encoding.column_summary`), row IDs
    named in ``role``; None for data that did not come from a table."""
    rows = dataset.extra.get("columns")
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    ids = frame.pop("row_id").astype(bool) if "row_id" in frame else pd.Series(False, index=frame.index)
    frame.loc[ids & (frame["role"] == "dropped"), "role"] = "dropped (row ID)"
    frame.loc[ids & (frame["role"] == "feature"), "role"] = "feature (a row ID?)"
    frame.loc[frame["role"] == "row names", "role"] = "row names (ID)"
    return frame


def class_balance(dataset: Dataset) -> pd.DataFrame:
    """Samples per class (classification) with their share; empty for regression."""
    if dataset.task != "classification":
        return pd.DataFrame(columns=["class", "samples", "share"])
    counts = np.bincount(dataset.y, minlength=dataset.n_classes)
    names = dataset.class_names or [str(i) for i in range(len(counts))]
    return pd.DataFrame({"class": names, "samples": counts, "share": counts / max(counts.sum(), 1)})


def mean_image(dataset: Dataset, scale_to_unit: bool = False) -> np.ndarray | None:
    """The average sample on the image grid (optionally scaled to 0..1 for ``st.image``); ``None`` if not images."""
    if dataset.image_shape is None or dataset.image_shape[0] * dataset.image_shape[1] != dataset.n_features:
        return None
    image = np.asarray(dataset.X.mean(axis=0), dtype=np.float64).reshape(dataset.image_shape)
    if scale_to_unit:
        image = (image - image.min()) / (np.ptp(image) or 1.0)
    return image


def class_balance_figure(dataset: Dataset) -> go.Figure | None:
    """Bar chart of samples per class; a histogram of the target for regression."""
    if dataset.task == "classification":
        table = class_balance(dataset)
        labels = pd.Series(escape_plot_texts(table["class"]))  # class names may hold plotly markup
        if table["class"].astype(str).str.len().max() > 8 or len(labels) > 12:
            # long names (cell types) as horizontal bars: rotated labels would squash the bars
            fig = go.Figure(go.Bar(y=labels, x=table["samples"], orientation="h",
                                   hovertemplate="%{y}: %{x} samples<extra></extra>"))
            fig.update_layout(xaxis_title="samples", yaxis={"type": "category", "autorange": "reversed",
                                                            "automargin": True, "title": None},
                              height=max(280, 60 + 22 * len(labels)), margin={"t": 20, "b": 40, "l": 10, "r": 10})
            return fig
        fig = go.Figure(go.Bar(x=labels, y=table["samples"], hovertemplate="%{x}: %{y} samples<extra></extra>"))
        fig.update_layout(xaxis_title="class", yaxis_title="samples", xaxis_type="category")
    else:
        fig = go.Figure(go.Histogram(x=dataset.y, nbinsx=40))
        fig.update_layout(xaxis_title="target", yaxis_title="samples")
    fig.update_layout(height=280, margin={"t": 20, "b": 40, "l": 50, "r": 10})
    return fig
