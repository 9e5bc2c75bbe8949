"""Read and write AnnData ``.h5ad`` files (cells × genes), kept sparse; never unpickled.

Every read starts with :func:`seqattn.data.h5ad_safety.refuse_unsafe_storage`
(no external storage, virtual datasets or links) on a file opened by path (an
upload is copied to a private temporary file first). Then only what the
selection needs is read, element by element with anndata's ``read_elem``: the
matrix (``X``, a layer or ``raw/X``), the target ``obs`` column and the gene
names, after their declared, decompressed sizes passed
:func:`~seqattn.data.h5ad_safety.check_read_size`; ``obsm``, ``obsp``, ``uns``
and the other columns are never read. Files written before anndata 0.8 (no
``encoding-type`` on the root; e.g. the shipped ``pbmc68k_reduced``) are read
whole with ``anndata.read_h5ad``, after every dataset in them passed the size
check. The shared size limits are read from :mod:`seqattn.data.limits` at call
time (so a test can lower them there).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data import limits
from seqattn.data.checks import (
    check_enough_samples,
    check_finite_dense,
    finish_dataset,
    without_constant_columns,
    listing,
    raise_duplicates,
)
from seqattn.data.dataset import Dataset
from seqattn.data.errors import DataError
from seqattn.data.h5ad_safety import check_read_size, local_path, refuse_unsafe_storage
from seqattn.data.sources import HDF5_MAGIC, Content

#: Largest number of stored non-zeros of a *sparse* h5ad matrix: 200 M
#: ≈ 1.6 GB as CSR float32 + int32 indices.
MAX_SPARSE_NONZEROS = 200_000_000


@contextmanager
def checked_h5ad(content: Content) -> Iterator[Any]:
    """The h5ad as an open, read-only ``h5py.File`` (by path), after the safety walk refused nothing."""
    import h5py

    if not content.head.startswith(HDF5_MAGIC):
        raise DataError(f"{content.name!r} is not an h5ad file (not HDF5); was it renamed? "
                        "Save it with AnnData.write_h5ad or upload a CSV/TSV/parquet.")
    with local_path(content) as path:
        try:
            f = h5py.File(path, "r")
        except Exception as exc:  # h5py raises OSError on damaged or truncated files
            raise DataError(f"Could not read {content.name!r} as h5ad (damaged or truncated?): {exc}") from exc
        with f:
            try:
                refuse_unsafe_storage(f, content.name)
            except DataError:
                raise
            except Exception as exc:  # a damaged object table
                raise DataError(f"Could not read {content.name!r} as h5ad (damaged or truncated?): {exc}") from exc
            yield f


def h5ad_header(content: Content) -> dict[str, Any]:
    """Shape, storage, obs columns and layers of an h5ad, read with h5py (no matrix load)."""
    with checked_h5ad(content) as f:
        return header_of(f, content.name)


def header_of(f: Any, name: str) -> dict[str, Any]:
    """``obs`` columns, layers, shape, storage and non-zeros of an open h5ad (in-memory and backed loading)."""
    try:
        if "X" not in f and "obs" not in f:
            raise DataError(f"{name!r} is an HDF5 file but not an AnnData h5ad (no X / obs).")
        info = {"obs": _h5_frame_columns(f, "obs"), "layers": list(f["layers"].keys()) if "layers" in f else []}
        if ("raw" in f or "raw.X" in f) and "raw" not in info["layers"]:
            info["layers"].append("raw")
        info["shape"], info["sparse"], info["nnz"] = _h5_matrix_shape(f["X"]) if "X" in f else (None, False, 0)
        info["n_vars"] = info["shape"][1] if info["shape"] else None
        return info
    except DataError:
        raise
    except Exception as exc:  # h5py raises OSError / KeyError / ValueError on damaged files
        raise DataError(f"Could not read {name!r} as h5ad (damaged or truncated?): {exc}") from exc


def _h5_frame_columns(f: Any, key: str) -> list[str]:
    if key not in f:
        return []
    group = f[key]
    if not hasattr(group, "keys"):  # pre-0.7 anndata: obs stored as one structured array
        return [n for n in (group.dtype.names or ()) if n != "index"]
    order = group.attrs.get("column-order")
    if order is not None:
        return [c.decode() if isinstance(c, bytes) else str(c) for c in np.atleast_1d(order)]
    index = group.attrs.get("_index", "_index")
    return [k for k in group.keys() if k not in (index, "__categories")]


def _h5_matrix_shape(node: Any) -> tuple[tuple[int, int] | None, bool, int]:
    import h5py

    if isinstance(node, h5py.Dataset):
        return (tuple(int(s) for s in node.shape) if node.ndim == 2 else None), False, 0
    shape = node.attrs.get("shape", node.attrs.get("h5sparse_shape"))
    nnz = int(node["data"].shape[0]) if "data" in node else 0
    return (tuple(int(s) for s in shape) if shape is not None else None), True, nnz


def _check_h5ad_size(info: dict[str, Any], name: str) -> None:
    shape, sparse, nnz = info["shape"], info["sparse"], info["nnz"]
    if shape is None:
        return
    if sparse and nnz > MAX_SPARSE_NONZEROS:
        raise DataError(f"{name!r} stores {nnz:,} non-zero values ({shape[0]} cells × {shape[1]} genes), above "
                        f"the in-memory limit of {MAX_SPARSE_NONZEROS:,}. Subsample cells or prefilter genes first.")
    if not sparse and shape[0] * shape[1] > limits.MAX_DENSE_VALUES:
        raise DataError(f"{name!r} holds a dense {shape[0]} × {shape[1]} matrix ({shape[0] * shape[1]:,} values), "
                        f"above the in-memory limit of {limits.MAX_DENSE_VALUES:,}. Store X as a sparse matrix "
                        "(scipy CSR) or prefilter genes first.")


def check_h5ad_request(info: dict[str, Any], name: str, target: str | None, layer: str | None) -> None:
    """The target is an obs column and the layer exists (in-memory and backed loading alike)."""
    if target is None:
        raise DataError(f"Choose the obs column to predict; obs columns are: {listing(info['obs'])}.")
    if target not in info["obs"]:
        raise DataError(f"obs column {target!r} not found in {name!r}. Available obs columns: "
                        f"{listing(info['obs'])}.")
    if layer is not None and layer not in info["layers"]:
        available = listing(info["layers"]) if info["layers"] else "none (only X)"
        raise DataError(f"Layer {layer!r} not found in {name!r}. Available layers: {available}.")


def load_h5ad(content: Content, target: str | None, *, task: str, layer: str | None, name: str,
              drop_constant: bool, drop_empty_cells: bool) -> Dataset:
    """An h5ad in memory (``load_table`` for ``.h5ad``): size and request checked from the header, then only the
    matrix, the target column and the gene names are read; all-zero cells and constant genes dropped or refused."""
    with checked_h5ad(content) as f:
        info = header_of(f, content.name)
        _check_h5ad_size(info, content.name)
        check_h5ad_request(info, content.name, target, layer)
        matrix, var_names, y_raw, source = _read_selection(f, content.name, target, layer)
    X, names = check_matrix(matrix, var_names, source, owner=repr(content.name),
                            fix_duplicates="call adata.var_names_make_unique() before saving, or drop them.")
    if len(y_raw) != X.shape[0]:
        raise DataError(f"{content.name!r}: {source} has {X.shape[0]} rows but obs column {target!r} has "
                        f"{len(y_raw)} values (damaged file?).")
    notes: list[str] = []
    cell_counts = np.diff(X.indptr) if sp.issparse(X) else np.count_nonzero(X, axis=1)
    empty = np.flatnonzero(cell_counts == 0)
    if len(empty) == X.shape[0]:
        raise DataError(f"Every cell in {source} of {content.name!r} has all-zero counts; check the layer.")
    if len(empty):
        if not drop_empty_cells:
            raise DataError(f"{len(empty)} cell(s) have all-zero counts in {source}; drop them first "
                            "(or load with drop_empty_cells=True).")
        keep = np.flatnonzero(cell_counts > 0)
        X, y_raw = X[keep], y_raw[keep]
        notes.append(f"Dropped {len(empty)} cell(s) with all-zero counts.")
    check_enough_samples(X.shape[0], "cell")
    X, names, constant_note = without_constant_columns(X, names, drop_constant)
    if constant_note:
        notes.append(constant_note)
    extra = {"source_format": "h5ad", "notes": notes, "target_column": target, "matrix": source,
             "obs_columns": info["obs"], "layers": info["layers"]}
    dataset = finish_dataset(X, y_raw, names, target, task, name, extra)
    dataset.description = dataset.description.replace("from h5ad", f"from h5ad {source}")
    return dataset


def default_layer(layers: list[str]) -> str | None:
    """The matrix an h5ad is read from unless the user says otherwise: ``"raw"`` when the file stores
    ``.raw`` (``layers`` as :func:`header_of` lists them), else ``None`` (X). scanpy's marker tools and
    :func:`seqattn.select_features` read ``.raw`` first: a scanpy object's X is often scaled (negative values,
    no "expressed above zero"), and the built-in ``pbmc68k_reduced`` is its ``.raw``."""
    return "raw" if "raw" in layers else None


def writes_elements(f: Any) -> bool:
    """Whether the file uses anndata's element encoding (anndata ≥ 0.8), so single elements can be read."""
    encoding = f.attrs.get("encoding-type", b"")
    return (encoding.decode() if isinstance(encoding, bytes) else str(encoding)) == "anndata"


