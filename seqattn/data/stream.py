"""Rows on demand: in-memory or backed (on-disk) matrices, and SA's mini-batch stream.

A *row source* answers ``read(rows)`` with a float32 block (CSR or dense) of
those rows; :class:`MemoryRows` wraps an array or CSR matrix, :class:`BackedRows`
reads an ``.h5ad`` matrix from disk through anndata's backed machinery
(``anndata.io.sparse_dataset`` for CSR, an ``h5py`` dataset for dense X), so
memory is bounded by the chunk size, not by the number of cells.

:class:`BatchStream` turns a source into SA's mini-batches:

* **Order.** One epoch visits every training row once. With one chunk (the
  in-memory default) the order is a plain permutation of the training rows.
  With several chunks, the sorted training rows are cut into contiguous chunks
  of ``chunk_rows`` (contiguous on disk, so each is one sequential read); the
  chunk order is shuffled and the rows inside each chunk are shuffled. A batch
  may straddle two chunks. The order depends only on the seed, the rows and
  ``chunk_rows`` — never on where the rows live — so in-memory and backed data
  with the same ``chunk_rows`` give the same batches and the same picks.
* **Standardisation per batch**: ``(x - mean) / scale`` is applied to each
  densified batch; no standardised copy of the data is ever made.
* **Rank sharding** (torch.distributed): every rank computes the same global
  order; global batch ``b`` (``batch_size`` rows) is split into ``world_size``
  equal contiguous slices and rank ``r`` reads only its slice, so the ranks'
  averaged gradients equal the single-process gradient of the global batch.

Column statistics come from one streaming pass (:func:`stream_mean_var`).
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from seqattn.data.errors import DataError
from seqattn.data.scaling import safe_scale

#: Target size of one chunk read from disk (CSR bytes, or dense float32 bytes); also the widest span of
#: disk rows one read of scattered rows may cover.
CHUNK_BYTES = 32 << 20
#: Scattered rows at most this many bytes of disk rows apart are read in one span: skipping fewer bytes
#: costs more in per-read overhead than reading them.
GAP_BYTES = 1 << 20


class MemoryRows:
    """An in-memory dense array or CSR matrix behind the row-source interface."""

    is_backed = False

    def __init__(self, X: Any):
        self.X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)
        self.sparse = sp.issparse(self.X)
        self.shape = self.X.shape

    def read(self, rows: np.ndarray) -> Any:
        return self.X[rows]

    def bytes_per_row(self) -> float:
        if self.sparse:
            return 8.0 * self.X.nnz / max(1, self.shape[0]) + 8
        return 4.0 * self.shape[1]


class BackedRows:
    """Rows of an h5ad matrix read from disk on demand (anndata backed mode).

    ``rows`` maps this view's rows to rows on disk (e.g. empty cells dropped),
    ``columns`` keeps a subset of genes (e.g. highly variable ones), ``log1p``
    transforms each block as it is read. The file handle is reopened lazily, so
    a view can be pickled (Streamlit's cache, spawned processes).
    """

    is_backed = True

    def __init__(self, path: str | os.PathLike, key: str = "X", *, rows: np.ndarray | None = None,
                 columns: np.ndarray | None = None, log1p: bool = False):
        self.path, self.key = str(path), key
        self._file = self._matrix = None
        matrix = self._open()
        n_rows, n_cols = _matrix_shape(matrix)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.log1p = bool(log1p)
        self.shape = (len(self.rows) if self.rows is not None else n_rows,
                      len(self.columns) if self.columns is not None else n_cols)
        self.sparse = not _is_dense(matrix)
        self.min_value: float | None = None  # smallest value on disk, when the loader's scan found it

    ndim = 2

    # -------------------------------------------------------------- file access
    def _open(self):
        if self._matrix is None:
            import h5py
            from anndata.io import sparse_dataset

            try:
                self._file = h5py.File(self.path, "r")
                node = self._file[self.key]
                if _is_dense(node):
                    self._matrix = node
                else:
                    encoding = node.attrs.get("encoding-type", "")
                    if encoding == "csc_matrix":
                        raise DataError(f"{self.key} in {Path(self.path).name!r} is stored by column (CSC); "
                                        "backed mode reads rows, so save it as CSR (adata.X = adata.X.tocsr()).")
                    self._matrix = sparse_dataset(node)
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"Could not open {self.key} of {Path(self.path).name!r} in backed mode "
                                f"(damaged or truncated?): {exc}") from exc
        return self._matrix

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = state["_matrix"] = None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._matrix = None

    def view(self, *, rows: np.ndarray | None = None, columns: np.ndarray | None = None,
             log1p: bool | None = None) -> "BackedRows":
        """A new view: ``rows``/``columns`` index *this* view's rows/columns."""
        new_rows = self.rows if rows is None else (
            np.asarray(rows, dtype=np.int64) if self.rows is None else self.rows[np.asarray(rows)])
        new_cols = self.columns if columns is None else (
            np.asarray(columns, dtype=np.int64) if self.columns is None else self.columns[np.asarray(columns)])
        view = BackedRows(self.path, self.key, rows=new_rows, columns=new_cols,
                          log1p=self.log1p if log1p is None else log1p)
        view.min_value = self.min_value
        return view

    def __getitem__(self, key: Any) -> Any:
        """``X[:, columns]`` gives a backed view (a gene subset, as for HVG); ``X[a:b, columns]``
        reads rows ``a:b`` into memory (a preview). Other indexing: use :meth:`read`."""
        if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], slice):
            if key[0] == slice(None):
                return self.view(columns=np.arange(self.shape[1])[key[1]])
            return self.read(np.arange(self.shape[0])[key[0]])[:, key[1]]
        raise TypeError("Backed rows are read in chunks (BackedRows.read / to_memory); only X[rows_slice, "
                        "columns] is supported. Load without backed=True for random access.")

    # ----------------------------------------------------------------- reading
    def read_raw(self, start: int, stop: int) -> Any:
        """Rows ``start:stop`` *on disk*, untransformed, all columns (CSR or dense float32)."""
        matrix = self._open()
        if self.sparse:
            self._check_span(matrix, start, stop)
        try:
            block = matrix[start:stop]
        except Exception as exc:  # h5py OSError / anndata errors on truncated data
            raise DataError(f"Could not read rows {start}–{stop} of {self.key} in {Path(self.path).name!r} "
                            f"(damaged or truncated file?): {exc}") from exc
        if sp.issparse(block):
            return sp.csr_matrix(block, dtype=np.float32)
        return np.asarray(block, dtype=np.float32)

    def _check_span(self, matrix: Any, start: int, stop: int) -> None:
        """Refuse a chunk whose row pointers claim more stored values than one read may hold.

        Chunks are sized from the *average* row, so a file whose row pointers put
        most values in a few rows (or that declares never-written values) would
        otherwise make one chunk read far more than planned.
        """
        from seqattn.data.limits import human_bytes, read_budget

        group = matrix.group
        indptr = group["indptr"]
        n_values = int(indptr[min(stop, indptr.shape[0] - 1)]) - int(indptr[start])
        per_value = group["data"].dtype.itemsize + group["indices"].dtype.itemsize
        budget, why = read_budget()
        if n_values * per_value > budget:
            raise DataError(f"Rows {start}–{stop} of {self.key} in {Path(self.path).name!r} claim {n_values:,} stored "
                            f"values ({human_bytes(n_values * per_value)}), above {why} (damaged file?).")

    def read(self, rows: np.ndarray) -> Any:
        """The view's ``rows`` (any order, repeats allowed) as a float32 block, transforms applied.

        Rows close together on disk (one chunk's, as :class:`BatchStream` asks
        for: their span is at most twice their number) come from one read of
        that span; rows scattered over the file (read-out or check rows) come
        from several reads, none spanning more than :data:`CHUNK_BYTES` of disk
        rows. Memory is bounded by the rows asked for, not by the file.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        block = self._read_disk_rows(self.rows[rows] if self.rows is not None else rows)
        if self.columns is not None:
            block = block[:, self.columns]
        if self.log1p:
            if sp.issparse(block):
                block.data = np.log1p(block.data)
            else:
                block = np.log1p(block)
        return block

    def _read_disk_rows(self, disk: np.ndarray) -> Any:
        """Disk rows ``disk`` (any order, repeats allowed), all columns: one read if their span is at most
        one chunk or twice their number, else reads of at most CHUNK_BYTES of disk rows each."""
        lo, hi = int(disk.min()), int(disk.max()) + 1
        if hi - lo == len(disk) and np.all(disk[1:] > disk[:-1]):  # the whole span, in order
            return self.read_raw(lo, hi)
        row_bytes = self._disk_row_bytes()
        max_span, max_gap = max(1, int(CHUNK_BYTES // row_bytes)), max(1, int(GAP_BYTES // row_bytes))
        if hi - lo <= max(max_span, 2 * len(disk)):  # one read (a chunk's rows), then pick and order them
            return self.read_raw(lo, hi)[disk - lo]
        wanted, inverse = np.unique(disk, return_inverse=True)
        blocks = []
        for start, stop in _disk_runs(wanted, max_gap, max_span):
            first, last = int(wanted[start]), int(wanted[stop - 1]) + 1
            raw = self.read_raw(first, last)
            blocks.append(raw if last - first == stop - start else raw[wanted[start:stop] - first])
            del raw  # one span in memory at a time
        block = _vstack(blocks)
        return block if len(wanted) == len(disk) and np.all(inverse == np.arange(len(disk))) else block[inverse]

    def _disk_row_bytes(self) -> float:
        """Bytes of one row as stored on disk (all columns): what a raw read costs per row."""
        if self.sparse:
            return self.bytes_per_row()
        return 4.0 * _matrix_shape(self._open())[1]

    def bytes_per_row(self) -> float:
        matrix = self._open()
        if not self.sparse:
            return 4.0 * self.shape[1]
        n_disk = _matrix_shape(matrix)[0]
        return 8.0 * int(matrix.group["data"].shape[0]) / max(1, n_disk) + 8

    def to_memory(self, rows: np.ndarray | None = None, chunk_rows: int | None = None) -> Any:
        """The rows (all by default) in memory: CSR for sparse files, else a dense array."""
        rows = np.arange(self.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        blocks = [block for _, block in iter_chunks(self, rows, chunk_rows)]
        if not blocks:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        return sp.vstack(blocks, format="csr") if self.sparse else np.vstack(blocks)


RowSource = MemoryRows | BackedRows


def as_row_source(X: Any) -> RowSource:
    """``X`` itself when it is a row source, else an in-memory wrapper."""
    return X if isinstance(X, (MemoryRows, BackedRows)) else MemoryRows(X)


def _is_dense(node: Any) -> bool:
    import h5py

    return isinstance(node, h5py.Dataset)


def _matrix_shape(matrix: Any) -> tuple[int, int]:
    return tuple(int(s) for s in matrix.shape)  # type: ignore[return-value]


def default_chunk_rows(source: RowSource, minimum: int = 1) -> int:
    """Rows per chunk so that one chunk holds about :data:`CHUNK_BYTES`."""
    return int(max(minimum, min(source.shape[0], CHUNK_BYTES // max(1.0, source.bytes_per_row()))))


def iter_chunks(source: RowSource, rows: np.ndarray | None = None,
                chunk_rows: int | None = None) -> Iterator[tuple[np.ndarray, Any]]:
    """``(rows, block)`` for consecutive chunks of the (sorted) ``rows``: one sequential pass."""
    rows = np.arange(source.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
    chunk_rows = chunk_rows or default_chunk_rows(source)
    for start in range(0, len(rows), chunk_rows):
        part = rows[start:start + chunk_rows]
        if source.is_backed and start:
            return_freed_memory()  # the chunks the caller is done with
        yield part, source.read(part)


def return_freed_memory() -> None:
    """Hand the chunk buffers freed by a streaming pass back to the operating system (glibc only).

    After a few chunk-sized buffers are freed, glibc serves the next ones from its heap and keeps
    the freed space (its mmap threshold rises to the chunk size), more the more chunks were read:
    measured on a 5,000-gene file, a backed load kept 78 MB at 40,000 cells (6 chunk reads) and
    114-130 MB at 160,000 (22), which the fit then sat on. ``malloc_trim`` returns it (about
    0.3 ms a call); elsewhere a no-op.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc() -> Any:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def stream_mean_var(source: RowSource, rows: np.ndarray | None = None,
                    chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population variance (float64) in one streaming pass over ``rows``.

    Sums and sums of squares per chunk, as :func:`seqattn.data.column_mean_var`
    does for a whole matrix; sparse chunks are never densified.
    """
    n_cols = source.shape[1]
    total, total_sq, count = np.zeros(n_cols), np.zeros(n_cols), 0
    for part, block in iter_chunks(source, rows, chunk_rows):
        count += len(part)
        if sp.issparse(block):
            total += np.asarray(block.sum(axis=0, dtype=np.float64)).ravel()
            block.data = block.data.astype(np.float64) ** 2
            total_sq += np.asarray(block.sum(axis=0)).ravel()
        else:
            for start in range(0, block.shape[0], 256):  # float64 copies of 256 rows at a time
                block64 = block[start:start + 256].astype(np.float64)
                total += block64.sum(axis=0)
                total_sq += np.square(block64, out=block64).sum(axis=0)
    if count == 0:
        return np.zeros(n_cols), np.zeros(n_cols)
    mean = total / count
    return mean, np.maximum(total_sq / count - mean ** 2, 0.0)


def standardisation(source: RowSource, rows: np.ndarray | None = None,
                    chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Float32 column means and scales of ``rows``; constant columns get scale 1."""
    mean, var = stream_mean_var(source, rows, chunk_rows)
    scale = safe_scale(np.sqrt(var))
    return mean.astype(np.float32), scale.astype(np.float32)


def epoch_order(rows: np.ndarray, chunk_rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's visiting order of ``rows`` and the chunk each position belongs to.

    One chunk: ``rows[rng.permutation(n)]`` (the rows as given). Several: the
    sorted rows cut into contiguous chunks, chunks in shuffled order, rows
    shuffled inside each chunk.
    """
    n = len(rows)
    if chunk_rows >= n:
        return rows[rng.permutation(n)], np.zeros(n, dtype=np.int64)
    ordered = np.sort(rows)
    n_chunks = math.ceil(n / chunk_rows)
    parts, labels = [], []
    for c in rng.permutation(n_chunks):
        chunk = ordered[c * chunk_rows:(c + 1) * chunk_rows]
        parts.append(chunk[rng.permutation(len(chunk))])
        labels.append(np.full(len(chunk), c, dtype=np.int64))
    return np.concatenate(parts), np.concatenate(labels)


class BatchStream:
    """SA's mini-batches for one rank, standardised per batch on ``device``.

    ``batch_size`` is the *global* batch; each of ``world_size`` ranks gets
    ``batch_size // world_size`` rows of it (``batch_size`` must divide evenly).
    Each epoch drops the last incomplete global batch, as before.
    """

    def __init__(self, source: RowSource, rows: np.ndarray, y: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 *, batch_size: int, device: torch.device, target_dtype: torch.dtype, chunk_rows: int | None = None,
                 rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the number of processes "
                             f"({world_size}) so every rank gets an equal share of each batch.")
        self.source, self.rows, self.device = source, np.asarray(rows, dtype=np.int64), device
        self.batch_size, self.rank, self.world_size = int(batch_size), int(rank), int(world_size)
        self.local_batch = self.batch_size // self.world_size
        self.chunk_rows = int(chunk_rows or (len(self.rows) if not source.is_backed
                                             else default_chunk_rows(source, self.batch_size)))
        # target by source row (y is indexed by the source's rows)
        self.y = torch.as_tensor(np.asarray(y), dtype=target_dtype)
        self.mean = torch.as_tensor(mean, device=device)
        self.scale = torch.as_tensor(scale, device=device)
        self.target_dtype = target_dtype
        self._device_X = None
        if isinstance(source, MemoryRows) and not source.sparse and device.type != "cpu":
            self._device_X = torch.as_tensor(source.X, device=device)  # raw data, indexed on the device

    @property
    def batches_per_epoch(self) -> int:
        return max(1, len(self.rows) // self.batch_size)

    def _to_batch(self, block: Any, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        dense = block.toarray() if sp.issparse(block) else np.asarray(block)
        xb = (torch.as_tensor(dense, device=self.device) - self.mean) / self.scale
        return xb, self.y[torch.as_tensor(rows)].to(self.device)

    def epoch(self, rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches for one epoch (``batches_per_epoch`` of them)."""
        order, chunk_of = epoch_order(self.rows, self.chunk_rows, rng)
        n_used = self.batches_per_epoch * self.batch_size
        if n_used > len(order):  # fewer rows than one batch: the batch size was already capped
            n_used = len(order) - len(order) % self.world_size
        mine = self._my_positions(n_used)
        local = min(self.local_batch, n_used // self.world_size)
        order, chunk_of = order[mine], chunk_of[mine]  # this rank's rows in visiting order
        if self._device_X is not None or not self.source.is_backed:
            for start in range(0, len(order), local):
                rows = order[start:start + local]
                if self._device_X is not None:
                    index = torch.as_tensor(rows, device=self.device)
                    xb = (self._device_X[index] - self.mean) / self.scale
                    yield xb, self.y[torch.as_tensor(rows)].to(self.device)
                else:
                    yield self._to_batch(self.source.read(rows), rows)
            return
        yield from self._backed_batches(order, chunk_of, local)

    def _my_positions(self, n_used: int) -> slice | np.ndarray:
        """Positions of this rank's rows in the epoch's order: all of them (a slice, no per-row
        array) for one process, else this rank's slice of every global batch."""
        if self.world_size == 1:
            return slice(0, n_used)
        positions = np.arange(n_used)
        offset = positions % self.batch_size
        lo, hi = self.rank * self.local_batch, (self.rank + 1) * self.local_batch
        return positions[(offset >= lo) & (offset < hi)]

    def _backed_batches(self, rows: np.ndarray, chunk_of: np.ndarray,
                        local: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``local`` rows from ``rows`` in order, with one disk read per chunk.

        A batch is cut from the blocks read so far by position (a batch may straddle
        two chunks); a block is dropped once all its rows are batched, and its
        remaining rows are never copied, so at most two chunks are held at once.
        """
        pending: list[tuple[Any, np.ndarray]] = []  # (block, its rows) not yet fully batched, in order
        used = n_pending = 0  # rows of pending[0] already batched; rows pending in all
        bounds = [0, *(np.flatnonzero(np.diff(chunk_of)) + 1).tolist(), len(rows)]
        for start, stop in zip(bounds[:-1], bounds[1:]):
            if stop == start:
                continue
            pending.append((self.source.read(rows[start:stop]), rows[start:stop]))
            n_pending += stop - start
            while n_pending >= local:
                blocks, batch_rows, needed = [], [], local
                while needed:
                    block, block_rows = pending[0]
                    take = min(needed, len(block_rows) - used)
                    blocks.append(block[used:used + take])
                    batch_rows.append(block_rows[used:used + take])
                    used, needed = used + take, needed - take
                    if used == len(block_rows):
                        pending.pop(0)
                        used = 0
                        del block
                        return_freed_memory()  # see return_freed_memory: without it RSS creeps up
                n_pending -= local
                yield self._to_batch(_vstack(blocks), np.concatenate(batch_rows))


def _disk_runs(sorted_rows: np.ndarray, max_gap: int, max_span: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` positions of ``sorted_rows`` read together: no gap wider than ``max_gap`` rows
    inside a run, no run spanning more than ``max_span`` disk rows."""
    breaks = np.flatnonzero(np.diff(sorted_rows) > max_gap) + 1
    for start, stop in zip([0, *breaks.tolist()], [*breaks.tolist(), len(sorted_rows)]):
        while start < stop:
            end = start + int(np.searchsorted(sorted_rows[start:stop], sorted_rows[start] + max_span))
            yield start, end
            start = end


def _vstack(blocks: Sequence[Any]) -> Any:
    if len(blocks) == 1:
        return blocks[0]
    if sp.issparse(blocks[0]):
        return sp.vstack(blocks, format="csr")
    return np.vstack(blocks)


class ReadoutRows:
    """The rows SA's read-out refits on, held in memory once: column slices on demand.

    For in-memory data no rows are copied (columns are sliced from ``X`` at
    each pick); for backed data the rows are read once (one streaming pass),
    so the read-out costs no disk pass per pick.
    """

    def __init__(self, source: RowSource, rows: np.ndarray):
        self.rows = np.asarray(rows, dtype=np.int64)
        if source.is_backed:
            order = np.argsort(self.rows, kind="stable")
            block = source.to_memory(self.rows[order])
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            self.X, self.index = block, inverse  # row i of the read-out is block[inverse[i]]
        else:
            self.X, self.index = source.X, self.rows

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.X.shape[1])

    def columns(self, features: Sequence[int]) -> np.ndarray:
        cols = self.X[:, list(features)]
        cols = cols[self.index]
        return cols.toarray() if sp.issparse(cols) else np.asarray(cols)
