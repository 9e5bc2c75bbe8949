"""Figures and tables for the Gene panel page: the panel, per-cell-type expression, SA vs t-test.

The numbers come from :mod:`seqattn.genomics` (``mean_expression_by_type``,
``fraction_expressing_by_type``); these builders only shape them:

* :func:`panel_frame` — the panel as a table (pinned genes first, then picks
  in order, with score and marginal gain);
* :func:`expression_heatmap` — mean expression, cell types × panel genes;
* :func:`dot_plot` — the single-cell dot plot: dot size = fraction of cells
  expressing the gene, colour = mean expression;
* :func:`expression_long_frame` — both statistics as one tidy table (CSV);
* :func:`panels_side_by_side` — two panels row by row, shared genes marked.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from seqattn.plots.export import ExportableFigure
from seqattn.safe_text import escape_plot_texts
from seqattn.trace import SelectionTrace

# Arrays go into figures as plain lists: panels are small (types × k), and plain JSON
# numbers are what the page's tests and the downloaded HTML read back.

#: Dot diameter in pixels for a gene expressed in every cell of a type.
MAX_DOT_SIZE = 22.0
COLORSCALE = "Reds"


def panel_frame(trace: SelectionTrace, stability: pd.DataFrame | None = None) -> pd.DataFrame:
    """Pinned genes (order ``"pinned"``) then the picks: order, gene, index, score, marginal gain.

    Pinned genes belong to the panel (they were selected from the start), so
    downstream read-outs use :func:`panel_genes`, which lists them too. A selection
    of several runs adds "picked in" (b/B), "kept" (the share of resampled consensus panels that
    keep the gene) and "unstable" from its own steps — and, for the consensus of separate runs, no "score":
    its step scores are shares of runs, which "picked in" says; a single
    run gets them from ``stability`` (:func:`seqattn.genomics.panel_stability`
    of a stability check), when given. A panel picked with a coverage rule
    (:mod:`seqattn.selectors.coverage`) adds "picked for": the cell type each pick was made for.
    """
    rows = [{"order": "pinned", "gene": trace.feature_names[j], "feature": int(j),
             "score": np.nan, "marginal_gain": np.nan} for j in trace.pinned]
    rows += [{"order": str(i + 1), "gene": s.name, "feature": s.feature, "score": s.score,
              "marginal_gain": np.nan if s.marginal_gain is None else s.marginal_gain}
             for i, s in enumerate(trace.steps)]
    columns = ["order", "gene", "feature", "score", "marginal_gain"]
    frame = pd.DataFrame(rows, columns=columns)
    if trace.n_runs is not None:
        runs = trace.n_runs
        frame["picked in"] = [f"{runs}/{runs}"] * len(trace.pinned) + [f"{s.picked_in}/{runs}" for s in trace.steps]
        frame["kept"] = [1.0] * len(trace.pinned) + [np.nan if s.kept_share is None else s.kept_share
                                                     for s in trace.steps]
        frame["unstable"] = [False] * len(trace.pinned) + [s.unstable for s in trace.steps]
        if trace.is_consensus:
            frame = frame.drop(columns="score")
    elif stability is not None:
        found = stability.set_index("gene")
        frame["picked in"] = [found.at[g, "picked in"] for g in frame["gene"]]
        frame["kept"] = [np.nan if found.at[g, "kept"] is None else float(found.at[g, "kept"]) for g in frame["gene"]]
        frame["unstable"] = [bool(found.at[g, "unstable"]) for g in frame["gene"]]
    pick_types = trace.settings.get("pick_types")
    if pick_types is not None and len(pick_types) == len(trace.steps):
        frame["picked for"] = ["(pinned)"] * len(trace.pinned) + [str(t) for t in pick_types]
    return frame


def stability_figure(names: Sequence[str], matrix: np.ndarray, panel_size: int) -> go.Figure:
    """The stability view: genes (rows: the panel first, then genes only some runs picked) × runs, each
    cell the gene's pick position in that run (blank: not picked), as stability-selection plots show it."""
    positions = np.where(matrix > 0, matrix, np.nan).astype(float)
    counts = (matrix > 0).sum(axis=1)
    labels = [f"{name} ({c}/{matrix.shape[1]})" + ("" if i < panel_size else " ·") for i, (name, c) in
              enumerate(zip(names, counts))]
    figure = go.Figure(go.Heatmap(
        z=[[None if np.isnan(v) else float(v) for v in row] for row in positions],
        x=[f"run {r + 1}" for r in range(matrix.shape[1])], y=escape_plot_texts(labels), colorscale="Viridis_r",
        colorbar={"title": "pick position"}, hovertemplate="%{y}, %{x}: pick %{z}<extra></extra>"))
    figure.update_layout(height=max(260, 18 * len(names) + 80), margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         yaxis={"autorange": "reversed"},
                         title="Which runs picked each gene (· outside the panel)")
    return figure


def panel_genes(trace: SelectionTrace) -> list[str]:
    """The whole panel as gene names: pinned genes, then the picks in order."""
    return [trace.feature_names[j] for j in trace.pinned] + trace.selected_names


