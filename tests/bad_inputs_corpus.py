"""The corpus of bad and hostile input files, generated here; shared by the library and app tests."""
from __future__ import annotations

import gzip
import io
import pickle
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp


N = 24  # rows in the small generated tables (above tables.MIN_SAMPLES)


# ------------------------------------------------------------ generated data
def table(n: int = N, d: int = 3, target: str = "label", seed: int = 0) -> pd.DataFrame:
    """A valid table: ``d`` random features and a two-class target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, d)).round(3), columns=[f"f{j}" for j in range(d)])
    frame[target] = np.arange(n) % 2
    return frame


def csv(frame: pd.DataFrame, sep: str = ",") -> bytes:
    return frame.to_csv(index=False, sep=sep).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def h5ad_bytes(tmp: Path, obs: dict[str, Any] | None = None, X: Any = None) -> bytes:
    """An AnnData file written by anndata itself; ``obs`` columns as given."""
    X = X if X is not None else np.random.default_rng(8).poisson(2.0, size=(N, 5)).astype(np.float32) + 1
    frame = pd.DataFrame(obs if obs is not None else {"cell_type": pd.Categorical(["B", "T"] * (N // 2))},
                         index=[f"c{i}" for i in range(X.shape[0])])
    path = tmp / "cells.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anndata.AnnData(X=X, obs=frame, var=pd.DataFrame(index=[f"g{j}" for j in range(X.shape[1])])) \
            .write_h5ad(path)
    return path.read_bytes()


class ExecutesOnUnpickle:
    """Unpickling this would create ``marker``: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@dataclass(frozen=True)
class BadFile:
    name: str  # file name the loader sees (extension drives the format)
    make: Callable[[Path], bytes]  # tmp dir -> content (generated, never checked in)
    target: str | None
    message: str  # regex the DataError message must match