def matrix_location(f: Any, layer: str | None) -> tuple[str, str, str]:
    """HDF5 path of the matrix, of its var frame, and a label for messages (``layer`` checked already)."""
    if layer is None:
        return "X", "var", "X"
    if f"layers/{layer}" in f:
        return f"layers/{layer}", "var", f"layer {layer!r}"
    return "raw/X", "raw/var", "raw"  # layer == "raw": adata.raw


def var_index_key(f: Any, var_key: str) -> str:
    """HDF5 path of the gene names (the var frame's index)."""
    index = f[var_key].attrs.get("_index", "_index")
    return f"{var_key}/{index.decode() if isinstance(index, bytes) else index}"


def read_obs_and_names(f: Any, name: str, target: str, var_key: str) -> tuple[np.ndarray, list[str]]:
    """The target obs column and the gene names, read element by element (sizes checked first)."""
    from anndata.io import read_elem

    index_key = var_index_key(f, var_key)
    check_read_size(f, [f"obs/{target}", index_key], name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            column = read_elem(f["obs"][target])
            genes = read_elem(f[index_key])
    except Exception as exc:
        raise DataError(f"Could not read obs/var of {name!r} (damaged or truncated?): {exc}") from exc
    return series_values(pd.Series(column)), [str(v) for v in genes]


def _read_selection(f: Any, name: str, target: str, layer: str | None) -> tuple[Any, Any, np.ndarray, str]:
    """``(matrix, gene names, target values, label)``: only these elements are read (older files: all)."""
    if not writes_elements(f):
        return _read_whole_old_file(f, name, target, layer)
    from anndata.io import read_elem

    key, var_key, source = matrix_location(f, layer)
    if key not in f:
        raise DataError(f"{name!r} has no expression matrix in {source}.")
    check_read_size(f, [key, f"obs/{target}", var_index_key(f, var_key)], name)
    y_raw, var_names = read_obs_and_names(f, name, target, var_key)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matrix = read_elem(f[key])
    except Exception as exc:
        raise DataError(f"Could not read {source} of {name!r} (damaged or truncated?): {exc}") from exc
    return matrix, var_names, y_raw, source


def _read_whole_old_file(f: Any, name: str, target: str, layer: str | None) -> tuple[Any, Any, np.ndarray, str]:
    """Files from anndata < 0.8 store obs/var as one table each: read whole, once every dataset passed."""
    import anndata

    check_read_size(f, list(f.keys()), name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old files trigger FutureWarnings about moved keys
            adata = anndata.read_h5ad(f.filename)
    except Exception as exc:
        raise DataError(f"Could not read {name!r} as h5ad (damaged or truncated?): {exc}") from exc
    matrix, var_names, source = anndata_matrix(adata, layer)  # "raw" checked against the header
    return matrix, var_names, obs_values(adata, target), source


def anndata_matrix(adata: Any, layer: str | None = None, *, use_raw: bool = False) -> tuple[Any, Any, str]:
    """``(matrix, gene names, label)`` of an in-memory AnnData: ``X``, a layer, or ``raw``
    (``use_raw=True``, or ``layer="raw"`` when no layer has that name, as in the app's matrix picker)."""
    if use_raw or (layer == "raw" and "raw" not in adata.layers):
        return adata.raw.X, adata.raw.var_names, "raw"
    if layer is None:
        return adata.X, adata.var_names, "X"
    return adata.layers[layer], adata.var_names, f"layer {layer!r}"


def checked_matrix(adata: Any, layer: str | None = None, *, use_raw: bool = False, owner: str = "The AnnData",
                   fix_duplicates: str = "call adata.var_names_make_unique() first.") -> tuple[Any, list[str], str]:
    """``(float32 matrix, gene names, label)`` of an in-memory AnnData, with the checks every reader
    needs (a matrix exists, unique gene names, numeric, finite) so an upload and ``select_features``
    refuse the same things with the same words."""
    matrix, var_names, source = anndata_matrix(adata, layer, use_raw=use_raw)
    X, names = check_matrix(matrix, var_names, source, owner=owner, fix_duplicates=fix_duplicates)
    return X, names, source


def check_matrix(matrix: Any, var_names: Any, source: str, *, owner: str,
                 fix_duplicates: str) -> tuple[Any, list[str]]:
    """``(float32 matrix, gene names)`` after the checks every reader shares: a matrix exists, one
    name per column and unique, numeric, finite."""
    if matrix is None:
        raise DataError(f"{owner} has no expression matrix in {source}.")
    if len(getattr(matrix, "shape", ())) != 2:
        raise DataError(f"{owner}: {source} is not a cells × genes matrix (shape {getattr(matrix, 'shape', None)}).")
    names = [str(v) for v in var_names]
    if len(names) != matrix.shape[1]:
        raise DataError(f"{owner}: {source} has {matrix.shape[1]} columns but there are {len(names)} gene names "
                        "(damaged file?).")
    if len(set(names)) != len(names):
        raise_duplicates(names, "gene", fix_duplicates)
    X = _as_float32(matrix, source)
    _check_finite_any(X, names)
    return X, names


def obs_values(adata: Any, column: str) -> np.ndarray:
    """An obs column as a numpy array (categorical labels as plain objects)."""
    return series_values(adata.obs[column])


def series_values(values: pd.Series) -> np.ndarray:
    """A column as a numpy array (categorical labels as plain objects)."""
    return values.astype(object).to_numpy() if isinstance(values.dtype, pd.CategoricalDtype) else values.to_numpy()


def _as_float32(matrix: Any, source: str) -> Any:
    if sp.issparse(matrix):
        if matrix.dtype.kind not in "biuf":
            raise DataError(f"The matrix in {source} is not numeric (dtype {matrix.dtype}); choose another layer.")
        return sp.csr_matrix(matrix, dtype=np.float32)
    if hasattr(matrix, "to_memory"):  # backed / lazy arrays
        matrix = matrix.to_memory()
    array = np.asarray(matrix)
    if array.dtype.kind not in "biuf":
        raise DataError(f"The matrix in {source} is not numeric (dtype {array.dtype}); choose another layer.")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_finite_any(X: Any, names: list[str]) -> None:
    if not sp.issparse(X):
        check_finite_dense(X, names)
        return
    bad = ~np.isfinite(X.data)
    if bad.any():
        cols, counts = np.unique(X.indices[bad], return_counts=True)
        details = ", ".join(f"{names[c]!r} ({int(n)})" for c, n in zip(cols[:10], counts[:10]))
        more = f", ... and {len(cols) - 10} more genes" if len(cols) > 10 else ""
        raise DataError(f"Missing or infinite values (NaN/inf) in {len(cols)} gene(s): {details}{more}. "
                        "Fix or drop them before upload.")


def save_h5ad(dataset: Dataset, path: str | os.PathLike, target_name: str = "cell_type") -> Path:
    """Write a ``Dataset`` as h5ad (X kept sparse if sparse; labels as a categorical obs column)."""
    import anndata

    labels = (np.asarray(dataset.class_names, dtype=object)[dataset.y] if dataset.class_names else dataset.y)
    obs = pd.DataFrame({target_name: pd.Categorical(labels) if dataset.class_names else labels},
                       index=[f"cell{i}" for i in range(dataset.n_samples)])
    var = pd.DataFrame(index=pd.Index(dataset.feature_names, name=None))
    adata = anndata.AnnData(X=dataset.X, obs=obs, var=var)
    path = Path(path)
    adata.write_h5ad(path)
    return path
