"""Open an ``.h5ad`` in backed mode: the matrix stays on disk, only labels and names load.

``load_table(path, target, backed=True)`` lands here. One streaming pass over
row chunks checks what the in-memory loader checks (finite values, all-zero
cells, constant genes) and records the minimum value (for ``log1p``); the
``Dataset`` it returns holds a :class:`~seqattn.data.stream.BackedRows` view
that skips empty cells and constant genes. Damaged or truncated files raise
:class:`~seqattn.data.DataError`, whether the damage is in the header or in a
chunk read later.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data.dataset import Dataset
from seqattn.data.errors import DataError
from seqattn.data.h5ad_safety import check_read_size
from seqattn.data.stream import BackedRows, iter_chunks, return_freed_memory


def load_h5ad_backed(content: Any, target: str | None, *, task: str, layer: str | None, name: str,
                     drop_constant: bool, drop_empty_cells: bool, chunk_rows: int | None = None) -> Dataset:
    """The backed counterpart of ``seqattn.data.h5ad.load_h5ad`` (same checks, same messages)."""
    from seqattn.data import checks, h5ad

    if content.path is None:
        raise DataError(f"Backed mode reads {content.name!r} from disk: give a file path, not an upload/buffer.")
    with h5ad.checked_h5ad(content) as f:  # refuses external storage, virtual datasets and links first
        info = h5ad.header_of(f, content.name)
        h5ad.check_h5ad_request(info, content.name, target, layer)
        key, var_key, source = h5ad.matrix_location(f, layer)
        if f"{key}/indptr" in f:  # anndata's backed reader holds it whole; data/indices are read in chunks
            check_read_size(f, [f"{key}/indptr"], content.name)
        y_raw, names = h5ad.read_obs_and_names(f, content.name, target, var_key)
    if len(set(names)) != len(names):
        checks.raise_duplicates(names, "gene", "call adata.var_names_make_unique() before saving, or drop them.")
    matrix = BackedRows(content.path, key)
    if matrix.shape[0] != len(y_raw) or matrix.shape[1] != len(names):
        raise DataError(f"{content.name!r}: {source} is {matrix.shape[0]} × {matrix.shape[1]} but obs has "
                        f"{len(y_raw)} rows and var {len(names)} names (damaged file?).")
    scan = _scan(matrix, names, chunk_rows)

    notes: list[str] = []
    empty = np.flatnonzero(scan["row_counts"] == 0)
    if len(empty) == matrix.shape[0]:
        raise DataError(f"Every cell in {source} of {content.name!r} has all-zero counts; check the layer.")
    if len(empty) and not drop_empty_cells:
        raise DataError(f"{len(empty)} cell(s) have all-zero counts in {source}; drop them first "
                        "(or load with drop_empty_cells=True).")
    rows = np.flatnonzero(scan["row_counts"] > 0)
    if len(empty):
        notes.append(f"Dropped {len(empty)} cell(s) with all-zero counts.")
    checks.check_enough_samples(len(rows), "cell")
    constant = np.flatnonzero(scan["col_min"] == scan["col_max"])
    columns, note = checks.constant_columns_to_keep(constant, names, drop_constant)
    if columns is not None:
        names = [names[j] for j in columns]
        notes.append(note)
    X = matrix.view(rows=rows if len(empty) else None, columns=columns)
    X.min_value = float(scan["min"])
    extra = {"source_format": "h5ad", "notes": notes, "target_column": target, "matrix": source,
             "obs_columns": info["obs"], "layers": info["layers"], "backed": True}
    dataset = checks.finish_dataset(X, y_raw[rows], names, target, task, name, extra)
    dataset.description = dataset.description.replace("from h5ad", f"from h5ad {source} (backed, on disk)")
    return_freed_memory()  # the scan's chunk buffers and per-cell temporaries, not kept for the fit
    return dataset


def _scan(matrix: BackedRows, names: list[str], chunk_rows: int | None) -> dict[str, Any]:
    """One pass over row chunks: stored entries per cell, per-gene min/max over non-empty cells, finiteness."""
    n_rows, n_cols = matrix.shape
    row_counts = np.zeros(n_rows, dtype=np.int64)
    col_min = np.full(n_cols, np.inf)
    col_max = np.full(n_cols, -np.inf)
    for rows, block in iter_chunks(matrix, None, chunk_rows):
        values = block.data if sp.issparse(block) else block
        if not np.all(np.isfinite(values)):
            bad = ~np.isfinite(block.data if sp.issparse(block) else block)
            cols = np.unique(block.indices[bad]) if sp.issparse(block) else np.flatnonzero(bad.any(axis=0))
            raise DataError(f"Missing or infinite values (NaN/inf) in gene(s) {[names[c] for c in cols[:10]]} "
                            f"(rows {rows[0]}–{rows[-1]}). Fix or drop them before use.")
        counts = np.diff(block.indptr) if sp.issparse(block) else np.count_nonzero(block, axis=1)
        row_counts[rows] = counts
        kept = block if counts.all() else block[counts > 0]
        if kept.shape[0]:
            col_min = np.minimum(col_min, _dense_row(kept.min(axis=0)))
            col_max = np.maximum(col_max, _dense_row(kept.max(axis=0)))
    finite = np.isfinite(col_min)
    return {"row_counts": row_counts, "col_min": col_min, "col_max": col_max,
            "min": float(col_min[finite].min()) if finite.any() else 0.0}


def _dense_row(value: Any) -> np.ndarray:
    return np.asarray(value.toarray() if sp.issparse(value) else value, dtype=np.float64).ravel()


def write_planted_counts_h5ad(path: str | Any, n_cells: int, n_genes: int, *, n_types: int = 5,
                              markers_per_type: int = 10, fold_change: float = 6.0, dense: bool = False,
                              chunk_cells: int = 2000, random_state: int = 0) -> dict[str, Any]:
    """Write Poisson counts with planted marker genes to an h5ad, one chunk of cells at a time.

    Never holds more than ``chunk_cells`` cells in memory, so files larger
    than RAM can be made for scale tests. Background rates are log-normal
    (≈ 90 % zeros, droplet-like); each type's markers are ``fold_change`` ×
    higher in that type; cells have log-normal size factors. ``obs["cell_type"]``
    holds the labels. Returns ``{"markers": sorted marker indices, "nnz": stored
    values, "bytes": file size}``. CSR by default; ``dense=True`` writes a dense X.
    """
    import anndata
    import h5py
    from anndata.io import sparse_dataset

    n_markers = n_types * markers_per_type
    if n_types < 2 or n_markers > n_genes or n_cells < 2 * n_types:
        raise DataError(f"Cannot plant {n_types} types × {markers_per_type} markers in {n_cells} cells × "
                        f"{n_genes} genes.")
    rng = np.random.default_rng(random_state)
    base = np.exp(rng.normal(-3.0, 1.5, size=n_genes))  # most genes rarely seen in a cell
    markers = rng.choice(n_genes, size=n_markers, replace=False).reshape(n_types, markers_per_type)
    rates = np.tile(base, (n_types, 1))
    for t in range(n_types):
        rates[t, markers[t]] = np.maximum(base[markers[t]], 0.3) * fold_change
    labels = rng.integers(0, n_types, size=n_cells)
    type_names = np.array([f"type{t}" for t in range(n_types)], dtype=object)
    obs = pd.DataFrame({"cell_type": pd.Categorical(type_names[labels])},
                       index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"GENE{j:05d}" for j in range(n_genes)])
    anndata.AnnData(obs=obs, var=var).write_h5ad(path)
    nnz = 0
    with h5py.File(path, "a") as f:
        if "X" in f:
            del f["X"]
        X = None
        for start in range(0, n_cells, chunk_cells):
            types = labels[start:start + chunk_cells]
            size = np.exp(rng.normal(0.0, 0.3, size=len(types)))[:, None]
            counts = rng.poisson(rates[types] * size).astype(np.float32)
            if dense:
                if X is None:
                    X = f.create_dataset("X", shape=(n_cells, n_genes), dtype=np.float32,
                                         chunks=(min(chunk_cells, n_cells), min(n_genes, 1024)))
                    X.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
                X[start:start + len(types)] = counts
                nnz += int(np.count_nonzero(counts))
                continue
            block = sp.csr_matrix(counts)
            nnz += block.nnz
            if X is None:
                anndata.io.write_elem(f, "X", block)
                X = sparse_dataset(f["X"])
            else:
                X.append(block)
    return {"markers": np.sort(markers.ravel()), "nnz": nnz, "bytes": os.path.getsize(path),
            "markers_by_type": {str(type_names[t]): sorted(int(j) for j in markers[t]) for t in range(n_types)}}
