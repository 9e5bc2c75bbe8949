"""Read user tables (CSV, TSV, Excel .xlsx, parquet; h5ad via :mod:`seqattn.data.h5ad`) into a
:class:`~seqattn.data.Dataset`: the public entry points, which choose a reader.

:func:`load_table` opens the input and names its format
(:mod:`~seqattn.data.sources`), hands it to that format's reader
(:mod:`~seqattn.data.text`, :mod:`~seqattn.data.xlsx`,
:mod:`~seqattn.data.parquet`, :mod:`~seqattn.data.h5ad` /
:mod:`~seqattn.data.h5ad_backed`), turns a table's frame into a data set
(:mod:`~seqattn.data.frame`) and adds groups and warnings;
:func:`list_columns` answers a target picker without loading the matrix.

Every problem a person can fix is reported as :class:`~seqattn.data.DataError`
with a message that names the offending columns / keys and says what to do;
the app shows it, the CLI prints it and exits 2. Nothing here unpickles:
h5ad goes through h5py/anndata element reads after a safety walk
(:mod:`seqattn.data.h5ad_safety`), parquet through pyarrow, text through
pandas, .xlsx through a bounded streaming reader on openpyxl's cell parser
(XML, no macros run). The size limits are in :mod:`seqattn.data.limits`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from seqattn.data import limits
from seqattn.data.dataset import Dataset
from seqattn.data.errors import DataError
from seqattn.data.frame import dataset_from_frame
from seqattn.data.limits import human_bytes, table_too_large
from seqattn.data.parquet import parquet_file, read_parquet
from seqattn.data.sources import ACCEPTED, Content, Source, detect_format, file_stem, open_nonempty
from seqattn.data.text import as_utf8, read_text, refuse_binary_text, text_header
from seqattn.data.xlsx import read_xlsx

__all__ = ["ACCEPTED", "TARGET_HINTS", "dataset_from_frame", "detect_format", "guess_target", "list_columns",
           "load_table"]


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
    content, fmt = open_nonempty(path_or_buffer, file_name)
    label = name or file_stem(content.name)
    if backed and fmt != "h5ad":
        raise DataError(f"backed=True needs an .h5ad file; {content.name!r} is {fmt}.")
    if fmt == "h5ad":
        from seqattn.data.h5ad import load_h5ad  # anndata and h5py load only when an h5ad comes
        from seqattn.data.h5ad_backed import load_h5ad_backed

        if impute is not None or drop_columns:
            raise DataError("impute and drop_columns apply to tables; for h5ad use the genes' own filtering.")
        loader = load_h5ad_backed if backed else load_h5ad
        dataset = loader(content, target, task=task, layer=layer, name=label,
                         drop_constant=True if drop_constant is None else drop_constant,
                         drop_empty_cells=drop_empty_cells)
        return _with_groups_and_checks(dataset, groups, check=False)
    if layer is not None:
        raise DataError(f"layer={layer!r} only applies to h5ad files; {content.name!r} is {fmt}.")
    notes: list[str] = []
    frame, header = _read_table(content, fmt, notes)
    dataset = dataset_from_frame(frame, target, task=task, name=label, header=header,
                                 drop_constant=bool(drop_constant), source_format=fmt, impute=impute,
                                 drop_columns=drop_columns)
    dataset.extra["notes"] = notes + dataset.extra.get("notes", [])
    return _with_groups_and_checks(dataset, groups, check=check)


def _read_table(content: Content, fmt: str, notes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """A table's frame and raw header from its format's reader, after the size checks every table passes."""
    if content.size > limits.MAX_TABLE_FILE_BYTES:
        raise table_too_large(content.name, f"is {human_bytes(content.size)}")
    if fmt == "parquet":
        return read_parquet(content)
    if fmt == "xlsx":
        return read_xlsx(content, notes)
    return read_text(as_utf8(content), fmt, notes)


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
    content, fmt = open_nonempty(path_or_buffer, file_name)
    if fmt == "h5ad":
        from seqattn.data.h5ad import h5ad_header

        info = h5ad_header(content)
        return {"format": fmt, "columns": info["obs"], "layers": info["layers"], "shape": info["shape"]}
    if fmt == "parquet":
        pq = parquet_file(content)
        return {"format": fmt, "columns": list(pq.schema_arrow.names), "layers": [],
                "shape": (pq.metadata.num_rows, len(pq.schema_arrow.names))}
    if fmt == "xlsx":
        frame, header = read_xlsx(content, [], nrows=0)
        return {"format": fmt, "columns": header, "layers": [], "shape": None}
    text = as_utf8(content)
    refuse_binary_text(text, fmt)  # as load_table does: no target picker offering columns read from junk
    header, _ = text_header(text, "\t" if fmt == "tsv" else None)
    return {"format": fmt, "columns": header, "layers": [], "shape": None}


#: Column names that usually hold the target, tried in this order.
TARGET_HINTS = ("target", "label", "labels", "class", "y", "cell_type", "celltype", "bulk_labels", "louvain")


def guess_target(columns: list[str]) -> int:
    """Index of the likeliest target column: the first known name (case-insensitive), else the last column."""
    if not columns:
        raise DataError("The file has no columns to use as a target.")
    lowered = [str(c).lower() for c in columns]
    return next((lowered.index(h) for h in TARGET_HINTS if h in lowered), len(columns) - 1)
