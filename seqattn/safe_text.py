"""User-supplied text made inert for where it goes: spreadsheets, markdown, plotly labels, file names.

Column, gene, class and file names come from uploads, so they can hold what
another program would act on:

* **CSV → spreadsheet** (formula injection): a cell starting with ``=``,
  ``+``, ``-``, ``@``, tab or carriage return is evaluated by Excel, LibreOffice
  and Google Sheets (``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``). Every CSV
  the project writes goes through :func:`to_csv`, which prefixes such text
  cells with ``'`` as OWASP recommends; numbers stay numbers (a negative value,
  or a text cell such as ``"-2"`` that is a plain number, is left alone).
  :func:`read_csv` reads such a file back to the original text: the rule is
  reversible because a text cell that already starts with ``'`` followed by
  one of those characters (or by another ``'``) gets one more ``'``.
* **Markdown** (Streamlit's ``st.markdown``/``st.warning``/captions, notebook
  markdown cells): :func:`escape_markdown` backslash-escapes (as CommonMark
  allows for any ASCII punctuation) every character that can open a
  construct: brackets (links, images, Streamlit's ``:red[...]``), ``<`` ``>``
  (HTML, autolinks, quotes), emphasis (``_`` inside a word, as in
  ``file_name``, cannot open one and stays), code, headings, tables,
  strikethrough, ``$`` (LaTeX) and ``&`` (entities); a list marker at the
  start; line breaks become spaces. Bare links (``http://…``, ``www.…``,
  ``me@host.org``) are found by the renderer *after* escapes are resolved
  (GFM autolink literals, as Streamlit renders them), so no escape stops
  them: an invisible WORD JOINER (U+2060) goes before ``://``, after
  ``www`` and before ``@``, which those patterns do not match across. So
  ``![px](http://host/img.png)`` shows as those characters (to the eye)
  instead of fetching an image, and ordinary text (``data.csv: 3 rows``)
  is unchanged.
* **Plotly labels** (titles, tick labels, hover text, legend names): plotly
  renders a small HTML subset there, ``<a href>`` included;
  :func:`escape_plot_text` turns ``&``, ``<`` and ``>`` into the entities
  plotly decodes back to those characters.
* **File names** offered for download: :func:`file_stem` keeps letters,
  digits, ``-`` and ``_``.
"""
from __future__ import annotations

import html
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>#|~$&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
WORD_JOINER = "\u2060"  # invisible; breaks the bare-link patterns of GFM autolink literals
_BARE_LINK = re.compile(r"(?=://)|(?i:(?<=\bwww))(?=\.)|(?=@)")
_LEADING_MARKER = re.compile(r"^(\s*)([-+=]|\d+[.)])")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029]")


# ------------------------------------------------------------------------- spreadsheets
def neutralise_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it literally: ``'`` in front of a formula trigger (numbers excepted)."""
    if not text:
        return text
    if text[0] in FORMULA_TRIGGERS and not _PLAIN_NUMBER.fullmatch(text):
        return _QUOTE + text
    if text[0] == _QUOTE and len(text) > 1 and (text[1] in FORMULA_TRIGGERS or text[1] == _QUOTE):
        return _QUOTE + text  # keeps the rule reversible: restore_cell strips exactly one quote
    return text


def restore_cell(text: str) -> str:
    """The inverse of :func:`neutralise_cell`."""
    if len(text) > 1 and text[0] == _QUOTE and (text[1] in FORMULA_TRIGGERS or text[1] == _QUOTE):
        return text[1:]
    return text


def _map_text(values: Iterable[Any], fn) -> list[Any]:
    return [fn(v) if isinstance(v, str) else v for v in values]


def _map_frame(frame: pd.DataFrame, fn) -> pd.DataFrame:
    """A copy with ``fn`` applied to every text cell, column label and index label (numbers untouched)."""
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if column.dtype == object or isinstance(column.dtype, (pd.StringDtype, pd.CategoricalDtype)):
            out.isetitem(position, pd.Series(_map_text(column.astype(object), fn), index=out.index, dtype=object))
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = pd.MultiIndex.from_tuples([tuple(_map_text(t, fn)) for t in out.columns],
                                                names=out.columns.names)
    else:
        out.columns = pd.Index(_map_text(out.columns, fn), name=out.columns.name)
    if out.index.dtype == object:
        out.index = pd.Index(_map_text(out.index, fn), name=out.index.name)
    return out


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and labels a spreadsheet will not evaluate (see module doc)."""
    return _map_frame(frame, neutralise_cell)


def write_atomically(path: str | Path, content: str | Callable[[BinaryIO], None], *,
                     new_file_mode: int = 0o644) -> None:
    """Write ``content`` to ``path`` via a temporary file + rename, so a crash or a
    full disk never leaves a half-written result (the old file, if any, stays).

    ``content`` is text (written as UTF-8) or a function that writes bytes to the
    open file (``np.savez``: no copy of the bytes in memory). A replaced file keeps
    its permissions; a new one gets ``new_file_mode`` (the run store's are private).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        if isinstance(content, str):
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(content)
        else:
            with os.fdopen(fd, "wb") as fh:
                content(fh)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else new_file_mode)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_csv(frame: pd.DataFrame, path: str | Path | None = None, *, index: bool = False) -> str:
    """``frame`` as CSV text with formula-like text cells neutralised; also written (atomically) to ``path``.

    The one CSV writer of the project: traces, comparisons, panels, latency
    tables and the CLI's ``--out x.csv`` all come through here.
    """
    buffer = io.StringIO()
    spreadsheet_safe(frame).to_csv(buffer, index=index)
    text = buffer.getvalue()
    if path is not None:
        write_atomically(path, text)
    return text


def read_csv(source: str | Path | io.IOBase, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV written by :func:`to_csv` back to the original text (``kwargs`` go to ``pandas.read_csv``).

    ``source`` is a path, an open file, or CSV text (a string holding a line break).
    """
    if isinstance(source, str) and ("\n" in source or "\r" in source):
        source = io.StringIO(source)
    return _map_frame(pd.read_csv(source, **kwargs), restore_cell)


# ------------------------------------------------------------------------- markdown and plotly
def escape_markdown(text: Any) -> str:
    """``text`` for a markdown renderer: shown as written, never as a link, image, HTML or formatting."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))
    escaped = _BARE_LINK.sub(WORD_JOINER, escaped)
    return _LEADING_MARKER.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], escaped)


def unescape_markdown(text: str) -> str:
    """What :func:`escape_markdown` escaped, back as plain text (for tests and logs)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text).replace(WORD_JOINER, "")


def escape_plot_text(text: Any) -> str:
    """``text`` for a plotly label, title or hover text: ``&``, ``<``, ``>`` as entities plotly shows literally."""
    return html.escape(str(text), quote=False)


def escape_plot_texts(texts: Iterable[Any]) -> list[str]:
    return [escape_plot_text(t) for t in texts]


# ------------------------------------------------------------------------- file names
def file_stem(text: Any, default: str = "data", max_chars: int = 60) -> str:
    """A download file name's stem from user text: letters, digits, ``-`` and ``_`` only."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_")[:max_chars]
    return stem or default
