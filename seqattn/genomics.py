"""Single-cell helpers: preprocessing, marker baselines, panel read-outs, planted counts.

Analysts bring cells × genes counts (often sparse h5ad) and want a small gene
panel that predicts cell type. This module holds what surrounds the selector:

* :func:`preprocess` — log1p, highly-variable-gene prefilter, per-gene scaling,
  returning the new ``Dataset`` and a record of what was done (goes into the
  trace settings so a panel can be reproduced);
* :func:`mitochondrial_genes` — indices of ``MT-`` genes for one-click banning;
* :func:`mean_expression_by_type` / :func:`fraction_expressing_by_type` — the
  numbers behind a heatmap / dot plot of a panel;
* :func:`panel_accuracy` — held-out accuracy on the panel vs on all genes;
* :func:`make_planted_counts` — synthetic sparse counts with known marker genes.

Sparse input stays sparse: statistics are computed from column sums, never by
densifying the whole matrix.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import DataError, Dataset, column_mean_var, split_indices
from seqattn.scoring import panel_model  # noqa: F401  (the panel evaluator's model; its home is below selectors)

if TYPE_CHECKING:
    from seqattn.trace import SelectionTrace

#: Above this many values (cells × genes) per-gene standardisation of sparse
#: data only scales (no centring), because centring would densify the matrix.
MAX_DENSIFY_VALUES = 50_000_000


# ------------------------------------------------------------------ statistics
def _subset_features(dataset: Dataset, keep: np.ndarray, name_suffix: str = "") -> Dataset:
    """A copy with only the columns ``keep``; ground truth and index map follow."""
    keep = np.asarray(keep, dtype=np.int64)
    X = dataset.X[:, keep]
    original = np.asarray(dataset.extra.get("original_index", np.arange(dataset.n_features)))[keep]
    informative = None
    extra = dict(dataset.extra)
    if dataset.informative is not None:
        position = {int(j): i for i, j in enumerate(keep)}
        informative = np.array([position[int(j)] for j in dataset.informative if int(j) in position], dtype=np.int64)
        extra["informative_dropped"] = int(len(dataset.informative) - len(informative))
    extra["original_index"] = original
    return Dataset(X=X, y=dataset.y, feature_names=[dataset.feature_names[j] for j in keep], task=dataset.task,
                   name=dataset.name + name_suffix, class_names=dataset.class_names,
                   image_shape=None, informative=informative, description=dataset.description, extra=extra)


def is_expression_data(dataset: Dataset) -> bool:
    """Is this cells × genes expression data (so pages say *genes* and *cell types*)?

    The one decision every page uses: data read from an AnnData ``.h5ad``
    (uploads and the bundled ``pbmc68k_reduced``) or derived from it.
    """
    return dataset.extra.get("source_format") == "h5ad"


def gene_panel_applies(dataset: Dataset) -> bool:
    """Expression data with cell types (a classification target): where a gene panel is the product, so
    Sequential Attention runs with the panel defaults (:func:`seqattn.selectors.defaults.panel_defaults`) and
    the app offers the Gene panel page."""
    return is_expression_data(dataset) and dataset.task == "classification"


# --------------------------------------------------------------- preprocessing
def highly_variable_genes(dataset: Dataset, n_top: int) -> np.ndarray:
    """Indices (ascending) of the ``n_top`` genes with the largest variance.

    Variance is taken on the data as given, so call after ``log1p`` (as
    :func:`preprocess` does) to avoid ranking by raw count magnitude.
    """
    if n_top < 1:
        raise ValueError(f"n_top must be ≥ 1, got {n_top}.")
    _, var = column_mean_var(dataset.X)
    n_top = min(int(n_top), dataset.n_features)
    top = np.argsort(-var, kind="stable")[:n_top]
    return np.sort(top)


def hvg_panel(dataset: Dataset, size: int, *, pinned: Sequence[int] = (), banned: Sequence[int] = ()) -> list[str]:
    """The simple highly-variable-genes panel: pinned genes, then the largest-variance genes
    (not banned) up to ``size`` genes. A baseline: variance on the data as given (log expression
    for the built-ins), no mean-binned dispersion as scanpy's ``highly_variable_genes`` does."""
    _, var = column_mean_var(dataset.X)
    chosen = [int(j) for j in pinned]
    excluded = set(chosen) | {int(j) for j in banned}
    for j in np.argsort(-var, kind="stable"):
        if len(chosen) >= size:
            break
        if int(j) not in excluded:
            chosen.append(int(j))
    return [dataset.feature_names[j] for j in chosen]


