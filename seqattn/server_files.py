"""Open data files that already sit on the server (too large for a browser upload).

Off by default. An administrator enables it by naming one allowed folder in
the environment variable ``SEQATTN_SERVER_DATA_DIR`` (or the Streamlit secret
``server_data_dir``); only files inside that folder can be opened. Paths with
``..``, absolute paths elsewhere and symbolic links that lead outside the
folder are refused with a :class:`~seqattn.data.DataError`. Large ``.h5ad``
files open backed (the matrix stays on disk).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from seqattn.data import DataError, Dataset

SERVER_DATA_ENV = "SEQATTN_SERVER_DATA_DIR"
SERVER_DATA_SECRET = "server_data_dir"
#: h5ad files at least this large open backed (rows streamed from disk).
BACKED_FROM_BYTES = 256 << 20
DATA_SUFFIXES = (".h5ad", ".csv", ".tsv", ".txt", ".tab", ".csv.gz", ".tsv.gz", ".parquet", ".pq")
MAX_LISTED = 500


def allowed_folder(secrets: Mapping[str, Any] | None = None) -> Path | None:
    """The configured folder (resolved), or ``None`` when the feature is off."""
    configured = os.environ.get(SERVER_DATA_ENV) or (secrets or {}).get(SERVER_DATA_SECRET)
    if not configured:
        return None
    folder = Path(str(configured)).expanduser()
    if not folder.is_dir():
        raise DataError(f"The server data folder {str(folder)!r} ({SERVER_DATA_ENV}) does not exist.")
    return folder.resolve()


def resolve_server_path(path: str | os.PathLike, folder: Path) -> Path:
    """``path`` (relative to ``folder``, or absolute inside it) as a resolved file path inside ``folder``.

    Refuses ``..`` anywhere, paths outside the folder, symlinks leading out of
    it, folders and missing files.
    """
    text = str(path).strip()
    if not text:
        raise DataError("Give the path of a file inside the server data folder.")
    if ".." in PurePath(text).parts:
        raise DataError(f"{text!r}: '..' is not allowed; give a path inside the server data folder.")
    root = Path(folder).resolve()
    candidate = Path(text) if Path(text).is_absolute() else root / text
    try:
        resolved = candidate.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError) as exc:  # missing, or a symlink loop
        raise DataError(f"{text!r} was not found in the server data folder.") from exc
    if not resolved.is_relative_to(root):
        raise DataError(f"{text!r} is outside the server data folder (links leading out are refused).")
    if not resolved.is_file():
        raise DataError(f"{text!r} is not a file.")
    return resolved


def list_server_files(folder: Path, limit: int = MAX_LISTED) -> list[str]:
    """Data files under ``folder`` (relative paths, sorted); links leading outside are left out."""
    root = Path(folder).resolve()
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.lower().endswith(DATA_SUFFIXES):
                continue
            full = Path(dirpath) / name
            try:
                resolve_server_path(full.relative_to(root), root)
            except DataError:
                continue
            found.append(str(full.relative_to(root)))
            if len(found) >= limit:
                return found
    return found


def opens_backed(path: Path) -> bool:
    """Large h5ad files open backed."""
    return path.suffix.lower() == ".h5ad" and path.stat().st_size >= BACKED_FROM_BYTES


def load_server_file(path: str | os.PathLike, folder: Path, target: str | None, *, task: str = "auto",
                     layer: str | None = None) -> Dataset:
    """Load a file from the allowed folder (checked), backed when it is a large h5ad."""
    from seqattn.data.tables import load_table

    resolved = resolve_server_path(path, folder)
    return load_table(resolved, target, task=task, layer=layer, backed=opens_backed(resolved))
