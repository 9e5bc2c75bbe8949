"""Where an input comes from and what format it is in, before any reader runs.

An input is a path, bytes, or a file-like upload (Streamlit's
``UploadedFile``). :func:`open_source` turns each into one :class:`Content` (name,
path or bytes, size, first 8 KiB) and refuses what is not a regular file;
:func:`detect_format` names the format from the file name and, failing that,
from the first bytes (the signatures below), so every reader gets the same
kind of object and the same early refusals.
"""
from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Union

from seqattn.data.errors import DataError

Source = Union[str, os.PathLike, IO[bytes], bytes]

_EXTENSIONS = {
    ".csv": "csv", ".csv.gz": "csv", ".txt": "csv",
    ".tsv": "tsv", ".tsv.gz": "tsv", ".tab": "tsv",
    ".parquet": "parquet", ".pq": "parquet",
    ".h5ad": "h5ad",
    ".xlsx": "xlsx", ".xlsm": "xlsx",
}
ACCEPTED = "a CSV, TSV, Excel (.xlsx), parquet or h5ad file"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
ZIP_MAGIC = b"PK\x03\x04"
#: OLE compound file: old .xls, and every password-protected (encrypted) .xlsx.
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass
class Content:
    """The bytes (or path) of one input plus what we know about its name and size."""

    name: str
    path: Path | None
    data: bytes | None
    size: int
    head: bytes = field(repr=False, default=b"")

    def handle(self) -> IO[bytes]:
        """A fresh binary handle from the start (the file, or the bytes held); the caller closes it."""
        return open(self.path, "rb") if self.path is not None else io.BytesIO(self.data or b"")


def open_source(source: Source, file_name: str | None) -> Content:
    """The input as :class:`Content`: a path is checked (exists, a regular file) and read lazily; bytes and
    file-like uploads are read once. ``file_name`` names an upload whose object has no useful ``.name``."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"File not found: {str(path)!r}.")
        if path.is_dir():
            raise DataError(f"{str(path)!r} is a folder; give the path of a data file.")
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO or device would block or never end
            raise DataError(f"{str(path)!r} is not a regular file (a pipe, socket or device); give the path of a "
                            "data file.")
        size = status.st_size
        with open(path, "rb") as fh:
            head = fh.read(8192)
        return Content(file_name or path.name, path, None, size, head)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
    else:
        raise DataError(f"Cannot read data from a {type(source).__name__}; give a path or an open file.")
    name = file_name or str(getattr(source, "name", "") or "upload")
    return Content(os.path.basename(name), None, data, len(data), data[:8192])


def open_nonempty(source: Source, file_name: str | None) -> tuple[Content, str]:
    """The input and its format; an empty input is refused before anything parses it."""
    content = open_source(source, file_name)
    if content.size == 0:
        raise DataError(f"{content.name!r} is empty (0 bytes).")
    return content, detect_format(content.name, content.head)


def detect_format(name: str, head: bytes = b"") -> str:
    """``csv`` | ``tsv`` | ``xlsx`` | ``parquet`` | ``h5ad`` from the file name, else from the first bytes."""
    lower = name.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return _EXTENSIONS[ext]
    if head.startswith(HDF5_MAGIC):
        return "h5ad"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    suffix = Path(name).suffix
    if suffix.lower() == ".xls":
        raise DataError(f"{name!r} is in the old Excel format (.xls); save it as .xlsx or CSV and upload that.")
    if head.startswith(CFB_MAGIC):  # an encrypted workbook or an old .xls under another name
        return "xlsx"
    if suffix:
        raise DataError(f"Unsupported file type {suffix!r} ({name}). Upload {ACCEPTED}.")
    if head and (head.startswith(UTF16_BOMS) or not looks_binary(head)):
        return "csv"
    raise DataError(f"Cannot tell the format of {name!r}: give it a .csv, .tsv, .xlsx, .parquet or .h5ad name.")


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes are binary rather than text (NUL bytes, or many control characters)."""
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sniffed block is fine
        if exc.start < len(head) - 4:
            try:
                head.decode("latin-1")
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
                return True
            control = sum(b < 9 or 13 < b < 32 for b in head)
            return control > len(head) // 100
    return False


def file_stem(file_name: str) -> str:
    """The data set's default name: the file name without its (possibly double, ``.csv.gz``) extension."""
    base = os.path.basename(file_name)
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if base.lower().endswith(ext):
            return base[: -len(ext)] or "data"
    return Path(base).stem or "data"