def preprocess(
    dataset: Dataset,
    *,
    log1p: bool = False,
    top_genes: int | None = None,
    standardize: bool = False,
) -> tuple[Dataset, dict[str, Any]]:
    """Analyst preprocessing in the usual order: log1p → top-N variable genes → scaling.

    Returns the new dataset and a JSON-safe record for the trace settings
    (``{"log1p": ..., "top_genes": ..., "standardize": ..., "centered": ...,
    "n_features_before": ..., "n_features_after": ...}``). The new dataset's
    ``extra["original_index"]`` maps its columns back to the input's, so picks
    and pinned/banned genes can be translated.

    Standardising sparse data larger than ``MAX_DENSIFY_VALUES`` divides each
    gene by its standard deviation without centring (keeps zeros zero); the
    record says so (``centered: False``).
    """
    record: dict[str, Any] = {"log1p": bool(log1p), "top_genes": None, "standardize": bool(standardize),
                              "centered": None, "n_features_before": dataset.n_features}
    X = dataset.X
    if log1p and dataset.backed:  # on disk: every block read is transformed (the loader found the minimum)
        if (X.min_value or 0.0) < 0:
            raise DataError("log1p needs non-negative counts, but the data has negative values (already "
                            "scaled?). Turn log1p off or load the raw counts layer.")
        X = X.view(log1p=True)
    elif log1p:
        if (X.data if sp.issparse(X) else X).min(initial=0.0) < 0:
            raise DataError("log1p needs non-negative counts, but the data has negative values (already "
                            "scaled?). Turn log1p off or load the raw counts layer.")
        X = X.log1p() if sp.issparse(X) else np.log1p(X)
    out = Dataset(X=X, y=dataset.y, feature_names=dataset.feature_names, task=dataset.task, name=dataset.name,
                  class_names=dataset.class_names, image_shape=dataset.image_shape,
                  informative=dataset.informative, description=dataset.description, extra=dict(dataset.extra))
    if top_genes is not None and top_genes < out.n_features:
        out = _subset_features(out, highly_variable_genes(out, top_genes))
        record["top_genes"] = int(top_genes)
    if standardize and out.backed:  # SA standardises every batch it reads; a scaled copy would not fit
        record["centered"] = "per batch (backed)"
    elif standardize:
        mean, var = column_mean_var(out.X)
        std = np.sqrt(var)
        std[std == 0] = 1.0
        Xs = out.X
        centered = not sp.issparse(Xs) or Xs.shape[0] * Xs.shape[1] <= MAX_DENSIFY_VALUES
        if centered:
            dense = Xs.toarray() if sp.issparse(Xs) else Xs
            out.X = ((dense - mean) / std).astype(np.float32)
        else:
            out.X = sp.csr_matrix(Xs.multiply(1.0 / std[None, :]), dtype=np.float32)
        record["centered"] = centered
    record["n_features_after"] = out.n_features
    steps = [s for s, on in (("log1p", log1p), (f"top {record['top_genes']} variable genes", record["top_genes"]),
                             ("per-gene standardisation", standardize)) if on]
    if steps:
        out.extra.setdefault("notes", [])
        out.extra["notes"] = list(out.extra["notes"]) + ["Preprocessing: " + " → ".join(steps) + "."]
    out.extra["preprocessing"] = record
    return out, record


def mitochondrial_genes(feature_names: Sequence[str], prefixes: Sequence[str] = ("MT-", "mt-", "Mt-")) -> list[int]:
    """Indices of mitochondrial genes (``MT-`` prefix, human and mouse casing), for banning."""
    return [i for i, n in enumerate(feature_names) if str(n).startswith(tuple(prefixes))]


