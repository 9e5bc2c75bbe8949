"""How big an input may be: the limits several loaders share, and the read budget.

The fixed limits here (``MAX_DENSE_VALUES``, ``MAX_TABLE_FILE_BYTES``,
``MIN_SAMPLES``) are read by the table, workbook and h5ad loaders alike;
every loader reads them as ``limits.NAME`` at call time, so changing one here
(or a test's ``monkeypatch.setattr(limits, ...)``) changes it everywhere. A
format's own limits sit beside its reader (``MAX_SPARSE_NONZEROS`` in
:mod:`~seqattn.data.h5ad`, ``MAX_XLSX_*`` in :mod:`~seqattn.data.xlsx`,
``MAX_LINE_BYTES`` / ``MAX_TABLE_COLUMNS`` in :mod:`~seqattn.data.text_checks`,
``MAX_H5_LINKS`` / ``MAX_SPOOL_BYTES`` in :mod:`~seqattn.data.h5ad_safety`).

Those bound what a file may *hold*; :func:`read_budget` bounds what one load
may *allocate* before it has looked at the values: a file can declare datasets
far larger than itself (compressed or never-written chunks are filled in when
read), so the declared, decompressed size is checked against it before a
single value is read.

On a shared server every session parses in the same process, so the budget is
a share of the memory available *now* (``MemAvailable``, or the container's
cgroup limit minus its usage when that is smaller), capped at
:data:`MAX_READ_BYTES`.
"""
from __future__ import annotations

from pathlib import Path

from seqattn.data.errors import DataError

#: Largest number of values (rows × columns) a *dense* table may hold in memory:
#: 250 M float32 values ≈ 1 GB. Bigger data should come as sparse h5ad or be
#: prefiltered (e.g. to highly variable genes) before upload.
MAX_DENSE_VALUES = 250_000_000
#: Largest CSV/TSV/parquet file we parse at all (text tables expand several-fold in memory).
#: For gzipped text the limit applies to the *decompressed* size too (no zip bombs).
MAX_TABLE_FILE_BYTES = 1 << 30  # 1 GiB
#: Fewest samples (rows / cells) a data set may have: a validation split and
#: a trained model with batch normalisation need a handful of rows.
MIN_SAMPLES = 10

#: Most bytes one load may read into memory, whatever the machine has free:
#: above every fixed limit's worst case (200 M float64 non-zeros + int64 indices = 3.2 GB).
MAX_READ_BYTES = 4 << 30
#: Share of the currently available memory one load may read: reading and the
#: float32 copy made afterwards together need up to twice the declared size.
READ_MEMORY_FRACTION = 1 / 3


def human_bytes(n: float) -> str:
    """``1.5 GiB`` / ``12.0 KiB`` / ``512 bytes``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def table_too_large(name: str, how_large: str) -> DataError:
    """The refusal of a table over :data:`MAX_TABLE_FILE_BYTES`, on disk or decompressed (``how_large``:
    "is 2.0 GiB", "decompresses to more than ..."), with what to do instead."""
    return DataError(f"{name!r} {how_large}; tables above {human_bytes(MAX_TABLE_FILE_BYTES)} are not loaded. Save "
                     "the data as sparse .h5ad, or prefilter the features (e.g. highly variable genes) first.")


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" when unlimited


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, else v1), or None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 writes ~2**63 for "no limit"
            return max(0, limit - usage)
    return None


def available_memory_bytes() -> int | None:
    """Memory this process could still allocate (smallest of the machine's and the container's), if known."""
    known = [v for v in (_meminfo_available(), _cgroup_headroom()) if v is not None]
    if not known:
        try:
            import psutil  # not a dependency: used where installed (macOS, Windows)

            known.append(int(psutil.virtual_memory().available))
        except Exception:  # noqa: BLE001 - no way to know: the fixed cap applies
            return None
    return min(known)


def read_budget() -> tuple[int, str]:
    """``(bytes, description)``: the most one load may read, and how it was derived (for messages)."""
    available = available_memory_bytes()
    if available is not None and int(available * READ_MEMORY_FRACTION) < MAX_READ_BYTES:
        return (int(available * READ_MEMORY_FRACTION),
                f"a third of the memory available now ({human_bytes(available)})")
    return MAX_READ_BYTES, f"the read limit of {human_bytes(MAX_READ_BYTES)}"
