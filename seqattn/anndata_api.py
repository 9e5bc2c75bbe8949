"""AnnData in, AnnData out, scanpy-style: :func:`select_features`.

For analysts who live in scanpy: the gene panel goes straight back into the
AnnData (``adata.var[f"{key}_rank"]`` and ``adata.uns[key]``), so
``adata.write_h5ad`` keeps it and ``sc.pl.dotplot(adata, panel, groupby=target)``
draws it. The same checks as the h5ad loader apply (finite values, at least
10 cells, two classes), with messages that name what the AnnData holds.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from seqattn.data import DataError, Dataset
from seqattn.trace import SelectionTrace

#: With ``task="auto"``, a numeric obs column with more distinct values than this
#: is refused: it is an ID, a count or a continuous measurement, not a label.
MAX_AUTO_DISTINCT = 100
#: Most classes a classification target may have (more is an ID column in disguise).
MAX_CLASSES = 1000
#: A gene panel's default size: :func:`seqattn.selectors.default_k` with this cap (half the genes when fewer than 100).
PANEL_DEFAULT_K = 50


def _categorical_columns(obs: pd.DataFrame) -> list[str]:
    return [str(c) for c, dtype in obs.dtypes.items()
            if isinstance(dtype, pd.CategoricalDtype) or dtype.kind in "OSUb"]


def dataset_from_anndata(adata: Any, target: str, *, layer: str | None = None, use_raw: bool = False,
                         task: str = "auto", name: str = "adata") -> Dataset:
    """The :class:`~seqattn.data.Dataset` of an in-memory AnnData: ``X``, a layer or ``raw`` × ``obs[target]``."""
    from seqattn.data.h5ad import checked_matrix, obs_values
    from seqattn.data.checks import check_enough_samples, finish_dataset, listing

    obs_columns = [str(c) for c in adata.obs.columns]
    if target not in adata.obs.columns:
        raise DataError(f"obs column {target!r} not found. Available obs columns: "
                        f"{listing(obs_columns) if obs_columns else 'none'}.")
    if use_raw and layer is not None:
        raise DataError(f"Choose either layer={layer!r} or use_raw=True, not both.")
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
    use_raw: bool = False,
    key_added: str = "seqattn",
    pinned: Sequence[str] = (),
    banned: Sequence[str] = (),
    task: str = "auto",
    progress: bool = True,
    **options: Any,
) -> SelectionTrace:
    """Select ``k`` genes (features) of ``adata`` that predict ``obs[target]``, and write them back.

    ``k=None``: a panel of PANEL_DEFAULT_K genes (:func:`seqattn.selectors.default_k`, half the
    candidates on narrow data).
    ``method`` is any registered method (``"sa"``, ``"omp"``, ``"ttest"``, …);
    ``layer`` / ``use_raw`` pick the matrix as on the app's Data page; ``pinned``
    and ``banned`` are gene names. ``options`` go to the method (e.g.
    ``epochs``, ``device``, ``random_state``, ``callback``).

    Writes ``adata.var[f"{key_added}_rank"]`` (1..k in pick order, 0 for genes
    not picked; pinned genes are not ranked) and ``adata.uns[key_added]`` (the
    trace as a plain, h5ad-writable dict plus ``panel``, ``target``, ``matrix``).
    With ``use_raw=True`` the ranks are written for the genes of ``adata.var``
    (``adata.raw`` may hold more genes; the full panel is in ``uns``).
    Returns the :class:`~seqattn.trace.SelectionTrace`.
    """
    from seqattn.genomics import genes_to_indices
    from seqattn.selectors import default_k, run_method
    from seqattn.progress import chain_callbacks, progress_bar

    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"key_added must be a non-empty string, got {key_added!r}.")
    dataset = dataset_from_anndata(adata, target, layer=layer, use_raw=use_raw, task=task)
    for label, genes in (("pinned", pinned), ("banned", banned)):
        if isinstance(genes, str):
            raise ValueError(f"{label} must be a list of gene names, got the single string {genes!r}.")
    pin_idx = genes_to_indices(dataset.feature_names, list(pinned)) if len(pinned) else []
    ban_idx = genes_to_indices(dataset.feature_names, list(banned)) if len(banned) else []
    if pin_idx or ban_idx:
        options.update(pinned=pin_idx, banned=ban_idx)
    if k is None:
        k = default_k(dataset.n_features - len(pin_idx) - len(ban_idx), cap=PANEL_DEFAULT_K)
    user_callback = options.pop("callback", None)
    with progress_bar(method, enabled=progress) as bar:
        trace = run_method(dataset, method, k, callback=chain_callbacks(bar, user_callback), **options)

    ranks = pd.Series(0, index=pd.Index([str(v) for v in adata.var_names]), dtype=np.int64)
    rank_of = {name: i + 1 for i, name in enumerate(trace.selected_names)}
    present = ranks.index.isin(list(rank_of))
    ranks[present] = [rank_of[n] for n in ranks.index[present]]
    adata.var[f"{key_added}_rank"] = ranks.to_numpy()
    record = trace.to_dict()
    record.update(panel=list(trace.selected_names), pinned_names=[trace.feature_names[i] for i in trace.pinned],
                  target=target, matrix=dataset.extra["matrix"], classes=list(dataset.class_names or []))
    adata.uns[key_added] = _h5ad_safe(record)
    return trace


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
    data = _plain(dict(adata.uns[key]))
    data.setdefault("steps", [])
    data.setdefault("pinned", [])
    data.setdefault("banned", [])
    return SelectionTrace.from_dict(data)