#: Cytosolic ribosomal protein genes (HGNC RPS*/RPL*, e.g. RPS27A, RPL10A, RPS4Y1, RPLP0, RPSA; mouse
#: casing too). Kinases such as RPS6KA1 are not ribosomal and do not match.
_RIBOSOMAL = re.compile(r"^(RP[SL]\d+(A|AL|L|L\d|X|Y\d)?|RPLP[0-2]|RPSA)$", re.IGNORECASE)


def ribosomal_genes(feature_names: Sequence[str]) -> list[int]:
    """Indices of ribosomal protein genes (RPS/RPL), for banning: they track cell size and
    sequencing depth more than cell type."""
    return [i for i, n in enumerate(feature_names) if _RIBOSOMAL.match(str(n))]


def fraction_expressing(X: Any) -> np.ndarray:
    """Per gene, the share of cells with a non-zero value (CSR / dense in memory, or rows on disk, streamed)."""
    from seqattn.data.stream import iter_chunks

    if getattr(X, "is_backed", False):
        nonzero, n = np.zeros(X.shape[1]), 0
        for rows, block in iter_chunks(X):
            n += len(rows)
            nonzero += np.asarray((block != 0).sum(axis=0)).ravel()
        return nonzero / max(1, n)
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        X.eliminate_zeros()
        return np.bincount(X.indices, minlength=X.shape[1]) / max(1, X.shape[0])
    return (np.asarray(X) != 0).mean(axis=0)


def expression_floor(dataset: Dataset, *, min_fraction: float = 0.0, min_mean: float = 0.0
                     ) -> tuple[list[int], str]:
    """Genes below the expression a probe can detect, to ban: ``(indices, message)``.

    A gene is below the floor when it is non-zero in fewer than ``min_fraction`` of the cells
    (scanpy's ``filter_genes(min_cells=…)``, as a share) or its mean expression on the matrix as
    given is below ``min_mean``. The message says how many genes the floor removes and how many
    candidates are left. ``0`` turns a criterion off.
    """
    if not 0.0 <= float(min_fraction) <= 1.0:
        raise ValueError(f"min_fraction must be a share of cells between 0 and 1, got {min_fraction!r}.")
    if not np.isfinite(min_mean) or min_mean < 0:
        raise ValueError(f"min_mean must be a finite number ≥ 0, got {min_mean!r}.")
    below = np.zeros(dataset.n_features, dtype=bool)
    parts = []
    if min_fraction > 0:
        low = fraction_expressing(dataset.X) < min_fraction
        below |= low
        parts.append(f"non-zero in fewer than {min_fraction:.1%} of cells: {int(low.sum()):,}")
    if min_mean > 0:
        mean, _ = column_mean_var(dataset.X)
        low = mean < min_mean
        below |= low
        parts.append(f"mean expression below {min_mean:g}: {int(low.sum()):,}")
    removed = np.flatnonzero(below).tolist()
    if not parts:
        return [], ""
    message = (f"Expression floor removed {len(removed):,} of {dataset.n_features:,} genes from the candidates "
               f"({'; '.join(parts)}); {dataset.n_features - len(removed):,} remain.")
    return removed, message


def check_floor_room(floor_message: str, n_candidates: int, k: int | None) -> None:
    """Refuse, naming the expression floor, when its bans leave fewer than ``k`` candidates (one when k is
    automatic): otherwise the selector's own check says "choose k ≤ 0" without saying what removed the genes."""
    needed = k if isinstance(k, int) else 1
    if floor_message and n_candidates < needed:
        asked = f"k={k} needs" if k is not None else "A panel needs"
        raise DataError(f"{floor_message} {asked} at least {needed} candidate gene(s) besides the pinned and banned "
                        "ones: lower min_fraction / min_mean" + (", or k." if k is not None else "."))


