"""Small views of a :class:`~seqattn.data.Dataset` for the Data page: preview rows, class balance, average image."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import scipy.sparse as sp

from seqattn.data import Dataset
from seqattn.safe_text import escape_plot_texts


def preview_frame(dataset: Dataset, n_rows: int = 8, max_columns: int = 12) -> pd.DataFrame:
    """The first rows, the first ``max_columns`` features and the target (sparse data: only these rows densified)."""
    rows = dataset.X[:n_rows, :max_columns]
    rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
    frame = pd.DataFrame(rows, columns=dataset.feature_names[:max_columns])
    target = dataset.y[:n_rows]
    if dataset.class_names is not None:
        target = [dataset.class_names[int(c)] for c in target]
    frame.insert(0, "target", target)
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
