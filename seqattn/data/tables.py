"""Read user tables (CSV, TSV, Excel .xlsx, parquet; h5ad via :mod:`seqattn.data.h5ad`) into a
:class:`~seqattn.data.Dataset`.

Every problem a person can fix is reported as :class:`~seqattn.data.DataError`
with a message that names the offending columns / keys and says what to do;
the app shows it, the CLI prints it and exits 2. Nothing here unpickles:
h5ad goes through h5py/anndata element reads after a safety walk
(:mod:`seqattn.data.h5ad_safety`), parquet through pyarrow, text through
pandas, .xlsx through a bounded streaming reader on openpyxl's cell parser
(:mod:`seqattn.data.xlsx`; XML, no macros run).

Text tables are read as people save them: the separator (``,`` ``;`` tab
``|``) is sniffed, a decimal comma is detected when the separator is not a
comma, and UTF-8 (with or without BOM), UTF-16 (with BOM) and latin-1 text
are decoded; one pass before pandas (:mod:`seqattn.data.text_checks`) bounds
line length and header width and refuses files that mix UTF-8 and latin-1. A
file that still cannot be parsed gets a one-line message of our own naming
the line, never the parser's internal wording.

Uploads arrive as file-like objects (Streamlit's ``UploadedFile``), so the
format is taken from ``file_name`` / the object's ``.name`` and, failing that,
from the first bytes of the content.
"""
from __future__ import annotations

import csv
import io
import os
import re
import stat
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from seqattn.data.dataset import DataError, Dataset, encode_target, infer_task
from seqattn.data.limits import human_bytes
from seqattn.data import text_checks
from seqattn.data.text_checks import check_header_width, no_line_break_error, scan_text
from seqattn.data.xlsx import CFB_MAGIC, read_xlsx

Source = Union[str, os.PathLike, IO[bytes], bytes]

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

_EXTENSIONS = {
    ".csv": "csv", ".csv.gz": "csv", ".txt": "csv",
    ".tsv": "tsv", ".tsv.gz": "tsv", ".tab": "tsv",
    ".parquet": "parquet", ".pq": "parquet",
    ".h5ad": "h5ad",
    ".xlsx": "xlsx", ".xlsm": "xlsx",
}
ACCEPTED = "a CSV, TSV, Excel (.xlsx), parquet or h5ad file"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _listing(names: list[str], limit: int = 20) -> str:
    """``a, b, c, ... and 12 more`` so messages stay readable for 20k genes."""
    names = [str(n) if len(str(n)) <= 60 else str(n)[:57] + "..." for n in names]
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... and {len(names) - limit} more" if len(names) > limit else "")


_human_bytes = human_bytes


# ----------------------------------------------------------------- file access
@dataclass
class _Content:
    """The bytes (or path) of one input plus what we know about its name and size."""

    name: str
    path: Path | None
    data: bytes | None
    size: int
    head: bytes = field(repr=False, default=b"")

    def handle(self) -> IO[bytes]:
        return open(self.path, "rb") if self.path is not None else io.BytesIO(self.data or b"")


def _open(source: Source, file_name: str | None) -> _Content:
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
        return _Content(file_name or path.name, path, None, size, head)
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
    return _Content(os.path.basename(name), None, data, len(data), data[:8192])


def _open_nonempty(source: Source, file_name: str | None) -> tuple[_Content, str]:
    """The input and its format; an empty input is refused before anything parses it."""
    content = _open(source, file_name)
    if content.size == 0:
        raise DataError(f"{content.name!r} is empty (0 bytes).")
    return content, detect_format(content.name, content.head)


def detect_format(name: str, head: bytes = b"") -> str:
    """``csv`` | ``tsv`` | ``xlsx`` | ``parquet`` | ``h5ad`` from the file name, else from the first bytes."""
    lower = name.lower()
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return _EXTENSIONS[ext]
    if head.startswith(_HDF5_MAGIC):
        return "h5ad"
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    suffix = Path(name).suffix
    if suffix.lower() == ".xls":
        raise DataError(f"{name!r} is in the old Excel format (.xls); save it as .xlsx or CSV and upload that.")
    if head.startswith(CFB_MAGIC):  # an encrypted workbook or an old .xls under another name
        return "xlsx"
    if suffix:
        raise DataError(f"Unsupported file type {suffix!r} ({name}). Upload {ACCEPTED}.")
    if head and (head.startswith(_UTF16_BOMS) or not _looks_binary(head)):
        return "csv"
    raise DataError(f"Cannot tell the format of {name!r}: give it a .csv, .tsv, .xlsx, .parquet or .h5ad name.")