#: SA settings a stability check repeats from the run it checks (``trace.settings`` keys = estimator parameters).
CHECKED_SETTINGS = ("model", "hidden", "epochs", "batch_size", "learning_rate", "attention_learning_rate",
                    "lr_decay", "selection_point", "validation_fraction", "class_weight", "structure_weight",
                    "structure_components", "marker_pool", "coverage", "coverage_score", "marker_fdr", "random_state")


def stability_check(dataset: Dataset, trace: "SelectionTrace", *, n_runs: int | None = None,
                    callback: Any = None) -> "SelectionTrace":
    """The stable selection of ``n_runs`` SA runs (default: a panel's runs,
    :func:`~seqattn.selectors.defaults.panel_runs` of ``trace.k``) with ``trace``'s k, pins, bans and settings
    (no read-out): what another seed would have picked, to put "picked in b of B runs" beside a single run's
    panel."""
    from seqattn.selectors import run_method
    from seqattn.selectors.defaults import panel_runs

    if trace.method != "sa":
        raise ValueError(f"A stability check repeats a Sequential Attention run; this trace is {trace.method!r}.")
    options = {name: trace.settings[name] for name in CHECKED_SETTINGS if trace.settings.get(name) is not None}
    options.setdefault("random_state", 0)
    runs = panel_runs(trace.k) if n_runs is None else int(n_runs)
    return run_method(dataset, "sa", trace.k, pinned=list(trace.pinned), banned=list(trace.banned),
                      n_runs=runs, combine="runs", gain_model="none", callback=callback, **options)


def panel_stability(genes: Sequence[str], stable: "SelectionTrace") -> pd.DataFrame:
    """Per panel gene: in how many of the stable selection's runs it was picked (``picked_in`` of
    ``n_runs``, ``"b/B"``), the share of its resampled consensus panels that hold it (``kept``,
    :func:`seqattn.selectors.stability.kept_shares`; 0 for a gene none held), and whether that makes it
    *unstable* (:func:`seqattn.trace.is_unstable`). Pinned genes are in every run and every panel."""
    from seqattn.selectors.stability import kept_shares, selection_counts
    from seqattn.trace import is_unstable

    runs = stable.settings.get("runs") or []
    counts, _ = selection_counts(runs, stable.n_features)
    kept = kept_shares(stable)
    index = {name: i for i, name in enumerate(stable.feature_names)}
    pinned = set(stable.pinned)
    rows = []
    for gene in genes:
        unit = index.get(str(gene))
        if unit is None:
            raise ValueError(f"Gene {gene!r} is not among the stability check's features.")
        b = len(runs) if unit in pinned else int(counts[unit])
        share = 1.0 if unit in pinned else (kept.get(unit, 0.0) if kept else None)
        rows.append({"gene": str(gene), "picked_in": b, "n_runs": len(runs), "picked in": f"{b}/{len(runs)}",
                     "kept": share, "unstable": unit not in pinned and is_unstable(b, len(runs), share)})
    return pd.DataFrame(rows, columns=["gene", "picked_in", "n_runs", "picked in", "kept", "unstable"])


def genes_to_indices(feature_names: Sequence[str], genes: Sequence[str | int]) -> list[int]:
    """Gene names (or indices) → column indices; unknown names raise with close matches."""
    lookup = {str(n): i for i, n in enumerate(feature_names)}
    out: list[int] = []
    unknown: list[str] = []
    for g in genes:
        if isinstance(g, (int, np.integer)):
            if not 0 <= int(g) < len(feature_names):
                raise DataError(f"Gene index {g} is out of range (0..{len(feature_names) - 1}).")
            out.append(int(g))
        elif str(g) in lookup:
            out.append(lookup[str(g)])
        else:
            unknown.append(str(g))
    if unknown:
        import difflib

        hints = {u: difflib.get_close_matches(u, list(lookup), n=3) for u in unknown[:5]}
        detail = "; ".join(f"{u!r}" + (f" (did you mean {', '.join(h)}?)" if h else "") for u, h in hints.items())
        raise DataError(f"Unknown gene(s): {detail}.")
    return out


