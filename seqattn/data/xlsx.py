"""Read the first worksheet of an Excel ``.xlsx`` workbook, bounded before and while parsing.

A workbook is a zip of XML parts, and a small one can describe a huge grid: a
5.6 KB file with one cell at XFD1048576 spans 17 billion cells, and a 2.7 MB
file can unpack to 0.9 GB of sheet XML. So nothing here trusts what the file
declares (its ``<dimension>``, the rows it claims):

* before parsing, every part's unpacked size in the zip directory is checked
  (:data:`MAX_XLSX_SHEET_BYTES` for a sheet, :data:`MAX_XLSX_STRINGS_BYTES` for
  the shared strings, :data:`MAX_XLSX_PART_BYTES` for the other XML parts);
* the sheet is streamed: bytes are counted as they are decompressed, every
  cell element is converted (with openpyxl's own cell parser, so values, dates
  and shared strings read as ``pandas.read_excel`` reads them) and dropped at
  once, so memory never holds more than one cell's XML; the used range (last
  row × last column with a value) is checked at every cell against
  :data:`MAX_XLSX_CELLS`, and the parse stops after :data:`MAX_XLSX_SECONDS`;
* DTDs (entity definitions) are refused, as no spreadsheet writes them.

The grid that passes goes through pandas' own Excel row parser (``TextParser``)
so types are inferred exactly as ``read_excel`` infers them. Password-protected
workbooks (an encrypted OLE container, not a zip) and data that sits on
another sheet get messages that say so.
"""
from __future__ import annotations

import math
import time
import zipfile
from typing import IO, Any

import numpy as np
import pandas as pd

from seqattn.data.errors import DataError
from seqattn.data import limits
from seqattn.data.limits import human_bytes
from seqattn.data.sources import CFB_MAGIC, ZIP_MAGIC, Content

#: Largest used range (rows × columns, empty cells inside it included) read from a sheet: this
#: reader (like ``read_excel``) converted ~60 k cells/s on a 2-core VM at load 8, so this
#: parses in about 35 s there, inside :data:`MAX_XLSX_SECONDS`.
MAX_XLSX_CELLS = 2_000_000
#: Largest unpacked sheet XML (≈ 40 bytes of XML per numeric cell: ~3 M cells).
MAX_XLSX_SHEET_BYTES = 128 << 20
#: Largest unpacked shared-strings part (every distinct text; it is held in memory, ~100 bytes a string).
MAX_XLSX_STRINGS_BYTES = 64 << 20
#: Largest unpacked size of any other XML part (workbook, styles, relationships: parsed whole).
MAX_XLSX_PART_BYTES = 16 << 20
#: Longest a sheet may take to parse.
MAX_XLSX_SECONDS = 60.0

_ENCRYPTION_STREAM = "EncryptionInfo".encode("utf-16-le")
_EXPORT = ("Open it in Excel and save the sheet as CSV (File › Save As › CSV UTF-8), then upload the CSV.")


def read_xlsx(content: Content, notes: list[str], nrows: int | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The first worksheet as a frame (first row = header) and its header names; ``nrows`` data rows at most."""
    _refuse_non_zip(content)
    with content.handle() as handle:
        _check_part_sizes(_zip_directory(handle, content.name), content.name)
        reader, sheets = _workbook_reader(handle, content.name)
        if not sheets:
            raise DataError(f"{content.name!r} has no worksheets.")
        deadline = time.monotonic() + MAX_XLSX_SECONDS
        data = _sheet_grid(reader, sheets[0], content.name, deadline, None if nrows is None else nrows + 1)
        if not data:
            _refuse_empty_first_sheet(reader, sheets, content.name, deadline)
    frame = _frame(data, content.name, nrows)
    if len(sheets) > 1:
        others = [title for title, _ in sheets[1:]]
        notes.append(f"Read the first sheet {sheets[0][0]!r} of {len(sheets)}; the others "
                     f"({', '.join(map(repr, others[:3]))}{' …' if len(others) > 3 else ''}) were ignored.")
    return frame, [str(c) for c in frame.columns]


# ----------------------------------------------------------------- container
def _refuse_non_zip(content: Content) -> None:
    head = content.head
    if head.startswith(ZIP_MAGIC):
        return
    if head.startswith(CFB_MAGIC):
        if _holds(content, _ENCRYPTION_STREAM):
            raise DataError(f"{content.name!r} is a password-protected (encrypted) workbook, which cannot be "
                            "read. Open it in Excel, remove the password (File › Info › Protect Workbook › "
                            "Encrypt with Password: clear it), save, and upload it again; or save the sheet as CSV.")
        raise DataError(f"{content.name!r} is in the old Excel format (.xls) although it is named .xlsx; "
                        "open it in Excel and save it as .xlsx or CSV.")
    raise DataError(f"{content.name!r} is not an Excel .xlsx workbook (it is not a zip container); "
                    "was it renamed? Save it from Excel as .xlsx or CSV.")


def _holds(content: Content, needle: bytes, block: int = 1 << 20) -> bool:
    """Whether the file's bytes contain ``needle`` (an OLE directory entry name), read in blocks."""
    tail = b""
    with content.handle() as fh:
        while chunk := fh.read(block):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]
    return False


