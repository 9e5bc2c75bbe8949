"""Read a parquet table through pyarrow (checked signature, damaged files named)."""
from __future__ import annotations

import pandas as pd

from typing import Any

from seqattn.data.checks import raise_duplicates
from seqattn.data.errors import DataError
from seqattn.data.sources import PARQUET_MAGIC, Content


def parquet_file(content: Content) -> Any:
    """The open ``pyarrow.parquet.ParquetFile`` (schema and row count without reading the data)."""
    import pyarrow.parquet as pq

    if not content.head.startswith(PARQUET_MAGIC):
        raise DataError(f"{content.name!r} is not a parquet file (its first bytes are not the parquet "
                        "signature); was it renamed? Upload a real .parquet, or a CSV/TSV/h5ad.")
    try:
        return pq.ParquetFile(content.handle())
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise DataError(f"Could not read {content.name!r} as parquet (damaged or truncated?): {exc}") from exc


def read_parquet(content: Content) -> tuple[pd.DataFrame, list[str]]:
    """The table as a frame and its header (as stored), with duplicate column names refused first."""
    pq_file = parquet_file(content)
    header = [str(n) for n in pq_file.schema_arrow.names]
    if len(set(header)) != len(header):
        raise_duplicates(header, "column")
    try:
        frame = pq_file.read().to_pandas()
    except Exception as exc:
        raise DataError(f"Could not read {content.name!r} as parquet (damaged or truncated?): {exc}") from exc
    frame.columns = [str(c) for c in frame.columns]
    return frame, header