def _panel_columns(dataset: Dataset, genes: Sequence[str | int]) -> tuple[list[int], list[str]]:
    idx = genes_to_indices(dataset.feature_names, genes)
    return idx, [dataset.feature_names[j] for j in idx]


def _by_type(dataset: Dataset, genes: Sequence[str | int], stat: str) -> pd.DataFrame:
    if dataset.task != "classification":
        raise DataError("Per-cell-type summaries need a classification target (cell types).")
    idx, names = _panel_columns(dataset, genes)
    sub = dataset.X[:, idx]
    sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    labels = dataset.class_names or [str(c) for c in range(dataset.n_classes)]
    rows = []
    for c in range(dataset.n_classes):
        block = sub[dataset.y == c]
        if stat == "mean":
            rows.append(block.mean(axis=0) if len(block) else np.full(len(idx), np.nan))
        else:
            rows.append((block > 0).mean(axis=0) if len(block) else np.full(len(idx), np.nan))
    return pd.DataFrame(np.vstack(rows), index=pd.Index(labels, name="cell_type"), columns=names)


def mean_expression_by_type(dataset: Dataset, genes: Sequence[str | int]) -> pd.DataFrame:
    """Mean expression of each panel gene (columns, in panel order) per cell type (rows)."""
    return _by_type(dataset, genes, "mean")


def fraction_expressing_by_type(dataset: Dataset, genes: Sequence[str | int]) -> pd.DataFrame:
    """Fraction of cells with expression > 0 per cell type × gene (the dot size of a dot plot)."""
    return _by_type(dataset, genes, "fraction")


