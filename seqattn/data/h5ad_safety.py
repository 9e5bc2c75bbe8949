"""Check an HDF5 (.h5ad) file before reading it: nothing outside the file, nothing bigger than memory.

HDF5 can make a dataset's values come from elsewhere: *external raw storage*
(bytes of any file on the machine, e.g. ``/etc/passwd`` shown as class names),
*virtual datasets* (values mapped from other HDF5 files, or from themselves,
which crashes the HDF5 library) and *external links* (an object in another
file). A soft link can point anywhere inside the file. anndata writes none of
these, so :func:`refuse_unsafe_storage` walks every link and object once, with
h5py's low-level API and without reading a value, and refuses the file if any
is present, naming the object.

A dataset can also declare far more values than the file holds (gzip-compressed
or never-written chunks are filled in when read): :func:`check_read_size` adds
up the declared, decompressed sizes of exactly the datasets a load will read and
compares them with :func:`seqattn.data.limits.read_budget` before reading.

Uploads arrive as bytes; HDF5 reads through a Python file object go through
h5py's callback driver, so :func:`local_path` writes them once to a private
temporary file (0600, in a fresh 0700 folder, removed afterwards) and
everything opens that path.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from seqattn.data.errors import DataError
from seqattn.data.limits import human_bytes, read_budget
from seqattn.data.sources import Content

#: Most links (groups, datasets, links) a file may hold: the walk opens each
#: dataset (~0.1 ms each on a loaded 2-core VM, so ≈2 s at the limit); an h5ad with
#: 2,000 obs columns and a full ``uns`` has a few thousand.
MAX_H5_LINKS = 20_000
#: Largest in-memory upload that is copied to a temporary file for reading.
MAX_SPOOL_BYTES = 2 << 30
#: Memory a variable-length element (a string) takes once read, beyond its characters: a Python object.
VLEN_ELEMENT_BYTES = 64

_RESAVE = ("anndata never writes these: write the file again with anndata (adata.write_h5ad) from data "
           "held in memory, or upload a CSV/parquet.")


@contextmanager
def local_path(content: Content) -> Iterator[Path]:
    """The file's path: its own, or a private temporary copy of in-memory bytes (deleted on exit)."""
    if content.path is not None:
        yield Path(content.path)
        return
    data = content.data or b""
    if len(data) > MAX_SPOOL_BYTES:
        raise DataError(f"{content.name!r} is {human_bytes(len(data))}; h5ad files above "
                        f"{human_bytes(MAX_SPOOL_BYTES)} are read from a path, not from memory.")
    try:
        folder = tempfile.mkdtemp(prefix="seqattn-h5ad-")  # mode 0700: no other user can look in
    except OSError as exc:
        raise DataError(f"Could not make a temporary copy of {content.name!r} to read it ({exc}); ask the "
                        "administrator to check the temporary folder.") from exc
    path = Path(folder) / "upload.h5ad"
    try:
        if shutil.disk_usage(folder).free < 2 * len(data):
            raise DataError(f"Not enough free disk space in {tempfile.gettempdir()!r} to read {content.name!r} "
                            f"({human_bytes(len(data))}); ask the administrator to free some.")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise DataError(f"Could not make a temporary copy of {content.name!r} to read it ({exc}).") from exc
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.rmdir(folder)