def _looks_binary(head: bytes) -> bool:
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


# ------------------------------------------------------------------- public API
def load_table(
    path_or_buffer: Source,
    target: str | None = None,
    *,
    file_name: str | None = None,
    task: str = "auto",
    layer: str | None = None,
    name: str | None = None,
    drop_constant: bool | None = None,
    drop_empty_cells: bool = True,
    impute: str | None = None,
    drop_columns: Sequence[str] = (),
    groups: Mapping[str, Sequence[str | int]] | None = None,
    check: bool = True,
    backed: bool = False,
) -> Dataset:
    """Load a CSV / TSV / Excel / parquet / h5ad file (path, bytes or file-like) as a ``Dataset``.

    ``target`` is the column (tables) or ``obs`` column (h5ad) to predict; all
    other columns / all genes are features. ``task`` is ``"auto"``,
    ``"classification"`` or ``"regression"``. ``layer`` (h5ad only) picks a
    layer instead of ``X``; ``layer="raw"`` picks ``adata.raw`` when there is no
    layer of that name.

    Constant columns raise for tables (they usually mean a wrong file) but are
    dropped with a note for h5ad, where genes never expressed in the chosen
    cells are normal; ``drop_constant`` overrides either default. For h5ad,
    cells with all-zero counts are dropped with a note (``drop_empty_cells``).
    Notes land in ``dataset.extra["notes"]``.

    Tables only: text feature columns are one-hot encoded, one group per
    column; ``impute`` (``"median"`` | ``"most_frequent"``) fills missing
    feature values and adds a missing-value indicator to the column's group
    (without it, missing values are an error that names this option);
    ``drop_columns`` leaves columns out; ``groups`` (``{name: [columns]}``)
    makes user-defined groups (e.g. gene sets; h5ad too). With ``check``,
    ``dataset.extra["warnings"]`` lists likely leaks and ID-like targets
    (:mod:`seqattn.data.guards`).
    ``backed=True`` (h5ad paths only) leaves the matrix on disk: ``dataset.X``
    is a :class:`~seqattn.data.stream.BackedRows` that SA reads in row chunks,
    so memory does not grow with the number of cells and the in-memory size
    limits do not apply (see :mod:`seqattn.data.h5ad_backed`).
    """
    content, fmt = _open_nonempty(path_or_buffer, file_name)
    label = name or _stem(content.name)
    if backed and fmt != "h5ad":
        raise DataError(f"backed=True needs an .h5ad file; {content.name!r} is {fmt}.")
    if fmt == "h5ad":
        from seqattn.data.h5ad import _load_h5ad  # h5ad builds on this module's helpers
        from seqattn.data.h5ad_backed import load_h5ad_backed

        if impute is not None or drop_columns:
            raise DataError("impute and drop_columns apply to tables; for h5ad use the genes' own filtering.")
        loader = load_h5ad_backed if backed else _load_h5ad
        dataset = loader(content, target, task=task, layer=layer, name=label,
                         drop_constant=True if drop_constant is None else drop_constant,
                         drop_empty_cells=drop_empty_cells)
        return _with_groups_and_checks(dataset, groups, check=False)
    if layer is not None:
        raise DataError(f"layer={layer!r} only applies to h5ad files; {content.name!r} is {fmt}.")
    if content.size > MAX_TABLE_FILE_BYTES:
        raise DataError(
            f"{content.name!r} is {_human_bytes(content.size)}; tables above "
            f"{_human_bytes(MAX_TABLE_FILE_BYTES)} are not loaded. Save the data as sparse .h5ad, or "
            "prefilter the features (e.g. highly variable genes) first."
        )
    if fmt not in ("parquet", "xlsx") and content.head.startswith(_GZIP_MAGIC):
        _check_gunzipped_size(content)
    notes: list[str] = []
    if fmt == "parquet":
        frame, header = _read_parquet(content)
    elif fmt == "xlsx":
        frame, header = read_xlsx(content, notes)
    else:
        frame, header = _read_text(_as_utf8(content), fmt, notes)
    dataset = dataset_from_frame(frame, target, task=task, name=label, header=header,
                                 drop_constant=bool(drop_constant), source_format=fmt, impute=impute,
                                 drop_columns=drop_columns)
    dataset.extra["notes"] = notes + dataset.extra.get("notes", [])
    return _with_groups_and_checks(dataset, groups, check=check)