BAD_FILES = [
    BadFile("empty.csv", lambda t: b"", "label", r"'empty.csv' is empty \(0 bytes\)"),
    BadFile("junk.csv", lambda t: bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "label",
            r"'junk.csv' (does not look like a CSV|is not a) text table \(it contains binary data\)"),
    BadFile("colons.csv", lambda t: csv(table(), sep=":"), "label",
            r"Target column 'label' not found.*read as a single column.*separated by something other"),
    BadFile("header_only.csv", lambda t: b"f0,f1,label\n", "label", r"has a header \('f0', 'f1', 'label'\) but no data rows"),
    BadFile("one_row.csv", lambda t: b"f0,f1,label\n1.5,2.5,0\n", "label",
            r"Only 1 data row\(s\); feature selection needs at least 10 samples"),
    BadFile("one_column.csv", lambda t: csv(table()[["label"]]), "label",
            r"only column is the target 'label'; there are no features"),
    BadFile("all_nan.csv", lambda t: csv(table().assign(f1=np.nan)), "label",
            rf"NaN/inf\) in 1 feature column\(s\): 'f1' \({N}\)"),
    BadFile("inf.csv", lambda t: csv(table().assign(f2=[np.inf] + [1.0] * (N - 1))), "label",
            r"NaN/inf\) in 1 feature column\(s\): 'f2' \(1\)"),
    BadFile("overflow.csv", lambda t: csv(table().assign(f0=["1e400"] + [str(i) for i in range(1, N)])), "label",
            r"NaN/inf\) in 1 feature column\(s\): 'f0' \(1\)"),
    BadFile("strings.csv", lambda t: csv(table().assign(f1=["abc"] + [str(i) for i in range(1, N)])), "label",
            r"Non-numeric feature columns: 'f1'\. Encode them as numbers"),
    BadFile("mixed.csv", lambda t: csv(table().assign(f2=[1, "two", 3.0, True] * (N // 4))), "label",
            r"Non-numeric feature columns: 'f2'"),
    BadFile("dupes.csv", lambda t: csv(table()).replace(b"f0,f1,f2", b"f0,f1,f0", 1), "label",
            r"Duplicate column names: 'f0'"),
    BadFile("one_class.csv", lambda t: csv(table().assign(label="only")), "label",
            r"single class \('only'\); a classifier needs at least two"),
    BadFile("no_target.csv", lambda t: csv(table()), "cell_type",
            r"Target column 'cell_type' not found\. Available columns: 'f0', 'f1', 'f2', 'label'\.$"),
    BadFile("target_gaps.csv", lambda t: csv(table().assign(label=[np.nan, np.nan] + [0, 1] * (N // 2 - 1))),
            "label", r"target 'label' is missing in 2 row\(s\)"),
    BadFile("target_inf.csv", lambda t: csv(table().assign(y=[np.inf] + list(np.linspace(0, 1, N - 1)))), "y",
            r"target 'y' holds infinite values"),
    BadFile("constant_target.csv", lambda t: csv(table().assign(y=0.5)), "y", r"regression target 'y' is constant"),
    BadFile("constant_features.csv", lambda t: csv(table().assign(f0=1.0, f1=1.0, f2=1.0)), "label",
            r"Every feature column is constant"),
    BadFile("long_line.csv", lambda t: b"f0,f1,label\n" + b"1,2,0\n" * N + b"1," * 2_000_000 + b"0\n", "label",
            rf"Could not parse 'long_line.csv' as CSV: line {N + 2} has 2,000,001 fields but the header has 3"),
    BadFile("long_first_row.csv", lambda t: b"f0,f1,label\n" + b"1," * 2_000_000 + b"0\n" + b"1,2,0\n" * N,
            "label", r"Line 2 of 'long_first_row.csv' has 2,000,001 fields but the header has 3; check the separator"),
    BadFile("long_field.csv", lambda t: b"f0,f1,label\n" + b"7" * 5_000_000 + b",1,0\n" + b"1,2,1\n3,4,0\n" * N,
            "label", r"NaN/inf\) in 1 feature column\(s\): 'f0' \(1\)"),  # 5M digits overflow to inf
    BadFile("open_quote.csv", lambda t: b'f0,f1,label\n"1,2,0\n' + b"1,2,0\n" * N, "label",
            r"Could not parse 'open_quote.csv' as CSV: a quoted field .*is never closed; check the quotes\.$"),
    BadFile("blank_lines.csv", lambda t: b"\n \n\t\n", "label", r"no header line: the first line is empty"),
    BadFile("utf16_bad.csv", lambda t: b"\xff\xfe" + csv(table()).decode().encode("utf-16-le")[:-1], "label",
            r"starts like UTF-16 text but is not valid UTF-16"),
    BadFile("cells.xlsx", lambda t: b"PK\x03\x04" + bytes(200), "label",
            r"Could not read 'cells.xlsx' as an Excel workbook \(damaged or truncated\?\)\.$"),
    BadFile("renamed.xlsx", lambda t: csv(table()), "label", r"not an Excel \.xlsx workbook.*was it renamed\?"),
    BadFile("old.xls", lambda t: bytes(200), "label", r"old Excel format \(\.xls\); save it as \.xlsx or CSV"),
    BadFile("ids.csv", lambda t: csv(table().assign(f1=[f"id{i}" for i in range(N)])), "label",
            r"Non-numeric feature columns: 'f1'.*24 distinct text values \(an ID"),
    BadFile("table.csv.zip", lambda t: _zip(csv(table())), "label", r"Unsupported file type '\.zip'.*CSV, TSV"),
    BadFile("zipped.csv", lambda t: _zip(csv(table())), "label", r"binary data"),
    BadFile("cut.csv.gz", lambda t: gzip.compress(csv(table(n=400)))[:300], "label",
            r"'cut.csv.gz' is not a valid gzip file \(damaged or truncated\?\)"),
    BadFile("cut.parquet", lambda t: parquet_bytes(table())[:120], "label",
            r"Could not read 'cut.parquet' as parquet \(damaged or truncated\?\)"),
    BadFile("renamed.parquet", lambda t: csv(table()), "label", r"not a parquet file.*was it renamed\?"),
    BadFile("renamed.h5ad", lambda t: csv(table()), "cell_type", r"not an h5ad file \(not HDF5\)"),
    BadFile("obs_missing.h5ad", lambda t: h5ad_bytes(t, obs={"donor": ["d1", "d2"] * (N // 2)}), "cell_type",
            r"obs column 'cell_type' not found in 'obs_missing.h5ad'\. Available obs columns: 'donor'"),
    BadFile("no_target_chosen.h5ad", lambda t: h5ad_bytes(t), None, r"Choose the obs column to predict.*'cell_type'"),
    BadFile("truncated.h5ad", lambda t: (lambda b: b[: len(b) // 2])(h5ad_bytes(t)), "cell_type",
            r"Could not read 'truncated.h5ad' as h5ad \(damaged or truncated\?\)"),
    BadFile("plain.h5ad", lambda t: _plain_hdf5(t), "cell_type", r"HDF5 file but not an AnnData h5ad \(no X / obs\)"),
    BadFile("nan_genes.h5ad", lambda t: h5ad_bytes(t, X=sp.csr_matrix(np.where(np.eye(N, 5) > 0, np.nan, 1.0)
                                                                         .astype(np.float32))),
            "cell_type", r"NaN/inf\) in 5 gene\(s\)"),
    BadFile("zero_cells.h5ad", lambda t: h5ad_bytes(t, X=np.zeros((N, 5), np.float32)), "cell_type",
            r"Every cell in X of 'zero_cells.h5ad' has all-zero counts"),
    BadFile("tiny.h5ad", lambda t: h5ad_bytes(t, obs={"cell_type": ["B", "T"] * 3}, X=np.ones((6, 5), np.float32)
                                              + np.eye(6, 5, dtype=np.float32)),
            "cell_type", r"Only 6 cell\(s\); feature selection needs at least 10"),
]


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("table.csv", data)
    return buffer.getvalue()


def _plain_hdf5(tmp: Path) -> bytes:
    path = tmp / "plain.h5"
    with h5py.File(path, "w") as f:
        f["weights"] = np.arange(10.0)
    return path.read_bytes()