def _scaled_per_gene(table: pd.DataFrame) -> pd.DataFrame:
    """Each gene (column) scaled to 0..1 across cell types, so low- and high-count genes share one colour scale."""
    low, high = table.min(axis=0), table.max(axis=0)
    span = (high - low).replace(0, 1.0)
    return (table - low) / span


def expression_heatmap(mean_table: pd.DataFrame, *, scale_per_gene: bool = False,
                       title: str = "") -> go.Figure:
    """Heatmap of ``mean_table`` (rows: cell types, columns: panel genes in panel order).

    ``scale_per_gene`` rescales every gene to 0..1 across types (scanpy's
    ``standard_scale="var"``); the hover always shows the unscaled mean.
    """
    z = _scaled_per_gene(mean_table) if scale_per_gene else mean_table
    genes = escape_plot_texts(mean_table.columns)  # gene and cell-type names may hold plotly markup
    types = escape_plot_texts(mean_table.index)
    fig = go.Figure(go.Heatmap(
        z=z.to_numpy(dtype=float).tolist(), x=genes, y=types, colorscale=COLORSCALE,
        customdata=mean_table.to_numpy(dtype=float).tolist(),
        colorbar={"title": "scaled mean" if scale_per_gene else "mean"},
        hovertemplate="%{y} · %{x}<br>mean expression %{customdata:.3g}<extra></extra>",
    ))
    _categorical_axes(fig, genes, types, title)
    return fig


SIZE_LEGEND_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def dot_plot(mean_table: pd.DataFrame, fraction_table: pd.DataFrame, *, scale_per_gene: bool = False,
             max_size: float = MAX_DOT_SIZE, title: str = "", gene_order: Sequence[str] | None = None) -> go.Figure:
    """Dot plot: one dot per cell type × gene; diameter ∝ fraction expressing, colour = mean expression.

    A fraction of 1 draws a ``max_size``-pixel dot, 0 draws none; a legend shows
    reference dots for 25/50/75/100 %. Both tables must have the same rows and
    columns (as ``seqattn.genomics`` returns them). ``gene_order`` reorders the
    columns, e.g. by the cell type each gene marks (:func:`seqattn.genomics.genes_by_marked_type`).
    """
    if gene_order is not None:
        if sorted(map(str, gene_order)) != sorted(map(str, mean_table.columns)):
            raise ValueError("gene_order must list exactly the table's genes.")
        mean_table, fraction_table = mean_table[list(gene_order)], fraction_table[list(gene_order)]
    if mean_table.shape != fraction_table.shape or list(mean_table.columns) != list(fraction_table.columns) \
            or list(mean_table.index) != list(fraction_table.index):
        raise ValueError("mean_table and fraction_table must have the same cell types and genes in the same order.")
    fraction = fraction_table.to_numpy(dtype=float)
    if np.nanmin(fraction, initial=0.0) < 0 or np.nanmax(fraction, initial=0.0) > 1:
        raise ValueError("fraction_table holds fractions; values must lie in [0, 1].")
    colour = (_scaled_per_gene(mean_table) if scale_per_gene else mean_table).to_numpy(dtype=float)
    genes = escape_plot_texts(mean_table.columns)  # gene and cell-type names may hold plotly markup
    types = escape_plot_texts(mean_table.index)
    gene_grid, type_grid = np.meshgrid(genes, types)  # row-major: one entry per (type, gene)
    fig = ExportableFigure(go.Scatter(
        x=gene_grid.ravel().tolist(), y=type_grid.ravel().tolist(), mode="markers",
        marker={"size": (np.nan_to_num(fraction) * max_size).ravel().tolist(), "sizemode": "diameter",
                "color": colour.ravel().tolist(), "colorscale": COLORSCALE, "line": {"width": 0.5, "color": "#555"},
                "colorbar": {"title": "scaled mean" if scale_per_gene else "mean"}, "showscale": True},
        customdata=np.column_stack([fraction.ravel(), mean_table.to_numpy(dtype=float).ravel()]).tolist(),
        hovertemplate=("%{y} · %{x}<br>expressing: %{customdata[0]:.0%}<br>"
                       "mean expression %{customdata[1]:.3g}<extra></extra>"),
        showlegend=False,
    ))
    for share in SIZE_LEGEND_FRACTIONS:  # legend-only reference dots: what a dot's size means
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{share:.0%} expressing",
                                 marker={"size": share * max_size, "sizemode": "diameter", "color": "#999",
                                         "line": {"width": 0.5, "color": "#555"}},
                                 legendgroup="size", showlegend=True, hoverinfo="skip"))
    _categorical_axes(fig, genes, types, title)
    fig.update_layout(legend={"title": {"text": "dot size: cells<br>expressing"}, "itemsizing": "trace",
                              "x": 1.02, "xanchor": "left", "y": 0.0, "yanchor": "bottom"})
    fig.update_traces(marker_colorbar={"y": 1.0, "yanchor": "top", "len": 0.5}, selector={"showlegend": False})
    if gene_order is not None:
        fig.update_xaxes(title_text="panel gene, grouped by the cell type where its mean is highest")
    return fig


