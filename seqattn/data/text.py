"""Read a CSV / TSV text table (plain or gzipped) into a pandas frame, as people save them.

The separator (``,`` ``;`` tab ``|``) is sniffed, a decimal comma is detected
when the separator is not a comma, and UTF-8 (with or without BOM), UTF-16
(with BOM) and latin-1 text are decoded; one pass before pandas
(:mod:`seqattn.data.text_checks`) bounds line length and header width and
refuses files that mix UTF-8 and latin-1. Gzipped text is counted while it
is decompressed, so a zip bomb is refused without being held. A file that
still cannot be parsed gets a one-line message of our own naming the line,
never the parser's internal wording.
"""
from __future__ import annotations

import csv
import io
import re
import zlib
from typing import IO

import pandas as pd

from seqattn.data import limits, text_checks
from seqattn.data.errors import DataError
from seqattn.data.limits import human_bytes, table_too_large
from seqattn.data.sources import ACCEPTED, GZIP_MAGIC, UTF16_BOMS, Content, looks_binary
from seqattn.data.text_checks import check_header_width, no_line_break_error, scan_text

_SEPARATOR_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe"}
_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+([eE][-+]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+([eE][-+]?\d+)?$")


def read_text(content: Content, fmt: str, notes: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """A CSV / TSV (``fmt``) as a frame and its raw header, after every check before pandas; how it was read
    (separator, decimal comma) is appended to ``notes``."""
    refuse_binary_text(content, fmt)
    header, sep = text_header(content, "\t" if fmt == "tsv" else None)
    scan = scan_text(lambda: _text_stream(content), content.name)  # a damaged gzip: _BoundedGunzip says so
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


def refuse_binary_text(content: Content, fmt: str) -> None:
    """A CSV/TSV whose first bytes are binary (an image or archive renamed .csv) is refused before parsing."""
    if looks_binary(content.head) and not content.head.startswith(GZIP_MAGIC):
        raise DataError(f"{content.name!r} does not look like a {fmt.upper()} text table (it contains "
                        f"binary data). Upload {ACCEPTED}.")


def text_header(content: Content, sep: str | None) -> tuple[list[str], str]:
    """The raw header names (before pandas renames duplicates) and the separator."""
    with _text_stream(content) as fh:  # a damaged gzip: _BoundedGunzip says so
        first = fh.readline(text_checks.MAX_LINE_BYTES + 1)
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


def as_utf8(content: Content) -> Content:
    """UTF-16 text (Excel's "Unicode text", PowerShell) re-encoded as UTF-8; other content unchanged.

    Recognised by its byte-order mark (after gunzipping, for .gz files).
    """
    head = content.head
    gzipped = head.startswith(GZIP_MAGIC)
    if gzipped:
        with _text_stream(content) as fh:  # a damaged gzip: _BoundedGunzip says so
            head = fh.read(4)
    if not head.startswith(UTF16_BOMS):
        return content
    with _text_stream(content) as fh:
        raw = fh.read(limits.MAX_TABLE_FILE_BYTES + 1)
    try:
        text = raw.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise DataError(f"{content.name!r} starts like UTF-16 text but is not valid UTF-16 (damaged?); "
                        "save it as UTF-8 CSV.") from exc
    data = text.encode("utf-8")
    return Content(content.name, None, data, len(data), data[:8192])


def _text_stream(content: Content) -> IO[bytes]:
    """The (decompressed) bytes from the start: gzip is recognised by its signature, not its name.

    Gzipped bytes are counted as they inflate (:class:`_BoundedGunzip`), so every read of them, the
    scan's full pass first, refuses a zip bomb without holding it: no separate size pass is needed.
    """
    if content.head.startswith(GZIP_MAGIC):
        return io.BufferedReader(_BoundedGunzip(content))
    return content.handle()


class _BoundedGunzip(io.RawIOBase):
    """Gunzips ``content`` and raises :class:`DataError` once more than ``MAX_TABLE_FILE_BYTES`` came out."""

    def __init__(self, content: Content):
        import gzip

        self._content, self._handle, self._inflated = content, content.handle(), 0
        self._gzip = gzip.GzipFile(fileobj=self._handle)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        try:
            n = self._gzip.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise DataError(f"{self._content.name!r} is not a valid gzip file (damaged or truncated?): {exc}") from exc
        self._inflated += n
        if self._inflated > limits.MAX_TABLE_FILE_BYTES:
            raise table_too_large(self._content.name, f"decompresses to more than "
                                  f"{human_bytes(limits.MAX_TABLE_FILE_BYTES)} (from {human_bytes(self._content.size)} "
                                  "compressed)")
        return n

    def close(self) -> None:
        if not self.closed:
            self._gzip.close()  # leaves a handle it was given open
            self._handle.close()
        super().close()


def _check_implied_size(rows: int, features: int, name: str) -> None:
    """Refuse before parsing when the line count × header width already exceeds the dense-value limit."""
    if rows * features > limits.MAX_DENSE_VALUES:
        raise DataError(f"{name!r}: about {rows} rows × {features} features = {rows * features:,} values exceeds "
                        f"the in-memory limit of {limits.MAX_DENSE_VALUES:,} (counted before parsing). Use sparse "
                        ".h5ad or prefilter the features.")


def _check_first_row_width(content: Content, header: list[str], sep: str) -> None:
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


def _sniff_separator(header_line: str) -> str:
    try:  # the first 64 KiB decide (the sniffer's regexes take seconds on a 16 MiB header)
        return csv.Sniffer().sniff(header_line[:1 << 16], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _decimal_mark(content: Content, sep: str) -> str:
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