def _with_groups_and_checks(dataset: Dataset, groups: Mapping[str, Sequence[str | int]] | None,
                            check: bool) -> Dataset:
    if groups:
        dataset = dataset.with_groups(groups)
    if check:
        from seqattn.data.guards import data_warnings

        dataset.extra["warnings"] = data_warnings(dataset)
    return dataset


def list_columns(path_or_buffer: Source, *, file_name: str | None = None) -> dict[str, Any]:
    """What a target picker needs, without loading the matrix.

    Returns ``{"format", "columns", "layers", "shape"}``: table columns, or the
    ``obs`` columns of an h5ad (``layers`` lists its layers, plus ``"raw"`` if
    it stores ``.raw``); ``shape`` is (rows, columns) where cheap to know.
    """
    content, fmt = _open_nonempty(path_or_buffer, file_name)
    if fmt == "h5ad":
        from seqattn.data.h5ad import _h5ad_header

        info = _h5ad_header(content)
        return {"format": fmt, "columns": info["obs"], "layers": info["layers"], "shape": info["shape"]}
    if fmt == "parquet":
        pq = _pyarrow_file(content)
        return {"format": fmt, "columns": list(pq.schema_arrow.names), "layers": [],
                "shape": (pq.metadata.num_rows, len(pq.schema_arrow.names))}
    if fmt == "xlsx":
        frame, header = read_xlsx(content, [], nrows=0)
        return {"format": fmt, "columns": header, "layers": [], "shape": None}
    text = _as_utf8(content)
    _refuse_binary_text(text, fmt)  # as load_table does: no target picker offering columns read from junk
    header, _ = _text_header(text, "\t" if fmt == "tsv" else None)
    return {"format": fmt, "columns": header, "layers": [], "shape": None}


#: Column names that usually hold the target, tried in this order.
TARGET_HINTS = ("target", "label", "labels", "class", "y", "cell_type", "celltype", "bulk_labels", "louvain")


def guess_target(columns: list[str]) -> int:
    """Index of the likeliest target column: the first known name (case-insensitive), else the last column."""
    if not columns:
        raise DataError("The file has no columns to use as a target.")
    lowered = [str(c).lower() for c in columns]
    return next((lowered.index(h) for h in TARGET_HINTS if h in lowered), len(columns) - 1)


def _stem(file_name: str) -> str:
    base = os.path.basename(file_name)
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if base.lower().endswith(ext):
            return base[: -len(ext)] or "data"
    return Path(base).stem or "data"


# --------------------------------------------------------------- text / parquet
def _text_stream(content: _Content) -> IO[bytes]:
    fh = content.handle()
    if content.head.startswith(_GZIP_MAGIC):
        import gzip

        return gzip.GzipFile(fileobj=fh)  # type: ignore[return-value]
    return fh


def _check_gunzipped_size(content: _Content) -> None:
    """Stream-decompress without keeping the data: refuse archives that inflate past the limit."""
    import gzip

    total = 0
    try:
        with _text_stream(content) as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
                if total > MAX_TABLE_FILE_BYTES:
                    raise DataError(
                        f"{content.name!r} decompresses to more than {_human_bytes(MAX_TABLE_FILE_BYTES)} "
                        f"(from {_human_bytes(content.size)} compressed); tables above that are not loaded. "
                        "Prefilter the features (e.g. highly variable genes) or save the data as sparse .h5ad."
                    )
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{content.name!r} is not a valid gzip file (damaged or truncated?): {exc}") from exc