def _zip_directory(handle: IO[bytes], name: str) -> list[zipfile.ZipInfo]:
    try:
        return zipfile.ZipFile(handle).infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"Could not read {name!r} as an Excel workbook (damaged or truncated?).") from exc


def _check_part_sizes(directory: list[zipfile.ZipInfo], name: str) -> None:
    """Refuse from the zip directory alone: parts larger than their limit, and the unpacked total."""
    total = 0
    for info in directory:
        total += info.file_size
        part = info.filename
        if part.startswith("xl/worksheets/") and part.endswith(".xml"):
            limit, what = MAX_XLSX_SHEET_BYTES, "sheet"
        elif part.endswith("sharedStrings.xml"):
            limit, what = MAX_XLSX_STRINGS_BYTES, "shared-strings part"
        elif part.endswith((".xml", ".rels")):
            limit, what = MAX_XLSX_PART_BYTES, "XML part"
        else:
            continue  # images and other parts are never parsed; the total below bounds them
        if info.file_size > limit:
            raise DataError(f"{name!r}: the {what} {part!r} unpacks to {human_bytes(info.file_size)} of XML "
                            f"(limit {human_bytes(limit)}); workbooks that large are not parsed. {_EXPORT}")
    if total > limits.MAX_TABLE_FILE_BYTES:
        raise DataError(f"{name!r} unpacks to {human_bytes(total)}; workbooks above "
                        f"{human_bytes(limits.MAX_TABLE_FILE_BYTES)} are not loaded. {_EXPORT}")


def _workbook_reader(handle: IO[bytes], name: str) -> tuple[Any, list[tuple[str, str]]]:
    """openpyxl's reader with the manifest, shared strings, workbook and styles read, but no sheet;
    and the worksheets' ``(title, part path)``.

    ``load_workbook`` would also open every sheet, and a sheet without a
    ``<dimension>`` element is then parsed whole to find its size.
    """
    try:
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.stylesheet import apply_stylesheet
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise DataError("Reading .xlsx needs openpyxl (pip install openpyxl); or save the sheet as CSV.") from exc
    try:
        reader = ExcelReader(handle, read_only=True, data_only=True, keep_links=False)
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)  # which cell styles are dates
        return reader, _worksheets(reader)
    except DataError:
        raise
    except Exception:  # openpyxl raises KeyError / InvalidFileException / XML and zip errors on damaged files
        raise DataError(f"Could not read {name!r} as an Excel workbook (damaged, or not .xlsx?).") from None


def _worksheets(reader: Any) -> list[tuple[str, str]]:
    """``(title, part path)`` of each worksheet, in workbook order (chart sheets left out)."""
    return [(sheet.name, rel.target) for sheet, rel in reader.parser.find_sheets()
            if rel.target in reader.valid_files and "chartsheet" not in rel.Type]


def _refuse_empty_first_sheet(reader: Any, sheets: list[tuple[str, str]], name: str, deadline: float) -> None:
    first = sheets[0][0]
    for title, part in sheets[1:]:
        if _sheet_grid(reader, (title, part), name, deadline, 1):
            raise DataError(f"The first sheet {first!r} of {name!r} is empty; the data seems to be on sheet "
                            f"{title!r}. Move that sheet to the front (or delete the empty one) and save, or "
                            f"save sheet {title!r} as CSV and upload that.")
    where = f"any of its {len(sheets)} sheets" if len(sheets) > 1 else f"its only sheet {first!r}"
    raise DataError(f"{name!r} holds no data: {where} is empty.")


# ------------------------------------------------------------ one sheet, streamed
class _CountedStream:
    """A decompressing stream that refuses more than ``limit`` bytes, a DTD, or passing ``deadline``."""

    def __init__(self, raw: IO[bytes], limit: int, deadline: float, name: str, part: str):
        self.raw, self.limit, self.deadline, self.name, self.part = raw, limit, deadline, name, part
        self.count, self.tail = 0, b""

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(min(size, 1 << 20) if size and size > 0 else 1 << 20)
        self.count += len(data)
        if self.count > self.limit:
            raise DataError(f"{self.name!r}: the sheet {self.part!r} unpacks to more than "
                            f"{human_bytes(self.limit)} of XML; workbooks that large are not parsed. {_EXPORT}")
        if b"<!DOCTYPE" in self.tail + data or b"<!ENTITY" in self.tail + data:
            raise DataError(f"{self.name!r}: the sheet {self.part!r} defines XML entities (a DTD), which no "
                            f"spreadsheet writes; refused. {_EXPORT}")
        self.tail = data[-16:]
        _check_deadline(self.deadline, self.name)
        return data

    def close(self) -> None:
        self.raw.close()