def confusion_figure(confusion: pd.DataFrame, unit: str = "cell type") -> go.Figure:
    """Heatmap of a row-normalised confusion matrix (true ``unit`` × predicted), recall on the diagonal."""
    values = confusion.to_numpy(dtype=float)
    counts = confusion.attrs.get("counts")
    rows = "cells" if unit == "cell type" else "rows"
    text = [[f"{v:.0%}" if np.isfinite(v) else "" for v in row] for row in values]
    true_types = escape_plot_texts(confusion.index)
    predicted = escape_plot_texts(confusion.columns)
    fig = go.Figure(go.Heatmap(
        z=np.where(np.isfinite(values), values, None).tolist(), x=predicted, y=true_types, zmin=0, zmax=1,
        colorscale="Blues", text=text, texttemplate="%{text}", colorbar={"title": f"share of<br>true {unit}"},
        customdata=counts.tolist() if counts is not None else None,
        hovertemplate="true %{y} → predicted %{x}: %{z:.0%}" + (f" (%{{customdata}} {rows})" if counts is not None
                                                                 else "") + "<extra></extra>"))
    fig.update_layout(height=max(300, 34 * len(true_types) + 160), margin={"t": 20, "b": 120, "l": 10, "r": 10},
                      xaxis={"title": f"predicted {unit}", "tickangle": -45, "type": "category"},
                      yaxis={"title": f"true {unit}", "autorange": "reversed", "type": "category",
                             "automargin": True})
    return fig


def _categorical_axes(fig: go.Figure, genes: list[str], types: list[str], title: str) -> None:
    fig.update_layout(
        title=title or None, height=max(260, 34 * len(types) + 140),
        margin={"t": 40 if title else 20, "b": 90, "l": 10, "r": 10},
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": genes, "tickangle": -60,
               "title": "panel gene (panel order)"},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": types[::-1], "title": None},
    )


def expression_long_frame(mean_table: pd.DataFrame, fraction_table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell type × gene: ``cell_type, gene, mean_expression, fraction_expressing``."""
    mean = mean_table.rename_axis(index="cell_type", columns="gene").stack().rename("mean_expression")
    frac = fraction_table.rename_axis(index="cell_type", columns="gene").stack().rename("fraction_expressing")
    return pd.concat([mean, frac], axis=1).reset_index()


def panels_side_by_side(first: Sequence[str], second: Sequence[str], *, names: tuple[str, str] = ("SA", "t-test"),
                        ) -> pd.DataFrame:
    """Two panels row by row (rank, gene of each) with a mark where a gene is in both panels."""
    in_first, in_second = set(map(str, first)), set(map(str, second))
    n = max(len(first), len(second))
    rows = []
    for i in range(n):
        a = str(first[i]) if i < len(first) else ""
        b = str(second[i]) if i < len(second) else ""
        rows.append({"rank": i + 1, names[0]: a, f"{names[0]} gene also in {names[1]}": bool(a) and a in in_second,
                     names[1]: b, f"{names[1]} gene also in {names[0]}": bool(b) and b in in_first})
    return pd.DataFrame(rows)


def panel_metrics_frame(table: pd.DataFrame, panel_order: Sequence[str] | None = None) -> pd.DataFrame:
    """The whole-panel metrics of :func:`seqattn.evaluation.panels.panel_metrics` as one row per
    metric (its label, whether higher is better) and one column per panel."""
    from seqattn.evaluation.panels import PANEL_METRICS

    summary = table[table["cell_type"] == ""]
    wide = summary.pivot_table(index="metric", columns="panel", values="value", sort=False)
    panels = list(panel_order) if panel_order is not None else list(dict.fromkeys(summary["panel"]))
    wide = wide.reindex(index=[m for m in PANEL_METRICS if m in wide.index], columns=panels)
    wide.insert(0, "better", ["higher" if PANEL_METRICS[m][1] else "lower" for m in wide.index])
    wide.insert(0, "metric", [PANEL_METRICS[m][0] for m in wide.index])
    wide.columns.name = None
    return wide.reset_index(drop=True)


def per_type_recall_figure(table: pd.DataFrame, metric: str = "recall_logreg",
                           panel_order: Sequence[str] | None = None) -> go.Figure:
    """Grouped bars: held-out recall of every cell type (x) for each panel (one bar colour each)."""
    rows = table[table["metric"] == metric]
    panels = list(panel_order) if panel_order is not None else list(dict.fromkeys(rows["panel"]))
    types = list(dict.fromkeys(rows["cell_type"]))
    fig = ExportableFigure()
    for panel in panels:
        values = rows[rows["panel"] == panel].set_index("cell_type")["value"].reindex(types)
        fig.add_trace(go.Bar(name=str(panel), x=types, y=[None if not np.isfinite(v) else float(v) for v in values],
                             hovertemplate="%{x}<br>" + str(panel) + ": recall %{y:.2f}<extra></extra>"))
    fig.update_layout(barmode="group", height=420, margin={"t": 50, "b": 120, "l": 10, "r": 10},
                      yaxis={"title": "held-out recall", "range": [0, 1.05]},
                      xaxis={"title": "true cell type", "tickangle": -45, "type": "category"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig
