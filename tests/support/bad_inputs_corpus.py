"""The corpus of bad and hostile input files, generated here; shared by the library and app tests."""
from __future__ import annotations

import gzip
import io
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


N = 24  # rows in the small generated tables (above limits.MIN_SAMPLES)


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


# ------------------------------------------------ hostile files (built here, never checked in)
#: Two lines of a "server file" that a hostile h5ad tries to show as class names (equal width: one fixed-width string each).
SECRET_LINES = (b"root:x:0:0:root:/root:/bin/bash\n", b"daemon:x:1:1:daemon:/usr/sbin:/\n")


def anndata_file(path: Path, n: int = N, n_genes: int = 5) -> Path:
    """A valid h5ad written by anndata (cell_type B/T, genes g0..), to edit into a hostile one."""
    X = np.random.default_rng(8).poisson(2.0, size=(n, n_genes)).astype(np.float32) + 1
    obs = pd.DataFrame({"cell_type": pd.Categorical(["B", "T"] * (n // 2))}, index=[f"c{i}" for i in range(n)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])).write_h5ad(path)
    return path


def _replace_dataset(f: h5py.File, key: str, make: Callable[[h5py.Group, str], h5py.Dataset]) -> None:
    """Swap the dataset at ``key`` for ``make(parent, name)``, keeping anndata's attributes."""
    parent_key, _, name = key.rpartition("/")
    parent = f[parent_key] if parent_key else f
    attrs = dict(parent[name].attrs)
    del parent[name]
    new = make(parent, name)
    for attribute, value in attrs.items():
        new.attrs[attribute] = value


def external_storage_h5ad(tmp: Path, secret: Path | None = None, name: str = "external_storage.h5ad") -> bytes:
    """obs/cell_type/categories stored as *external raw storage* in another file (the /etc/passwd attack)."""
    secret = secret or tmp / "secret.txt"
    if not secret.exists():
        secret.write_bytes(b"".join(SECRET_LINES))
    width = len(SECRET_LINES[0])
    path = anndata_file(tmp / name)
    with h5py.File(path, "a") as f:
        _replace_dataset(f, "obs/cell_type/categories", lambda g, n: g.create_dataset(
            n, shape=(2,), dtype=f"S{width}", external=[(str(secret), 0, 2 * width)]))
    return path.read_bytes()


def virtual_x_h5ad(tmp: Path, source: Path | None = None, name: str = "virtual_x.h5ad") -> bytes:
    """X is an HDF5 *virtual dataset*: mapped from ``source`` (another file), or from itself when None,
    which crashes the HDF5 library when read (the server-killing upload)."""
    path = anndata_file(tmp / name)
    if source is not None:
        with h5py.File(source, "w") as s:
            s["data"] = np.arange(N * 5, dtype=np.float32).reshape(N, 5) + 1
    layout = h5py.VirtualLayout(shape=(N, 5), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(source) if source is not None else ".", "data" if source else "X",
                                   shape=(N, 5))
    with h5py.File(path, "a") as f:
        _replace_dataset(f, "X", lambda g, n: g.create_virtual_dataset(n, layout, fillvalue=1))
    return path.read_bytes()


def external_link_h5ad(tmp: Path, target: Path | None = None, name: str = "external_link.h5ad") -> bytes:
    """X is an HDF5 *external link* to a dataset in another file."""
    target = target or tmp / "elsewhere.h5"
    with h5py.File(target, "w") as s:
        s["data"] = np.arange(N * 5, dtype=np.float32).reshape(N, 5) + 1
    path = anndata_file(tmp / name)
    with h5py.File(path, "a") as f:
        del f["X"]
        f["X"] = h5py.ExternalLink(str(target), "data")
    return path.read_bytes()


def soft_link_h5ad(tmp: Path) -> bytes:
    """var/_index is a soft link to the cell names: anndata never writes links."""
    path = anndata_file(tmp / "soft_link.h5ad")
    with h5py.File(path, "a") as f:
        del f["obs/cell_type/categories"]
        f["obs/cell_type/categories"] = h5py.SoftLink("/var/_index")
    return path.read_bytes()


def declared_bomb_h5ad(tmp: Path, key: str, shape: tuple[int, ...], dtype: str = "float32",
                       name: str = "bomb.h5ad") -> bytes:
    """A gzip-compressed dataset at ``key`` that declares ``shape`` but stores no chunk: reading it
    fills in every value (a few KB on disk, gigabytes in memory)."""
    path = anndata_file(tmp / name)
    chunks = tuple(min(s, 1 << 12) for s in shape)

    def make(group: h5py.Group, leaf: str) -> h5py.Dataset:
        return group.create_dataset(leaf, shape=shape, dtype=dtype, chunks=chunks, compression="gzip",
                                    fillvalue=np.ones((), dtype=dtype)[()])

    with h5py.File(path, "a") as f:
        if key in f:
            _replace_dataset(f, key, make)
        else:
            parent, _, leaf = key.rpartition("/")
            make(f.require_group(parent), leaf).attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    return path.read_bytes()


def xlsx_bytes(sheets: dict[str, list[list[Any]]], cells: dict[str, Any] | None = None) -> bytes:
    """A workbook with the given sheets (rows of values); ``cells`` sets single cells of the first sheet."""
    import openpyxl

    book = openpyxl.Workbook()
    for i, (title, rows) in enumerate(sheets.items()):
        sheet = book.active if i == 0 else book.create_sheet()
        sheet.title = title
        for row in rows:
            sheet.append(row)
    for ref, value in (cells or {}).items():
        book.worksheets[0][ref] = value
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def far_corner_xlsx() -> bytes:
    """A small table plus one value in the last cell Excel allows (XFD1048576): 17 billion cells of range."""
    return xlsx_bytes({"Sheet1": [["f0", "label"], [1, 0], [2, 1]]}, cells={"XFD1048576": 1})


def huge_sheet_xlsx(path: Path, xml_bytes: int) -> Path:
    """A real workbook whose sheet XML is replaced by ``xml_bytes`` of valid rows (streamed, level-1 deflate)."""
    template = zipfile.ZipFile(io.BytesIO(xlsx_bytes({"Sheet1": [["f0", "label"]]})))
    rows = (b'<row><c t="n"><v>1</v></c><c t="n"><v>0</v></c></row>' * 2000)
    head = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns='
            b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
    tail = b"</sheetData></worksheet>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in template.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                out.writestr(info, template.read(info.filename))
        with out.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(head)
            for _ in range(max(1, (xml_bytes - len(head) - len(tail)) // len(rows))):
                sheet.write(rows)
            sheet.write(tail)
    return path


def encrypted_xlsx() -> bytes:
    """A minimal, well-formed OLE compound file holding the two streams Excel writes for a
    password-protected workbook (``EncryptionInfo`` and ``EncryptedPackage``)."""
    import struct

    free, end, fat_sector, no_stream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    stream_sectors = 8  # each stream 4096 bytes: at the mini-stream cutoff, so stored in normal sectors
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + bytes(6) + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    fat = [fat_sector, end]
    for start in (2, 2 + stream_sectors):
        fat += list(range(start + 1, start + stream_sectors)) + [end]
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat) + struct.pack("<I", free) * (128 - len(fat))

    def entry(name: str, kind: int, left: int, right: int, child: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        return (encoded.ljust(64, b"\0") + struct.pack("<HBB", len(encoded), kind, 1)
                + struct.pack("<III", left, right, child) + bytes(16 + 4 + 16)
                + struct.pack("<IQ", start, size))

    directory = (entry("Root Entry", 5, no_stream, no_stream, 1, end, 0)
                 + entry("EncryptionInfo", 2, no_stream, 2, no_stream, 2, 4096)
                 + entry("EncryptedPackage", 2, no_stream, no_stream, no_stream, 2 + stream_sectors, 4096)
                 + entry("", 0, no_stream, no_stream, no_stream, 0, 0))
    return header + fat_bytes + directory + bytes(2 * stream_sectors * 512)


#: Inputs that read other files, crash the reader or exhaust memory / CPU: each refused with a clear message.
BAD_FILES += [
    BadFile("external_storage.h5ad", lambda t: external_storage_h5ad(t), "cell_type",
            r"'external_storage.h5ad': dataset 'obs/cell_type/categories' is stored outside the file \(external "
            r"raw storage in '.*secret.txt'\); external storage is refused"),
    BadFile("virtual_x.h5ad", lambda t: virtual_x_h5ad(t, t / "source.h5"), "cell_type",
            r"dataset 'X' is an HDF5 virtual dataset \(its values would come from 'data' in the file "
            r"'.*source.h5'\); virtual datasets are refused"),
    BadFile("self_virtual_x.h5ad", lambda t: virtual_x_h5ad(t, None, "self_virtual_x.h5ad"), "cell_type",
            r"dataset 'X' is an HDF5 virtual dataset \(its values would come from 'X' in this same file\)"),
    BadFile("external_link.h5ad", lambda t: external_link_h5ad(t), "cell_type",
            r"'X' is an external link to 'data' in the file '.*elsewhere.h5'; files that point to other files"),
    BadFile("soft_link.h5ad", soft_link_h5ad, "cell_type",
            r"'obs/cell_type/categories' is a soft link \(to '/var/_index'\); links are refused"),
    BadFile("categories_bomb.h5ad",
            lambda t: declared_bomb_h5ad(t, "obs/cell_type/categories", (2_000_000_000,), "S64"), "cell_type",
            r"dataset 'obs/cell_type/categories' declares 119\.2 GiB once decompressed \(shape \(2000000000,\), "
            r"\|S64\), above .*refused before reading"),
    BadFile("far_corner.xlsx", lambda t: far_corner_xlsx(), "label",
            r"Sheet 'Sheet1' of 'far_corner.xlsx' spans 1,048,576 rows × 16,384 columns \(a value in row "
            r"1,048,576, column 16,384\); sheets above [\d,]+ cells are not read.*save the sheet as CSV"),
    BadFile("encrypted.xlsx", lambda t: encrypted_xlsx(), "label",
            r"'encrypted.xlsx' is a password-protected \(encrypted\) workbook.*remove the password"),
    BadFile("renamed_xls.xlsx", lambda t: encrypted_xlsx().replace("Encryption".encode("utf-16-le"),
                                                                  "Workbook\0\0".encode("utf-16-le")), "label",
            r"'renamed_xls.xlsx' is in the old Excel format \(\.xls\) although it is named \.xlsx"),
    BadFile("second_sheet.xlsx", lambda t: xlsx_bytes({"Notes": [], "Data": [["f0", "label"]] + [[i, i % 2] for i in range(N)]}),
            "label", r"The first sheet 'Notes' of 'second_sheet.xlsx' is empty; the data seems to be on sheet 'Data'"),
    BadFile("single_line.csv", lambda t: b"f0,f1,label," + b"1," * (9 << 20), "label",
            r"'single_line.csv' has no line break in its first 16\.0 MiB: it is not a table"),
    BadFile("mixed_encoding.csv",
            lambda t: "f0,label\n".encode() + "".join(f"{i},{'café' if i % 2 else 'thé'}\n" for i in range(N)).encode()
            + "".join(f"{i},{'café' if i % 2 else 'thé'}\n" for i in range(N)).encode("latin-1"), "label",
            rf"'mixed_encoding.csv' mixes two text encodings: line 2 is UTF-8 \(e\.g\. '0,thé'\) but line {N + 2} "
            r"is not valid UTF-8 \(probably latin-1"),
]


# ------------------------------------------------ measured in a child process
ROOT = Path(__file__).resolve().parents[2]
#: Address-space cap for a child that parses a hostile file: a safety net so that code which
#: does allocate what the file declares fails fast instead of taking the machine's memory.
CHILD_ADDRESS_SPACE = 3 << 30

_CHILD_PRELUDE = f"""
import json, re, resource, time
resource.setrlimit(resource.RLIMIT_AS, ({CHILD_ADDRESS_SPACE}, {CHILD_ADDRESS_SPACE}))
def _report(outcome, seconds):
    status = open("/proc/self/status").read()
    peak = int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) / 1024
    print("RESULT " + json.dumps({{"outcome": outcome, "seconds": seconds, "peak_mb": peak}}), flush=True)
def measure(call):
    started = time.monotonic()
    try:
        call()
        outcome = "loaded"
    except BaseException as exc:
        outcome = type(exc).__name__ + ": " + str(exc)
    _report(outcome, time.monotonic() - started)
"""


def measure_in_child(script: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``script`` in a fresh Python (this checkout first on the path, under the address-space cap);
    the script calls ``measure(callable)`` once. Returns ``{"outcome", "seconds", "peak_mb"}``: the
    error (``"DataError: …"``) or ``"loaded"``, the call's wall time, and the child's peak RSS in MB
    (Linux VmHWM: everything the process ever held, imports included)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _CHILD_PRELUDE + script], capture_output=True, text=True,
                          env=env, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"child exited {done.returncode}: {done.stderr[-2000:]}"
    import json

    return json.loads(lines[-1][len("RESULT "):])