def _check_deadline(deadline: float, name: str) -> None:
    if time.monotonic() > deadline:
        raise DataError(f"{name!r} took more than {MAX_XLSX_SECONDS:.0f} s to parse, so it was stopped. {_EXPORT}")


def _sheet_grid(reader: Any, sheet: tuple[str, str], name: str, deadline: float,
                max_rows: int | None) -> list[list[Any]]:
    """The sheet's rows (values as ``read_excel`` gives them, trailing blanks trimmed, padded to one width)."""
    from openpyxl.worksheet._reader import WorkSheetParser

    title, part = sheet
    grid = _Grid(name, title, max_rows)
    stream = _CountedStream(reader.archive.open(part), MAX_XLSX_SHEET_BYTES, deadline, name, part)
    wb = reader.wb
    cells = WorkSheetParser(stream, reader.shared_strings, data_only=True, epoch=wb.epoch,
                            date_formats=wb._date_formats, timedelta_formats=wb._timedelta_formats)
    try:
        for cell in _stream_cells(stream, cells, deadline, name):
            if not grid.add(cell):
                break
    except DataError:
        raise
    except Exception:  # XML syntax errors, bad cell references, a shared-string index out of range
        raise DataError(f"Could not read sheet {title!r} of {name!r} (damaged, or not .xlsx?). {_EXPORT}") from None
    finally:
        stream.close()
    return grid.rows()


def _stream_cells(stream: _CountedStream, cells: Any, deadline: float, name: str):
    """openpyxl's cell dicts, one at a time; every element is dropped from the tree once read."""
    from xml.etree.ElementTree import iterparse

    from openpyxl.worksheet._reader import CELL_TAG, ROW_TAG

    open_elements: list[Any] = []
    cell_depth = 0
    for n, (event, element) in enumerate(iterparse(stream, events=("start", "end"))):
        if n % 4096 == 0:
            _check_deadline(deadline, name)
        if event == "start":
            if element.tag == ROW_TAG:  # as openpyxl's parse_row: rows may omit their number
                number = element.get("r")
                cells.row_counter = int(float(number)) if number else cells.row_counter + 1
                cells.col_counter = 0
            elif element.tag == CELL_TAG:
                cell_depth += 1
            open_elements.append(element)
            continue
        open_elements.pop()
        if element.tag == CELL_TAG:
            cell_depth -= 1
            yield cells.parse_cell(element)
        if cell_depth == 0 and open_elements:
            del open_elements[-1][-1]  # the element just closed is its parent's last child


class _Grid:
    """Rows of a sheet built from its cells, refusing a used range above :data:`MAX_XLSX_CELLS`."""

    def __init__(self, name: str, title: str, max_rows: int | None):
        self.name, self.title, self.max_rows = name, title, max_rows
        self.by_row: dict[int, list[Any]] = {}
        self.last_row = self.last_column = 0

    def add(self, cell: dict[str, Any]) -> bool:
        """Keep one cell; False once the rows asked for are complete."""
        row, column = int(cell["row"]), int(cell["column"])
        if self.max_rows is not None and row > self.max_rows:
            return False
        value = _excel_value(cell)
        if isinstance(value, str) and value == "":
            return True
        last_row, last_column = max(self.last_row, row), max(self.last_column, column)
        if last_row * last_column > MAX_XLSX_CELLS:
            raise DataError(
                f"Sheet {self.title!r} of {self.name!r} spans {last_row:,} rows × {last_column:,} columns "
                f"(a value in row {row:,}, column {column:,}); sheets above {MAX_XLSX_CELLS:,} cells are not "
                f"read. Delete stray cells far from the table, or: {_EXPORT}")
        self.last_row, self.last_column = last_row, last_column
        values = self.by_row.setdefault(row, [])
        if len(values) < column:
            values.extend([""] * (column - len(values)))
        values[column - 1] = value
        return True

    def rows(self) -> list[list[Any]]:
        width = self.last_column
        return [(self.by_row.get(r, []) + [""] * width)[:width] for r in range(1, self.last_row + 1)]


def _excel_value(cell: dict[str, Any]) -> Any:
    """A cell's value as pandas' openpyxl reader converts it (empty → "", error → NaN, whole floats → int)."""
    value, kind = cell["value"], cell["data_type"]
    if value is None:
        return ""
    if kind == "e":
        return np.nan
    if kind == "n":
        if isinstance(value, float) and not math.isfinite(value):
            return value
        whole = int(value)
        return whole if whole == value else float(value)
    return value


def _frame(data: list[list[Any]], name: str, nrows: int | None) -> pd.DataFrame:
    """The grid through pandas' Excel row parser: the first row is the header, types inferred as read_excel does."""
    from pandas.errors import EmptyDataError
    from pandas.io.parsers import TextParser

    if not data:
        return pd.DataFrame()
    try:
        return TextParser(data, header=0, skip_blank_lines=False, nrows=nrows).read(nrows)
    except EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:  # noqa: BLE001 - pandas' own wording changes between versions
        raise DataError(f"Could not read the first sheet of {name!r} as a table: {exc}. {_EXPORT}") from None