def nonzero_fractions(dataset: Dataset, genes: Sequence[str | int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(pts, pts_rest)`` as scanpy's ``rank_genes_groups(pts=True)`` writes them: genes × cell types,
    the fraction of the type's cells with a non-zero value, and of all other cells."""
    if dataset.task != "classification":
        raise DataError("Per-cell-type summaries need a classification target (cell types).")
    idx, names = _panel_columns(dataset, genes)
    sub = dataset.X[:, idx]
    nonzero = (sub != 0).toarray() if sp.issparse(sub) else (np.asarray(sub) != 0)
    types = dataset.class_names or [str(c) for c in range(dataset.n_classes)]
    inside, rest = {}, {}
    for c, cell_type in enumerate(types):
        mask = dataset.y == c
        inside[str(cell_type)] = nonzero[mask].mean(axis=0) if mask.any() else np.full(len(idx), np.nan)
        rest[str(cell_type)] = nonzero[~mask].mean(axis=0) if (~mask).any() else np.full(len(idx), np.nan)
    index = pd.Index(names)
    return pd.DataFrame(inside, index=index), pd.DataFrame(rest, index=index)


#: The panel model's iteration cap wherever a panel is scored (panel_accuracy, panel_confusion, the held-out check).
PANEL_MAX_ITER = 2000


def held_out_split(dataset: Dataset, test_fraction: float = 0.25,
                   random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` rows of every panel score: one seeded split, stratified on the cell types
    (classification), so the accuracy, the confusion matrix and the held-out check see the same cells."""
    labels = dataset.y if dataset.task == "classification" else None
    train, _, test = split_indices(dataset.n_samples, labels, val_fraction=0.0, test_fraction=test_fraction,
                                   random_state=random_state)
    return train, test


def panel_score(X: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray, max_iter: int = PANEL_MAX_ITER) -> float:
    """Held-out accuracy of the panel model (:func:`panel_model`) fitted on the ``train`` rows of ``X``."""
    return float(panel_model(X[train], y[train], max_iter).score(X[test], y[test]))


def panel_accuracy(
    dataset: Dataset,
    genes: Sequence[str | int],
    *,
    test_fraction: float = 0.25,
    random_state: int = 0,
    max_iter: int = PANEL_MAX_ITER,
    all_genes: bool = True,
) -> dict[str, Any]:
    """Held-out accuracy of logistic regression on the panel versus on all genes.

    Same stratified split for both; features standardised on the training
    part (without centring for sparse data so it stays sparse). Returns
    ``{"panel_accuracy", "all_genes_accuracy", "n_panel", "n_all", "n_train", "n_test"}``.
    ``all_genes=False`` skips the all-genes fit (the slow part on 20k genes) when
    comparing several panels on one data set; ``all_genes_accuracy`` is then ``None``.
    """
    idx, train, test = _panel_split(dataset, genes, test_fraction, random_state, "panel_accuracy")
    return {
        "panel_accuracy": panel_score(dataset.X[:, idx], dataset.y, train, test, max_iter),
        "all_genes_accuracy": panel_score(dataset.X, dataset.y, train, test, max_iter) if all_genes else None,
        "n_panel": len(idx),
        "n_all": dataset.n_features,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
    }


def _panel_split(dataset: Dataset, genes: Sequence[str | int], test_fraction: float, random_state: int,
                 caller: str) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The panel's columns and the one train/test split shared by panel_accuracy and panel_confusion."""
    if dataset.task != "classification":
        raise DataError(f"{caller} needs a classification target.")
    idx, _ = _panel_columns(dataset, genes)
    if not idx:
        raise DataError("The panel is empty; select at least one gene.")
    return (idx, *held_out_split(dataset, test_fraction, random_state))


def panel_confusion(dataset: Dataset, genes: Sequence[str | int], *, test_fraction: float = 0.25,
                    random_state: int = 0, max_iter: int = PANEL_MAX_ITER) -> pd.DataFrame:
    """Per-cell-type accuracy of the panel: the row-normalised confusion matrix on held-out cells.

    Same model and split as :func:`panel_accuracy`. Rows are the true cell types, columns the
    predicted ones; the diagonal is each type's recall; ``attrs["counts"]`` holds the raw counts.
    """
    from sklearn.metrics import confusion_matrix

    idx, train, test = _panel_split(dataset, genes, test_fraction, random_state, "panel_confusion")
    X = dataset.X[:, idx]
    model = panel_model(X[train], dataset.y[train], max_iter)
    labels = list(range(dataset.n_classes))
    counts = confusion_matrix(dataset.y[test], model.predict(X[test]), labels=labels)
    names = dataset.class_names or [str(c) for c in labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = counts / counts.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(share, index=pd.Index(names, name="true cell type"),
                         columns=pd.Index(names, name="predicted"))
    frame.attrs["counts"] = counts
    return frame


def genes_by_marked_type(mean_table: pd.DataFrame) -> pd.DataFrame:
    """Which cell type each panel gene marks: the type with its highest mean expression.

    Returns ``gene, marks, specificity`` (the gene's top mean minus its next-highest, in units of its
    spread across types), ordered by cell type (in ``mean_table``'s row order), most specific first,
    so a dot plot in this order shows a diagonal of markers.
    """
    values = mean_table.to_numpy(dtype=float)
    types = [str(t) for t in mean_table.index]
    rows = []
    for j, gene in enumerate(mean_table.columns):
        column = values[:, j]
        if not np.isfinite(column).any():
            rows.append({"gene": str(gene), "marks": "", "specificity": float("nan"), "_type": len(types)})
            continue
        top = int(np.nanargmax(column))
        ordered = np.sort(column[np.isfinite(column)])[::-1]
        spread = float(np.nanstd(column)) or 1.0
        specificity = float((ordered[0] - ordered[1]) / spread) if len(ordered) > 1 else 0.0
        rows.append({"gene": str(gene), "marks": types[top], "specificity": specificity, "_type": top})
    frame = pd.DataFrame(rows).sort_values(["_type", "specificity"], ascending=[True, False], kind="stable")
    return frame.drop(columns="_type").reset_index(drop=True)


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (scanpy's ``corr_method="benjamini-hochberg"``)."""
    p = np.asarray(pvalues, dtype=np.float64)
    n = len(p)
    if n == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def panel_marker_stats(dataset: Dataset, genes: Sequence[str | int]) -> pd.DataFrame:
    """For each panel gene (panel order): the cell type it marks and the marker statistics scanpy
    reports for it.

    ``marks`` is the type with the gene's highest mean expression (as :func:`genes_by_marked_type`);
    for that type versus the rest: ``score`` (Welch t, scanpy's ``method="t-test"``), ``pvalue``,
    ``pvalue_adj`` (Benjamini–Hochberg over the panel's genes for that type), ``logfoldchange``
    (scanpy's formula, which assumes log1p expression: log2 of expm1(mean) ratios); the non-zero
    fractions are :func:`nonzero_fractions`. Only the panel's columns are read, so this is cheap on 20,000 genes.
    """
    from seqattn.selectors.ttest import ttest_statistics

    idx, names = _panel_columns(dataset, genes)
    if dataset.task != "classification":
        raise DataError("Marker statistics need cell types (a classification target).")
    panel = _subset_features(dataset, np.asarray(idx))
    t, p = ttest_statistics(panel)
    sub = panel.X.toarray() if sp.issparse(panel.X) else np.asarray(panel.X)
    types = dataset.class_names or [str(c) for c in range(dataset.n_classes)]
    means = np.vstack([sub[dataset.y == c].mean(axis=0) if np.any(dataset.y == c) else np.full(len(idx), -np.inf)
                       for c in range(dataset.n_classes)])
    marks = np.argmax(means, axis=0)
    rows = []
    for j, gene in enumerate(names):
        c = int(marks[j])
        inside, rest = sub[dataset.y == c, j], sub[dataset.y != c, j]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lfc = np.log2((np.expm1(inside.mean()) + 1e-9) / (np.expm1(rest.mean() if len(rest) else 0.0) + 1e-9))
        rows.append({"gene": gene, "marks": str(types[c]), "score": float(t[c, j]), "pvalue": float(p[c, j]),
                     "logfoldchange": float(lfc)})
    frame = pd.DataFrame(rows)
    frame["pvalue_adj"] = np.nan
    for c, cell_type in enumerate(types):  # BH per type over all panel genes' p-values for that type
        adjusted = benjamini_hochberg(p[c])
        chosen = (marks == c)
        frame.loc[chosen, "pvalue_adj"] = adjusted[chosen]
    return frame


def panel_overlap(a: Sequence[str], b: Sequence[str]) -> dict[str, Any]:
    """Shared genes, Jaccard index and each side's unique genes for two panels."""
    sa, sb = set(map(str, a)), set(map(str, b))
    union = sa | sb
    return {"shared": sorted(sa & sb), "jaccard": len(sa & sb) / len(union) if union else 1.0,
            "only_first": sorted(sa - sb), "only_second": sorted(sb - sa)}


# ------------------------------------------------------------ synthetic counts
def make_planted_counts(
    n_cells: int = 1000,
    n_genes: int = 500,
    n_types: int = 4,
    markers_per_type: int = 5,
    *,
    fold_change: float = 6.0,
    sparse: bool = True,
    n_mito: int = 0,
    type_shares: Sequence[float] | None = None,
    random_state: int | None = 0,
    chunk_genes: int = 1000,
) -> Dataset:
    """Poisson counts (cells × genes) with known marker genes per cell type.

    Background genes get log-normal base rates (most low, so the matrix is
    ~85–90 % zeros, like droplet data); each cell type gets
    ``markers_per_type`` marker genes whose rate is ``fold_change`` × higher in
    that type. Cells have log-normal size factors. ``informative`` holds all
    marker indices; ``extra["markers_by_type"]`` maps type name -> indices.
    ``n_mito`` genes named ``MT-...`` get high, type-independent rates (decoys
    for the banning workflow). ``type_shares`` (one weight per type, e.g. a few
    abundant and some rare types as in real tissue) draws unequal type sizes,
    each type keeping at least 2 cells; ``None``: equal sizes. Generated in
    chunks of genes so memory stays near the size of the final sparse matrix.
    """
    n_markers = n_types * markers_per_type
    if n_types < 2:
        raise DataError("n_types must be at least 2.")
    if n_markers + n_mito > n_genes:
        raise DataError(f"{n_types} types × {markers_per_type} markers + {n_mito} MT genes do not fit in "
                        f"{n_genes} genes.")
    if n_cells < 2 * n_types:
        raise DataError(f"n_cells={n_cells} is too small for {n_types} cell types.")
    rng = np.random.default_rng(random_state)
    base = np.clip(rng.lognormal(mean=-2.5, sigma=1.5, size=n_genes), 0.002, 30.0)
    positions = rng.permutation(n_genes)
    markers = positions[:n_markers].reshape(n_types, markers_per_type)
    mito = positions[n_markers:n_markers + n_mito]
    base[markers.ravel()] = rng.uniform(0.2, 0.8, size=n_markers)
    base[mito] = rng.uniform(3.0, 8.0, size=n_mito)
    labels = _type_labels(n_cells, n_types, type_shares, rng)
    size_factor = rng.lognormal(0.0, 0.3, size=n_cells)
    marker_type = np.full(n_genes, -1)
    for c in range(n_types):
        marker_type[markers[c]] = c

    blocks = []
    for lo in range(0, n_genes, chunk_genes):
        hi = min(lo + chunk_genes, n_genes)
        rate = size_factor[:, None] * base[None, lo:hi]
        mt = marker_type[lo:hi]
        for j in np.flatnonzero(mt >= 0):
            rate[labels == mt[j], j] *= fold_change
        counts = rng.poisson(rate).astype(np.float32)
        blocks.append(sp.csr_matrix(counts) if sparse else counts)
    X = sp.hstack(blocks, format="csr", dtype=np.float32) if sparse else np.hstack(blocks)

    names = [f"GENE{i:05d}" for i in range(n_genes)]
    for j, g in enumerate(mito):
        names[g] = f"MT-G{j}"
    type_names = [f"type {c}" for c in range(n_types)]
    return Dataset(
        X=X, y=labels, feature_names=names, task="classification", name="planted_counts",
        class_names=type_names, informative=np.sort(markers.ravel()),
        description=(f"Synthetic counts: {n_cells} cells × {n_genes} genes, {n_types} cell types with "
                     f"{markers_per_type} marker genes each ({fold_change:g}× up), {n_mito} MT- decoys."),
        extra={"markers_by_type": {type_names[c]: sorted(int(j) for j in markers[c]) for c in range(n_types)},
               "mito": sorted(int(j) for j in mito)},
    )


def _type_labels(n_cells: int, n_types: int, type_shares: Sequence[float] | None,
                 rng: np.random.Generator) -> np.ndarray:
    """Each cell's type, shuffled: equal sizes, or sizes in proportion to ``type_shares`` (≥ 2 cells each)."""
    if type_shares is None:
        labels = np.arange(n_cells) % n_types
    else:
        shares = np.asarray(type_shares, dtype=float)
        if shares.shape != (n_types,) or not np.all(shares > 0):
            raise DataError(f"type_shares needs {n_types} positive weights (one per type), got {list(type_shares)}.")
        sizes = np.maximum(2, np.floor(shares / shares.sum() * n_cells)).astype(int)
        sizes[np.argmax(sizes)] += n_cells - sizes.sum()  # the largest type absorbs the rounding
        labels = np.repeat(np.arange(n_types), sizes)
    rng.shuffle(labels)
    return labels


def marker_recovery(selected: Sequence[int], dataset: Dataset) -> dict[str, Any]:
    """Share of planted markers among the picks, and how many cell types got ≥1 marker."""
    if dataset.informative is None:
        raise DataError("This data set has no planted ground truth.")
    chosen = {int(j) for j in selected}
    truth = {int(j) for j in dataset.informative}
    by_type = dataset.extra.get("markers_by_type", {})
    covered = sum(1 for idx in by_type.values() if chosen & set(idx))
    return {"markers_found": len(chosen & truth), "n_markers": len(truth), "n_selected": len(chosen),
            "precision": len(chosen & truth) / len(chosen) if chosen else 0.0,
            "recall": len(chosen & truth) / len(truth) if truth else 0.0,
            "types_covered": covered, "n_types": len(by_type)}