def _sniff_separator(header_line: str) -> str:
    try:  # the first 64 KiB decide (the sniffer's regexes take seconds on a 16 MiB header)
        return csv.Sniffer().sniff(header_line[:1 << 16], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _text_header(content: _Content, sep: str | None) -> tuple[list[str], str]:
    """The raw header names (before pandas renames duplicates) and the separator."""
    try:
        with _text_stream(content) as fh:
            first = fh.readline(text_checks.MAX_LINE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{content.name!r} is not a valid gzip file (damaged or truncated?): {exc}") from exc
    if len(first) > text_checks.MAX_LINE_BYTES:
        raise no_line_break_error(content.name)
    if b"\x00" in first:
        raise DataError(f"{content.name!r} is not a text table (it contains binary data). "
                        "Upload a CSV, TSV, parquet or h5ad file.")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = first.decode("latin-1")
    text = text.rstrip("\r\n")
    if not text.strip():
        raise DataError(f"{content.name!r} has no header line: the first line is empty.")
    sep = sep or _sniff_separator(text)
    try:
        names = next(csv.reader([text], delimiter=sep))
    except csv.Error:  # e.g. a stray carriage return inside the header line
        raise DataError(f"Could not read the header line of {content.name!r}: it holds a stray line break or "
                        "quote (or is not text at all). Save the table as a plain CSV or TSV.") from None
    check_header_width(len(names), content.name)
    return names, sep


def _check_first_row_width(content: _Content, header: list[str], sep: str) -> None:
    """Refuse a first data row wider than the header plus one row-name field.

    One extra field is R's ``write.table`` row names (pandas turns it into the
    index); more would make pandas build a multi-level index from the extra
    fields, which for a very long line takes minutes, so it is an error here.
    """
    try:
        with _text_stream(content) as fh:
            fh.readline(text_checks.MAX_LINE_BYTES + 1)
            line = fh.readline(text_checks.MAX_LINE_BYTES + 1)
    except (OSError, EOFError, zlib.error):  # a damaged gzip: the full read reports it
        return
    text = line.decode("latin-1").rstrip("\r\n")
    if text.count(sep) <= len(header):  # cheap bound: no wider than header + row names
        return
    try:  # quoted separators do not count
        n_fields = len(next(csv.reader([text], delimiter=sep), []))
    except csv.Error:  # e.g. a field beyond the csv module's size limit: let pandas judge the file
        return
    if n_fields > len(header) + 1:
        raise DataError(f"Line 2 of {content.name!r} has {n_fields:,} fields but the header has {len(header)}; "
                        "check the separator and that every row has one value per column.")


def _as_utf8(content: _Content) -> _Content:
    """UTF-16 text (Excel's "Unicode text", PowerShell) re-encoded as UTF-8; other content unchanged.

    Recognised by its byte-order mark (after gunzipping, for .gz files).
    """
    head = content.head
    gzipped = head.startswith(_GZIP_MAGIC)
    if gzipped:
        try:
            with _text_stream(content) as fh:
                head = fh.read(4)
        except (OSError, EOFError, zlib.error):
            return content  # the full read reports the damage
    if not head.startswith(_UTF16_BOMS):
        return content
    with _text_stream(content) as fh:
        raw = fh.read(MAX_TABLE_FILE_BYTES + 1)
    try:
        text = raw.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise DataError(f"{content.name!r} starts like UTF-16 text but is not valid UTF-16 (damaged?); "
                        "save it as UTF-8 CSV.") from exc
    data = text.encode("utf-8")
    return _Content(content.name, None, data, len(data), data[:8192])


def _decimal_mark(content: _Content, sep: str) -> str:
    """``","`` when a ``;``/tab/``|`` separated file writes numbers like ``3,14`` (and never ``3.14``)."""
    if sep == ",":
        return "."
    try:
        with _text_stream(content) as fh:
            fh.readline(text_checks.MAX_LINE_BYTES + 1)
            sample = [fh.readline(1 << 20).decode("utf-8", "replace") for _ in range(50)]
    except (OSError, EOFError, zlib.error):
        return "."
    fields = [f.strip().strip('"') for line in sample for f in line.rstrip("\r\n").split(sep)]
    comma = sum(bool(_DECIMAL_COMMA.match(f)) for f in fields)
    point = sum(bool(_DECIMAL_POINT.match(f)) for f in fields)
    return "," if comma and not point else "."


_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+([eE][-+]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+([eE][-+]?\d+)?$")


def _parse_problem(exc: Exception) -> str:
    """Our own words for what the parser tripped over (its wording changes between versions)."""
    text = str(exc)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        want, line, saw = fields.groups()
        return f"line {line} has {int(saw):,} fields but the header has {int(want):,}; check the separator and quotes"
    if "EOF inside string" in text or "EOF while" in text:
        line = re.search(r"line (\d+)", text)
        where = f" (starting on line {line.group(1)})" if line else ""
        return f"a quoted field{where} is never closed; check the quotes"
    if isinstance(exc, UnicodeDecodeError):
        return "its text encoding is not UTF-8, UTF-16 or latin-1"
    return "the rows are not consistently separated text (a binary or damaged file?)"


def _refuse_binary_text(content: _Content, fmt: str) -> None:
    """A CSV/TSV whose first bytes are binary (an image or archive renamed .csv) is refused before parsing."""
    if _looks_binary(content.head) and not content.head.startswith(_GZIP_MAGIC):
        raise DataError(f"{content.name!r} does not look like a {fmt.upper()} text table (it contains "
                        f"binary data). Upload {ACCEPTED}.")


def _read_text(content: _Content, fmt: str, notes: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    _refuse_binary_text(content, fmt)
    header, sep = _text_header(content, "\t" if fmt == "tsv" else None)
    try:
        scan = scan_text(lambda: _text_stream(content), content.name)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{content.name!r} is not a valid gzip file (damaged or truncated?): {exc}") from exc
    _check_implied_size(scan.n_lines - 1, len(header) - 1, content.name)
    _check_first_row_width(content, header, sep)
    decimal = _decimal_mark(content, sep)
    try:
        with _text_stream(content) as fh:  # latin-1: Excel on Windows still writes cp1252 / latin-1
            frame = pd.read_csv(fh, sep=sep, encoding=scan.encoding, low_memory=False, decimal=decimal)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{content.name!r} holds no data.") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        raise DataError(f"Could not parse {content.name!r} as {fmt.upper()}: {_parse_problem(exc)}.") from None
    if notes is not None and sep != ",":
        notes.append(f"Read as {_SEPARATOR_NAMES.get(sep, repr(sep))}-separated"
                     + (" with a decimal comma." if decimal == "," else "."))
    return frame, header


_SEPARATOR_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _check_implied_size(rows: int, features: int, name: str) -> None:
    """Refuse before parsing when the line count × header width already exceeds the dense-value limit."""
    if rows * features > MAX_DENSE_VALUES:
        raise DataError(f"{name!r}: about {rows} rows × {features} features = {rows * features:,} values exceeds "
                        f"the in-memory limit of {MAX_DENSE_VALUES:,} (counted before parsing). Use sparse .h5ad "
                        "or prefilter the features.")


def _pyarrow_file(content: _Content):
    import pyarrow.parquet as pq

    if not content.head.startswith(_PARQUET_MAGIC):
        raise DataError(f"{content.name!r} is not a parquet file (its first bytes are not the parquet "
                        "signature); was it renamed? Upload a real .parquet, or a CSV/TSV/h5ad.")
    try:
        return pq.ParquetFile(content.handle())
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise DataError(f"Could not read {content.name!r} as parquet (damaged or truncated?): {exc}") from exc


def _read_parquet(content: _Content) -> tuple[pd.DataFrame, list[str]]:
    pq_file = _pyarrow_file(content)
    header = [str(n) for n in pq_file.schema_arrow.names]
    if len(set(header)) != len(header):
        _raise_duplicates(header, "column")
    try:
        frame = pq_file.read().to_pandas()
    except Exception as exc:
        raise DataError(f"Could not read {content.name!r} as parquet (damaged or truncated?): {exc}") from exc
    frame.columns = [str(c) for c in frame.columns]
    return frame, header


def _raise_duplicates(names: list[str], what: str, hint: str = "") -> None:
    seen: set[str] = set()
    dupes: list[str] = []
    for n in names:
        if n in seen and n not in dupes:
            dupes.append(n)
        seen.add(n)
    raise DataError(f"Duplicate {what} names: {_listing(dupes)}. Each {what} needs a unique name"
                    + (f"; {hint}" if hint else "; rename or drop the duplicates.") )


def dataset_from_frame(
    frame: pd.DataFrame,
    target: str | None,
    *,
    task: str = "auto",
    name: str = "data",
    header: list[str] | None = None,
    drop_constant: bool = False,
    source_format: str = "table",
    impute: str | None = None,
    drop_columns: Sequence[str] = (),
) -> Dataset:
    """Validate a table and split it into features and the ``target`` column.

    Text feature columns are one-hot encoded (one group each) and ``impute``
    fills missing values: see :func:`seqattn.data.encoding.encode_features`.
    ``drop_columns`` are left out (e.g. an ID or a copy of the target).
    """
    from seqattn.data.encoding import check_impute, encode_features

    check_impute(impute)
    if header is None or len(header) != frame.shape[1]:
        header = list(frame.columns)
    header = [str(c) for c in header]
    if frame.shape[1] == 0 or (frame.shape[0] == 0 and not header):
        raise DataError("The file holds no columns: it is empty.")
    if frame.shape[0] == 0:
        raise DataError(f"The file has a header ({_listing(header, 8)}) but no data rows.")
    if len(set(header)) != len(header):
        _raise_duplicates(header, "column")
    frame.columns = header
    if target is None:
        raise DataError(f"Choose the target column to predict; the columns are: {_listing(header)}.")
    if target not in frame.columns:
        hint = ("" if len(header) > 1 else " The file was read as a single column: is it separated by "
                "something other than a comma, semicolon, tab or '|'? Save it as CSV or TSV.")
        raise DataError(f"Target column {target!r} not found. Available columns: {_listing(header)}.{hint}")
    if frame.shape[1] < 2:
        raise DataError(f"The only column is the target {target!r}; there are no features to select from.")
    rows, cols = frame.shape
    _check_enough_samples(rows, "data row")
    if rows * (cols - 1) > MAX_DENSE_VALUES:
        raise DataError(f"{rows} rows × {cols - 1} features = {rows * (cols - 1):,} values exceeds the "
                        f"in-memory limit of {MAX_DENSE_VALUES:,}. Use sparse .h5ad or prefilter the features.")

    drop = [str(c) for c in drop_columns]
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise DataError(f"Cannot drop {_listing(unknown)}: no such column. Available columns: {_listing(header)}.")
    if target in drop:
        raise DataError(f"The target {target!r} cannot also be dropped; pick another target or keep it.")
    y_raw = frame[target]
    features = _numbers_stored_as_text(frame.drop(columns=[target, *drop]))
    notes: list[str] = [f"Dropped column(s) {_listing(drop)} as asked."] if drop else []
    if features.shape[1] == 0:
        raise DataError(f"After dropping {_listing(drop)} no feature columns are left.")
    first = str(features.columns[0])
    if first in ("", "Unnamed: 0") or _looks_like_row_ids(features[first]):
        # pandas / R write row names (cell barcodes, sample IDs) as an unnamed or text first column
        features = features.drop(columns=[first])
        notes.append(f"Used the first column {first!r} as row identifiers, not as a feature.")
        if features.shape[1] == 0:
            raise DataError(f"Apart from the target {target!r} and the row identifiers {first!r} there are "
                            "no feature columns.")
    X, names, groups, encoding_notes = encode_features(features, impute)
    notes.extend(encoding_notes)
    _check_finite_dense(X, names)
    keep = np.setdiff1d(np.arange(X.shape[1]), _constant_columns(X))
    X, names, constant_note = _handle_constant(X, names, drop_constant)
    if constant_note:
        notes.append(constant_note)
        if groups is not None:
            groups = groups.restricted_to(keep)
    dataset = _finish(X, y_raw.to_numpy(), names, target, task, name,
                      extra={"source_format": source_format, "notes": notes, "target_column": target,
                             **({"impute": impute} if impute else {}),
                             **({"dropped_columns": drop} if drop else {})})
    if groups is not None:
        dataset.groups = groups
        dataset.__post_init__()
        dataset.description = dataset.description.replace(" features from", f" columns in {dataset.n_groups} "
                                                          "feature groups from")
    return dataset


def _check_enough_samples(n: int, what: str) -> None:
    if n < MIN_SAMPLES:
        raise DataError(f"Only {n} {what}(s); feature selection needs at least {MIN_SAMPLES} samples "
                        "(some are held out for validation). Upload more rows.")


def _numbers_stored_as_text(features: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value parses as a number (e.g. ``1e400``) become numbers.

    pandas keeps a column as text when one value overflows float64; without this
    such a column would be mistaken for row identifiers or called non-numeric,
    instead of being reported as holding infinite values.
    """
    converted = {}
    for c in [c for c, dtype in features.dtypes.items() if dtype == object]:
        try:
            converted[c] = features[c].astype(np.float64)  # Python float(): "1e400" -> inf
        except (TypeError, ValueError):
            continue  # real text: reported as non-numeric (or used as row identifiers)
    return features.assign(**converted) if converted else features


def _looks_like_row_ids(column: pd.Series) -> bool:
    """Text column whose values are all distinct (barcodes, sample names): row labels, not data."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column) or len(column) < 2:
        return False
    return bool(column.notna().all() and column.is_unique)


def _check_finite_dense(X: np.ndarray, names: list[str]) -> None:
    bad_mask = ~np.isfinite(X)
    if bad_mask.any():
        per_col = bad_mask.sum(axis=0)
        where = np.flatnonzero(per_col)
        details = ", ".join(f"{names[j]!r} ({int(per_col[j])})" for j in where[:10])
        more = f", ... and {len(where) - 10} more columns" if len(where) > 10 else ""
        raise DataError(f"Missing or infinite values (NaN/inf) in {len(where)} feature column(s): "
                        f"{details}{more}. Impute or drop those values first.")


def _constant_columns(X: Any) -> np.ndarray:
    if sp.issparse(X):
        # without a CSC copy: a column with some stored non-zeros and some zeros is not constant,
        # so only empty columns and the (rare) fully stored ones need a look at their values
        stored = X.data != 0
        nnz = np.bincount(X.indices[stored], minlength=X.shape[1])
        full = np.flatnonzero(nnz == X.shape[0])
        constant_full = []
        if len(full):
            block = X[:, full].toarray() if len(full) * X.shape[0] <= 50_000_000 else None
            if block is not None:
                constant_full = full[np.all(block == block[:1], axis=0)].tolist()
        return np.sort(np.concatenate([np.flatnonzero(nnz == 0), np.asarray(constant_full, dtype=np.int64)]))
    if X.shape[0] == 0:
        return np.arange(X.shape[1])
    return np.flatnonzero(np.all(X == X[:1], axis=0))


def constant_columns_to_keep(constant: np.ndarray, names: list[str], drop: bool) -> tuple[np.ndarray | None, str]:
    """The one rule for constant feature columns (in-memory and backed loaders): refuse, or keep the rest.

    Returns ``(keep, note)``: ``keep`` is None when nothing is constant, else the column indices to keep.
    """
    if len(constant) == 0:
        return None, ""
    listed = _listing([names[j] for j in constant], 10)
    if len(constant) == len(names):
        raise DataError(f"Every feature column is constant ({listed}); there is nothing to select from.")
    if not drop:
        raise DataError(f"Constant feature column(s) carry no information: {listed}. Drop them "
                        "(or load with drop_constant=True).")
    return np.setdiff1d(np.arange(len(names)), constant), f"Dropped {len(constant)} constant feature(s): {listed}."


def _handle_constant(X: Any, names: list[str], drop: bool) -> tuple[Any, list[str], str]:
    keep, note = constant_columns_to_keep(_constant_columns(X), names, drop)
    if keep is None:
        return X, names, ""
    return X[:, keep], [names[j] for j in keep], note


def _finish(X: Any, y_raw: np.ndarray, names: list[str], target: str, task: str, name: str,
            extra: dict[str, Any]) -> Dataset:
    """Target checks (missing values, one class) and the ``Dataset``."""
    y_series = pd.Series(y_raw)
    missing = int(y_series.isna().sum())
    if missing:
        raise DataError(f"The target {target!r} is missing in {missing} row(s); drop those rows or fill them in.")
    if task not in ("auto", "classification", "regression"):
        raise DataError(f"task must be 'auto', 'classification' or 'regression', got {task!r}.")
    if isinstance(y_series.dtype, pd.CategoricalDtype):
        y_raw = y_series.astype(str).to_numpy()
    y_arr = np.asarray(y_raw)
    if y_arr.dtype.kind in "fc" and not np.all(np.isfinite(y_arr.astype(np.float64))):
        raise DataError(f"The target {target!r} holds infinite values; fix or drop those rows.")
    if task == "auto":
        task = infer_task(y_arr)
    y, class_names = encode_target(y_arr, task)
    if task == "classification":
        if class_names is not None and len(class_names) < 2:
            raise DataError(f"The target {target!r} has a single class ({class_names[0]!r}); a classifier "
                            "needs at least two. Pick another target column.")
    elif np.nanstd(y) == 0:
        raise DataError(f"The regression target {target!r} is constant; pick another target column.")
    description = (f"{X.shape[0]} samples × {X.shape[1]} features from {extra.get('source_format', 'a table')}, "
                   f"target {target!r} ({task}" + (f", {len(class_names)} classes)" if class_names else ")"))
    return Dataset(X=X, y=y, feature_names=names, task=task, name=name, class_names=class_names,
                   description=description, extra=extra)
