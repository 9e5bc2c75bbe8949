"""What a text table must pass before pandas parses it: line lengths, width, encoding.

pandas holds a whole line (and every field of it) in memory and builds one
column object per header field, so a 1 GB file with no line break, or a header
of millions of fields, costs many GB before it fails. :func:`scan_text` reads
the (decompressed) bytes once in 1 MiB blocks, without keeping them, and
refuses lines longer than :data:`MAX_LINE_BYTES`; the header's width is
checked against :data:`MAX_TABLE_COLUMNS` and the rows × columns it implies
against the dense-value limit.

The same pass decides the encoding instead of guessing it from the first
decoding error: valid UTF-8 is read as UTF-8, text that is not UTF-8 anywhere
as latin-1, and a file that has valid UTF-8 characters on some lines but
bytes invalid in UTF-8 on others (UTF-8 text with latin-1 lines pasted in) is
refused, naming both lines: read either way, ``café`` and ``cafÃ©`` would
become two classes.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from seqattn.data.errors import DataError
from seqattn.data.limits import human_bytes

#: Longest line (header or row) handed to pandas: a header of a million 15-character gene IDs.
MAX_LINE_BYTES = 16 << 20
#: Most header fields (columns) of a text table: 300,000 columns × 12 rows took 12 s and
#: 750 MB in pandas on a loaded 2-core VM, and both grow with every column.
MAX_TABLE_COLUMNS = 250_000
_BLOCK = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
# one complete, valid UTF-8 multi-byte character (RFC 3629 ranges; no overlongs or surrogates)
_UTF8_CHARACTER = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_NON_ASCII = re.compile(rb"[\x80-\xff]")


@dataclass(frozen=True)
class TextScan:
    """What one pass over a text table found."""

    encoding: str  # for pandas: "utf-8-sig" or "latin-1"
    n_lines: int  # physical lines (a last line without a line break counts)


def no_line_break_error(name: str) -> DataError:
    """The refusal for a file whose first line is longer than :data:`MAX_LINE_BYTES` (not a table)."""
    return DataError(f"{name!r} has no line break in its first {human_bytes(MAX_LINE_BYTES)}: it is not a table "
                     "(a header line is far shorter), but one long line of text or binary data. Save the table as "
                     "CSV/TSV with one row per line.")


def check_header_width(n_fields: int, name: str) -> None:
    """Refuse a header of more than :data:`MAX_TABLE_COLUMNS` fields before pandas builds a column for each."""
    if n_fields > MAX_TABLE_COLUMNS:
        raise DataError(f"{name!r} has {n_fields:,} columns in its header; tables above {MAX_TABLE_COLUMNS:,} "
                        "columns are not parsed as text. Check the separator, or save the data as sparse .h5ad / "
                        "prefilter the features.")


class _Encoding:
    """Tracks UTF-8 validity across blocks: where the first UTF-8 character and the first invalid byte are."""

    def __init__(self) -> None:
        self.carry = b""  # an incomplete character at the end of the previous block
        self.valid = True
        self.utf8_at: int | None = None  # absolute offset of the first UTF-8 multi-byte character
        self.invalid_at: int | None = None

    def feed(self, block: bytes, offset: int) -> None:
        if self.valid:
            data, start = self.carry + block, offset - len(self.carry)
            try:
                data.decode("utf-8")
                self._note_utf8(data, start)
                self.carry = b""
                return
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
                    self._note_utf8(data[:exc.start], start)
                    self.carry = data[exc.start:]
                    return
                self._note_utf8(data[:exc.start], start)
                self.valid, self.invalid_at = False, start + exc.start
                block, offset = data[exc.start + 1:], start + exc.start + 1
        if self.utf8_at is None:  # after an invalid byte: is there valid UTF-8 further on?
            found = _UTF8_CHARACTER.search(block)
            if found:
                self.utf8_at = offset + found.start()

    def _note_utf8(self, valid: bytes, start: int) -> None:
        if self.utf8_at is None and not valid.isascii():
            self.utf8_at = start + _NON_ASCII.search(valid).start()

    @property
    def mixed(self) -> bool:
        return self.invalid_at is not None and self.utf8_at is not None

    def finish(self, end: int) -> None:
        if self.valid and self.carry:  # the file ends inside a character
            self.valid, self.invalid_at = False, end - len(self.carry)


def scan_text(open_stream: Callable[[], IO[bytes]], name: str) -> TextScan:
    """One pass over the bytes: refuse over-long lines and mixed encodings; count lines, pick the encoding."""
    encoding = _Encoding()
    lines = _Lines()
    offset = 0
    block_size = min(_BLOCK, MAX_LINE_BYTES)  # lines inside a block are then never over the limit
    with open_stream() as stream:
        while block := stream.read(block_size):
            lines.feed(block, name)
            encoding.feed(block, offset)
            offset += len(block)
            if encoding.mixed:
                break
    encoding.finish(offset)
    if encoding.mixed:
        raise _mixed_encoding_error(open_stream, name, encoding)
    return TextScan("utf-8-sig" if encoding.valid else "latin-1", lines.count + (lines.run > 0))


class _Lines:
    """Counts line breaks and refuses a line longer than :data:`MAX_LINE_BYTES` (fed blocks no longer than that)."""

    def __init__(self) -> None:
        self.count = 0  # line breaks seen
        self.run = 0  # bytes of the current line so far

    def feed(self, block: bytes, name: str) -> None:
        first = block.find(b"\n")
        longest = self.run + (len(block) if first < 0 else first)
        if longest > MAX_LINE_BYTES:
            if self.count == 0:
                raise no_line_break_error(name)
            raise DataError(f"Line {self.count + 1:,} of {name!r} is longer than {human_bytes(MAX_LINE_BYTES)}; "
                            "a table row is far shorter. Check the quotes and line breaks, and save the table as "
                            "CSV/TSV with one row per line.")
        if first < 0:
            self.run += len(block)
            return
        self.count += block.count(b"\n")
        self.run = len(block) - block.rfind(b"\n") - 1


def _mixed_encoding_error(open_stream: Callable[[], IO[bytes]], name: str, encoding: _Encoding) -> DataError:
    """The message, with line numbers (a second read up to the later of the two offsets)."""
    with open_stream() as stream:
        utf8_line, utf8_text = _line_at(stream, int(encoding.utf8_at or 0))
    with open_stream() as stream:
        bad_line, _ = _line_at(stream, int(encoding.invalid_at or 0))
    return DataError(
        f"{name!r} mixes two text encodings: line {utf8_line:,} is UTF-8 (e.g. {utf8_text!r}) but line "
        f"{bad_line:,} is not valid UTF-8 (probably latin-1 / Windows-1252). Read either way one part would be "
        "garbled, and names such as 'café' would split into two classes ('café', 'cafÃ©'). Save the whole file "
        "as UTF-8 (in Excel: Save As › CSV UTF-8) and upload it again.")


def _line_at(stream: IO[bytes], position: int) -> tuple[int, str]:
    """1-based line number of a byte offset, and the text from a few bytes before it to a few after."""
    breaks = 0
    while block := stream.read(_BLOCK):
        if position < len(block):
            breaks += block.count(b"\n", 0, position)
            line_start = block.rfind(b"\n", 0, position) + 1
            text = block[max(line_start, position - 12):position + 12].split(b"\n")[0]
            return breaks + 1, text.decode("utf-8", "replace").strip("\ufffd\r ")
        breaks += block.count(b"\n")
        position -= len(block)
    return breaks + 1, ""
