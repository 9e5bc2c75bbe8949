"""AnnData in, AnnData out, scanpy-style: :func:`select_features`.

For analysts who live in scanpy: the matrix is chosen as scanpy's marker tools choose it
(``.raw`` when present, else ``X``; ``layer=`` or ``use_raw=`` to say otherwise), and the gene
panel goes straight back into the AnnData: ``adata.var[f"{key}_rank"]`` (1..p for the whole
panel, pinned genes first) and ``adata.uns[key]`` in ``sc.tl.rank_genes_groups``'s layout, each
panel gene filed under the cell type it marks, so ``sc.pl.rank_genes_groups_dotplot(adata,
key=key)`` and ``sc.get.rank_genes_groups_df(adata, None, key=key)`` read it unchanged and
``adata.write_h5ad`` keeps it. The same checks as the h5ad loader apply (finite values, at least
10 cells, two classes), with messages that name what the AnnData holds.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from seqattn.data import DataError, Dataset
from seqattn.trace import SelectionTrace

logger = logging.getLogger(__name__)

#: With ``task="auto"``, a numeric obs column with more distinct values than this
#: is refused: it is an ID, a count or a continuous measurement, not a label.
MAX_AUTO_DISTINCT = 100
#: Most classes a classification target may have (more is an ID column in disguise).
MAX_CLASSES = 1000
#: A gene panel's default size: :func:`seqattn.selectors.default_k` with this cap (half the genes when fewer than 100).
PANEL_DEFAULT_K = 50
#: The keys of ``uns[key]`` that hold ``rank_genes_groups``'s layout (the rest is the trace).
RANK_GENES_GROUPS_KEYS = ("params", "names", "scores", "logfoldchanges", "pvals", "pvals_adj", "pts", "pts_rest")


def _categorical_columns(obs: pd.DataFrame) -> list[str]:
    return [str(c) for c, dtype in obs.dtypes.items()
            if isinstance(dtype, pd.CategoricalDtype) or dtype.kind in "OSUb"]


def resolve_use_raw(adata: Any, layer: str | None, use_raw: bool | None) -> bool:
    """scanpy's rule for marker tools: ``use_raw=None`` reads ``.raw`` when it is set and no
    ``layer`` was named, else ``X`` (or the layer)."""
    if use_raw is None:
        return layer is None and getattr(adata, "raw", None) is not None
    return bool(use_raw)


def dataset_from_anndata(adata: Any, target: str, *, layer: str | None = None, use_raw: bool | None = None,
                         task: str = "auto", name: str = "adata") -> Dataset:
    """The :class:`~seqattn.data.Dataset` of an in-memory AnnData: ``X``, a layer or ``raw`` × ``obs[target]``.

    ``use_raw=None`` (default) follows scanpy's marker tools: ``.raw`` when present and no
    ``layer`` is named, else ``X``; ``extra["matrix"]`` says which was read.
    """
    from seqattn.data.h5ad import checked_matrix, obs_values
    from seqattn.data.checks import check_enough_samples, finish_dataset, listing

    obs_columns = [str(c) for c in adata.obs.columns]
    if target not in adata.obs.columns:
        raise DataError(f"obs column {target!r} not found. Available obs columns: "
                        f"{listing(obs_columns) if obs_columns else 'none'}.")
    if use_raw is True and layer is not None:
        raise DataError(f"Choose either layer={layer!r} or use_raw=True, not both.")
    use_raw = resolve_use_raw(adata, layer, use_raw)
    layers = [str(k) for k in adata.layers.keys()]
    if use_raw and adata.raw is None:
        raise DataError("use_raw=True but adata.raw is empty; use X (use_raw=False) or one of the layers: "
                        f"{listing(layers) if layers else 'none'}.")
    if layer is not None and layer not in adata.layers:
        raw_hint = " (adata.raw is set: use_raw=True reads it)" if adata.raw is not None else ""
        raise DataError(f"Layer {layer!r} not found. Available layers: "
                        f"{listing(layers) if layers else 'none (only X)'}{raw_hint}.")
    X, names, source = checked_matrix(adata, layer, use_raw=use_raw)
    check_enough_samples(X.shape[0], "cell")

    column = adata.obs[target]
    if task == "auto" and pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        distinct = int(column.nunique(dropna=True))
        if distinct > MAX_AUTO_DISTINCT:
            labels = [c for c in _categorical_columns(adata.obs) if c != target]
            suggestion = f" Label columns: {listing(labels)}." if labels else ""
            raise DataError(f"obs column {target!r} is numeric with {distinct:,} distinct values: an ID, a count "
                            "or a measurement, not a cell label. Choose a label column, or pass "
                            f"task='regression' to predict it as a number.{suggestion}")
    y_raw = obs_values(adata, target)
    if task == "classification" and pd.Series(y_raw).nunique(dropna=True) > MAX_CLASSES:
        raise DataError(f"obs column {target!r} has {pd.Series(y_raw).nunique():,} distinct values; a "
                        f"classification target may have at most {MAX_CLASSES:,} classes.")
    extra = {"source_format": "h5ad", "notes": [], "target_column": target, "matrix": source,
             "obs_columns": obs_columns, "layers": layers}
    dataset = finish_dataset(X, y_raw, names, target, task, name, extra)
    dataset.description = dataset.description.replace("from h5ad", f"from AnnData {source}")
    return dataset


def select_features(
    adata: Any,
    target: str = "cell_type",
    k: int | None = None,
    *,
    method: str = "sa",
    layer: str | None = None,
    use_raw: bool | None = None,
    key_added: str = "seqattn",
    pinned: Sequence[str] = (),
    banned: Sequence[str] = (),
    min_fraction: float = 0.0,
    min_mean: float = 0.0,
    task: str = "auto",
    progress: bool = True,
    **options: Any,
) -> SelectionTrace:
    """Select ``k`` genes (features) of ``adata`` that predict ``obs[target]``, and write them back.

    ``k=None``: a panel of PANEL_DEFAULT_K genes (:func:`seqattn.selectors.default_k`, half the
    candidates on narrow data).
    ``method`` is any registered method (``"sa"``, ``"omp"``, ``"ttest"``, …); ``pinned`` and
    ``banned`` are gene names. ``options`` go to the method (e.g. ``epochs``, ``device``,
    ``random_state``, ``callback``); for SA they override the panel defaults
    (:data:`seqattn.selectors.defaults.PANEL_DEFAULTS`: several runs combined — 16 up to k = 50, else 8,
    :func:`~seqattn.selectors.defaults.panel_runs` — each pick says in how many it was made and is flagged
    unstable when at most half made it or fewer than 9 in 10 resampled consensus panels keep it — candidates
    from every type's t-test markers, a class-balanced loss, and each pick made for the worst-served
    cell type (:mod:`seqattn.selectors.coverage`); ``n_runs=1`` for one run, ``coverage="none"`` for
    plain SA's largest-attention picks).

    Expression floor: genes non-zero in fewer than ``min_fraction`` of the cells, or with a
    mean below ``min_mean`` (on the matrix read), are banned as a probe would not detect them;
    how many is said on stderr (with ``progress``), logged and stored in the trace's
    ``settings["expression_floor"]``. Both 0 (default): no floor. Keep ``min_fraction`` below
    the share of the rarest cell type you want covered.

    The matrix follows scanpy's marker tools: ``use_raw=None`` (default) reads ``adata.raw`` when
    it is set and no ``layer`` is named, else ``X``; ``use_raw=True/False`` or ``layer=`` choose.
    Which one was read is said on stderr (with ``progress``), logged, stored in
    ``uns[key_added]["params"]`` (``use_raw``, ``layer``) and ``["matrix"]``, and in the returned
    trace's ``settings["matrix"]``.

    Writes ``adata.var[f"{key_added}_rank"]``: the panel's rank, 1..p for the p pinned genes (pin
    order), then p+1..p+k for the picks (pick order), 0 for genes not in the panel (with
    ``.raw``, ranks are written for the genes of ``adata.var``; the whole panel is in ``uns``).
    ``adata.uns[key_added]`` holds ``sc.tl.rank_genes_groups``'s layout — ``params`` (groupby,
    reference, method, use_raw, layer), ``names`` / ``scores`` / ``logfoldchanges`` / ``pvals`` /
    ``pvals_adj`` per cell type, ``pts`` / ``pts_rest`` — with every panel gene under the type it
    marks (see :func:`rank_genes_groups_layout`), plus the trace as a plain dict and ``panel``
    (pinned genes, then picks), ``target``, ``matrix``. :func:`trace_from_anndata` reads the trace
    back, also after ``write_h5ad`` / ``read_h5ad``. Returns the :class:`~seqattn.trace.SelectionTrace`.
    """
    from seqattn.genomics import check_floor_room
    from seqattn.selectors import default_k

    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"key_added must be a non-empty string, got {key_added!r}.")
    dataset = dataset_from_anndata(adata, target, layer=layer, use_raw=use_raw, task=task)
    _say_matrix(dataset.extra["matrix"], use_raw, progress)
    pin_idx, ban_idx, floor_record = _pins_and_bans(dataset, pinned, banned, min_fraction, min_mean, progress)
    if pin_idx or ban_idx:
        options.update(pinned=pin_idx, banned=ban_idx)
    room = dataset.n_features - len(pin_idx) - len(ban_idx)
    check_floor_room(floor_record["message"] if floor_record else "", room, k)
    if k is None:
        k = default_k(room, cap=PANEL_DEFAULT_K)
    trace = _run_selection(dataset, method, k, options, progress)
    trace.settings["matrix"] = dataset.extra["matrix"]
    if floor_record:
        trace.settings["expression_floor"] = floor_record
    if method == "sa" and progress:
        _say_pick_warnings(trace)
    _write_panel(adata, trace, dataset, target=target, method=method, layer=layer, key_added=key_added)
    return trace


def _pins_and_bans(dataset: Dataset, pinned: Sequence[str], banned: Sequence[str], min_fraction: float,
                   min_mean: float, progress: bool) -> tuple[list[int], list[int], dict[str, Any] | None]:
    """Gene names -> indices; the expression floor's genes join the bans (a pinned gene stays, even below it).
    Returns ``(pinned, banned, the floor's record for the trace or None when no floor was asked for)``."""
    from seqattn.genomics import expression_floor, genes_to_indices

    for label, genes in (("pinned", pinned), ("banned", banned)):
        if isinstance(genes, str):
            raise ValueError(f"{label} must be a list of gene names, got the single string {genes!r}.")
    pin_idx = genes_to_indices(dataset.feature_names, list(pinned)) if len(pinned) else []
    ban_idx = genes_to_indices(dataset.feature_names, list(banned)) if len(banned) else []
    floor, floor_message = expression_floor(dataset, min_fraction=min_fraction, min_mean=min_mean)
    if floor:
        ban_idx = sorted(set(ban_idx) | (set(floor) - set(pin_idx)))
        _say(f"seqattn: {floor_message}", progress)
    if not floor_message:
        return pin_idx, ban_idx, None
    return pin_idx, ban_idx, {"min_fraction": float(min_fraction), "min_mean": float(min_mean),
                              "removed": len(floor), "message": floor_message}


def _run_selection(dataset: Dataset, method: str, k: int, options: dict[str, Any], progress: bool) -> SelectionTrace:
    """Run ``method`` with a progress bar (and the user's callback); SA gets the panel defaults under
    the user's options."""
    from seqattn.progress import chain_callbacks, progress_bar
    from seqattn.selectors import run_method
    from seqattn.selectors.defaults import panel_defaults

    user_callback = options.pop("callback", None)
    if method == "sa":
        options = panel_defaults(dataset, options, k)
    with progress_bar(method, enabled=progress) as bar:
        return run_method(dataset, method, k, callback=chain_callbacks(bar, user_callback), **options)


def _say_pick_warnings(trace: SelectionTrace) -> None:
    from seqattn.evaluation.narrative import pick_warnings

    for line in pick_warnings(trace):
        print(f"seqattn: {line}", file=sys.stderr)


def _write_panel(adata: Any, trace: SelectionTrace, dataset: Dataset, *, target: str, method: str,
                 layer: str | None, key_added: str) -> None:
    """The panel into ``adata``: ``var[f"{key_added}_rank"]`` and ``uns[key_added]`` (the trace, and
    ``rank_genes_groups``'s layout for cell types), as :func:`select_features` documents."""
    panel = [trace.feature_names[i] for i in trace.pinned] + list(trace.selected_names)
    ranks = pd.Series(0, index=pd.Index([str(v) for v in adata.var_names]), dtype=np.int64)
    rank_of = {name: i + 1 for i, name in enumerate(panel)}
    present = ranks.index.isin(list(rank_of))
    ranks[present] = [rank_of[n] for n in ranks.index[present]]
    adata.var[f"{key_added}_rank"] = ranks.to_numpy()
    record = trace.to_dict()
    record.update(panel=panel, pinned_names=[trace.feature_names[i] for i in trace.pinned],
                  target=target, matrix=dataset.extra["matrix"], classes=list(dataset.class_names or []))
    stored = _h5ad_safe(record)
    if dataset.task == "classification" and panel:
        params = {"groupby": target, "reference": "rest", "method": method,
                  "use_raw": dataset.extra["matrix"] == "raw", "layer": layer, "corr_method": "benjamini-hochberg"}
        stored.update(rank_genes_groups_layout(dataset, panel, params))
    adata.uns[key_added] = stored


def _say_matrix(matrix: str, use_raw: bool | None, progress: bool) -> None:
    """Tell the user which matrix was read (scanpy's default differs from seqattn's old one)."""
    why = " (use_raw=None: .raw is set, as scanpy's marker tools read it)" if use_raw is None and matrix == "raw" \
        else ""
    message = f"seqattn: selecting from adata.{matrix if matrix in ('X', 'raw') else 'layers[' + matrix[6:] + ']'}" \
              f"{why}."
    _say(message, progress)


def _say(message: str, progress: bool) -> None:
    logger.info(message)
    if progress:
        print(message, file=sys.stderr)


def rank_genes_groups_layout(dataset: Dataset, panel: Sequence[str], params: dict[str, Any]) -> dict[str, Any]:
    """The panel in ``sc.tl.rank_genes_groups``'s layout, each gene filed under the type it marks.

    One field per cell type (``dataset.class_names`` order) in the record arrays ``names``,
    ``scores`` (Welch t of the gene, its type vs the rest), ``logfoldchanges``, ``pvals``,
    ``pvals_adj``; within a type its genes in panel order. scanpy's layout needs the same number
    of rows for every type, so shorter columns are padded with ``""`` (scores NaN). scanpy's own
    padding (NaN names, as ``sc.tl.filter_rank_genes_groups`` writes) cannot be saved to h5ad;
    ``""`` can, and because ``pts`` / ``pts_rest`` (genes × types fractions, as scanpy writes with
    ``pts=True``) list only panel genes, ``sc.get.rank_genes_groups_df`` merges the padding away
    and ``sc.pl.rank_genes_groups_dotplot`` shows each panel gene once (tested, also after an
    h5ad round trip).
    """
    from seqattn.genomics import nonzero_fractions, panel_marker_stats

    stats = panel_marker_stats(dataset, list(panel))
    types = list(dataset.class_names or [str(c) for c in range(dataset.n_classes)])
    by_type = {t: stats[stats["marks"] == t] for t in types}
    depth = max(1, max(len(rows) for rows in by_type.values()))

    def column(rows: pd.DataFrame, field: str, fill: Any) -> np.ndarray:
        values = rows[field].tolist() + [fill] * (depth - len(rows))
        return np.array(values, dtype=object if field == "gene" else np.float64)

    def records(field: str, fill: Any) -> np.recarray:
        return np.rec.fromarrays([column(by_type[t], field, fill) for t in types], names=types)

    pts, pts_rest = nonzero_fractions(dataset, list(panel))
    return {"params": dict(params), "names": records("gene", ""), "scores": records("score", np.nan),
            "logfoldchanges": records("logfoldchange", np.nan), "pvals": records("pvalue", np.nan),
            "pvals_adj": records("pvalue_adj", np.nan), "pts": pts, "pts_rest": pts_rest}


def _h5ad_safe(value: Any) -> Any:
    """A JSON-like dict that anndata can write: no ``None`` (h5py cannot store it), numbers as
    arrays where lists hold missing values (NaN), empty lists kept as empty arrays."""
    if isinstance(value, dict):
        return {str(k): _h5ad_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) or v is None for v in value):
            if any(v is None for v in value) or any(isinstance(v, float) for v in value):
                return np.array([np.nan if v is None else v for v in value], dtype=np.float64)
            return np.array(value, dtype=np.int64)
        if all(isinstance(v, str) for v in value):
            return np.array(value, dtype=object) if value else np.array([], dtype=np.int64)
        return {str(i): _h5ad_safe(v) for i, v in enumerate(value)}  # lists of dicts (the steps)
    return value


def _plain(value: Any) -> Any:
    """Back from what h5ad returns (numpy arrays, dicts keyed "0", "1", …) to JSON-like values."""
    if isinstance(value, dict):
        if value and all(str(k).isdigit() for k in value):
            return [_plain(value[k]) for k in sorted(value, key=int)]
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def trace_from_anndata(adata: Any, key: str = "seqattn") -> SelectionTrace:
    """The :class:`~seqattn.trace.SelectionTrace` stored by :func:`select_features` (also after
    ``write_h5ad`` / ``read_h5ad``)."""
    if key not in adata.uns:
        stored = [str(k) for k, v in adata.uns.items() if isinstance(v, dict) and "steps" in v]
        raise KeyError(f"adata.uns has no {key!r}; selections stored here: {', '.join(stored) or 'none'}.")
    data = _plain({k: v for k, v in adata.uns[key].items() if k not in RANK_GENES_GROUPS_KEYS})
    data.setdefault("steps", [])
    data.setdefault("pinned", [])
    data.setdefault("banned", [])
    return SelectionTrace.from_dict(data)