def refuse_unsafe_storage(f: Any, name: str) -> None:
    """Walk every link of the open file ``f`` once; refuse links and datasets that read outside it.

    Raises :class:`DataError` naming the first external link, soft link,
    user-defined link, externally stored or virtual dataset, or when the file
    holds more than :data:`MAX_H5_LINKS` links.
    """
    import h5py

    links: list[tuple[bytes, int]] = []

    def collect(link_name: bytes, info: Any) -> int | None:
        links.append((link_name, info.type))
        return 1 if len(links) > MAX_H5_LINKS else None  # a non-None value stops the visit

    f.id.links.visit(collect, info=True)
    if len(links) > MAX_H5_LINKS:
        raise DataError(f"{name!r} holds more than {MAX_H5_LINKS:,} HDF5 objects; an AnnData file has a few "
                        "thousand at most. Save only what the selection needs (X, obs, var) and upload that.")
    for link_name, link_type in links:
        where = link_name.decode("utf-8", "replace")
        if link_type == h5py.h5l.TYPE_EXTERNAL:
            target_file, target = f.get(where, getlink=True).filename, f.get(where, getlink=True).path
            raise DataError(f"{name!r}: {where!r} is an external link to {target!r} in the file {target_file!r}; "
                            f"files that point to other files are refused. {_RESAVE}")
        if link_type == h5py.h5l.TYPE_SOFT:
            raise DataError(f"{name!r}: {where!r} is a soft link (to {f.get(where, getlink=True).path!r}); "
                            f"links are refused. {_RESAVE}")
        if link_type != h5py.h5l.TYPE_HARD:
            raise DataError(f"{name!r}: {where!r} is a user-defined HDF5 link; links are refused. {_RESAVE}")
        objects = h5py.h5o.open(f.id, link_name)
        if isinstance(objects, h5py.h5d.DatasetID):
            _refuse_foreign_values(objects, where, name)


def _refuse_foreign_values(dataset: Any, where: str, name: str) -> None:
    """Refuse a virtual dataset or one with external raw storage (checked on its creation properties)."""
    import h5py

    plist = dataset.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        source = ""
        if plist.get_virtual_count():
            source_file = plist.get_virtual_filename(0)
            source = (f" (its values would come from {plist.get_virtual_dsetname(0)!r} in "
                      + ("this same file" if source_file == "." else f"the file {source_file!r}") + ")")
        raise DataError(f"{name!r}: dataset {where!r} is an HDF5 virtual dataset{source}; virtual datasets "
                        f"are refused. {_RESAVE}")
    if plist.get_external_count():
        external = plist.get_external(0)[0]
        external = external.decode("utf-8", "replace") if isinstance(external, bytes) else str(external)
        raise DataError(f"{name!r}: dataset {where!r} is stored outside the file (external raw storage in "
                        f"{external!r}); external storage is refused. {_RESAVE}")


def declared_bytes(dataset: Any) -> int:
    """Memory the dataset's values take once read and decompressed: shape × item size.

    Variable-length items (strings) count :data:`VLEN_ELEMENT_BYTES` more each (one Python object).
    """
    shape = dataset.shape
    if shape is None:  # HDF5 null dataspace: no values
        return 0
    n_values = int(np.prod(shape, dtype=object))
    dtype = dataset.dtype
    return n_values * (dtype.itemsize + (VLEN_ELEMENT_BYTES if dtype.hasobject else 0))


def element_datasets(f: Any, key: str) -> list[tuple[str, Any]]:
    """``(path, dataset)`` for the dataset at ``key`` or every dataset under the group at ``key``."""
    import h5py

    node = f[key]
    if isinstance(node, h5py.Dataset):
        return [(key, node)]
    found: list[tuple[str, Any]] = []
    node.visititems(lambda sub, obj: found.append((f"{key}/{sub}", obj)) if isinstance(obj, h5py.Dataset) else None)
    return found


def check_read_size(f: Any, keys: Sequence[str], name: str, skip: Sequence[str] = ()) -> int:
    """Refuse before reading when the datasets under ``keys`` (but not under ``skip``) declare more than
    the read budget, alone or together; returns their total declared bytes."""
    budget, why = read_budget()
    sizes = [(path, declared_bytes(ds)) for key in keys for path, ds in element_datasets(f, key)
             if not any(path == s or path.startswith(s + "/") for s in skip)]
    for path, size in sizes:
        if size > budget:
            raise DataError(f"{name!r}: dataset {path!r} declares {human_bytes(size)} once decompressed "
                            f"(shape {tuple(f[path].shape)}, {f[path].dtype}), above {why}. The file is far "
                            "smaller, so it is compressed or never filled in; refused before reading. Subsample "
                            "cells, prefilter genes, or check how the file was made.")
    total = sum(size for _, size in sizes)
    if total > budget:
        largest = ", ".join(f"{p!r} ({human_bytes(s)})" for p, s in sorted(sizes, key=lambda x: -x[1])[:3])
        raise DataError(f"{name!r}: the data to read declares {human_bytes(total)} once decompressed "
                        f"(largest: {largest}), above {why}. Subsample cells or prefilter genes first.")
    return total
