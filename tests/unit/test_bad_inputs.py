"""A corpus of bad and hostile inputs, generated here, through the library.

Every data problem must raise :class:`seqattn.data.DataError` and every bad
parameter ``ValueError`` (``DataError`` is a ``ValueError``), each with a
message that names the problem; nothing may be unpickled or executed, and no
half-written output may be left behind. ``CORPUS_SIZE`` is checked so the
count in the README and the closing report stays true.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import re
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import Interval

from seqattn.data import limits
from seqattn.cli import EXIT_BAD_INPUT, main as cli_main
from seqattn.data import DataError, make_planted
from seqattn.data.tables import load_table
from seqattn.selectors import run_method
from seqattn.selectors.sequential_attention import SequentialAttentionSelector
from seqattn.safe_text import write_atomically
from seqattn.trace import SelectionTrace

from tests.support.bad_inputs_corpus import (
    BAD_FILES,
    N,
    BadFile,
    ExecutesOnUnpickle,
    anndata_file,
    csv,
    huge_sheet_xlsx,
    measure_in_child,
    table,
)


@pytest.mark.parametrize("case", BAD_FILES, ids=[c.name for c in BAD_FILES])
@pytest.mark.parametrize("as_path", [False, True], ids=["upload", "path"])
def test_bad_file_raises_clear_data_error_and_writes_nothing(case: BadFile, as_path: bool, tmp_path: Path):
    """Same message whether the bytes come as an upload (buffer + name) or as a file on disk."""
    data = case.make(tmp_path)
    before = set(os.listdir(tmp_path))
    if as_path:
        source: Any = tmp_path / case.name
        source.write_bytes(data)
        before.add(case.name)
        call = lambda: load_table(source, target=case.target)  # noqa: E731
    else:
        call = lambda: load_table(io.BytesIO(data), target=case.target, file_name=case.name)  # noqa: E731
    with pytest.raises(DataError, match=case.message):
        call()
    assert set(os.listdir(tmp_path)) == before  # the loader created no files


# ------------------------------------------------------- hostile containers
@pytest.mark.parametrize("name", ["model.parquet", "data.csv", "cells.h5ad", "table.tsv", "noextension"])
def test_pickle_is_never_unpickled(name: str, tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(ExecutesOnUnpickle(marker))
    pickle.loads(payload)  # the payload works: unpickling it does create the marker ...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(DataError, match=r"not a parquet file|binary data|not an h5ad file|Cannot tell the format"):
        load_table(io.BytesIO(payload), target="label", file_name=name)
    assert not marker.exists()  # ... and the loader never did


def test_gzip_bomb_is_refused_before_parsing(monkeypatch):
    """64 MiB of zeros in 64 KiB: refused once the *decompressed* size passes the table limit."""
    monkeypatch.setattr(limits, "MAX_TABLE_FILE_BYTES", 1 << 20)
    bomb = gzip.compress(b"f0,f1,label\n" + b"0" * (64 << 20), 9)
    assert len(bomb) < (1 << 20) // 8  # small on the wire, so the compressed-size guard alone would pass it
    with pytest.raises(DataError, match=r"'bomb.csv.gz' decompresses to more than 1\.0 MiB.*not loaded"):
        load_table(bomb, target="label", file_name="bomb.csv.gz")
    with pytest.raises(DataError, match=r"decompresses to more than"):  # same when named plain .csv
        load_table(bomb, target="label", file_name="bomb.csv")
    ok = gzip.compress(csv(table()))
    assert load_table(ok, target="label", file_name="fine.csv.gz").n_features == 3  # small gzip still loads


def test_gzipped_table_is_decompressed_once_before_parsing(monkeypatch):
    """The size bound rides on the scan's pass: the whole file inflates twice (scan, pandas), not three times."""
    inflated = []
    real_read = gzip._GzipReader.read

    def counting_read(self, size=-1):
        data = real_read(self, size)
        inflated.append(len(data))
        return data

    monkeypatch.setattr(gzip._GzipReader, "read", counting_read)
    text = csv(table(n=20_000, d=20))  # ~1.3 MB: the few small header and sniffing reads are noise
    load_table(gzip.compress(text), target="label", file_name="big.csv.gz")
    assert 2 * len(text) <= sum(inflated) < 2.5 * len(text)


def test_size_limits_name_the_numbers(monkeypatch):
    monkeypatch.setattr(limits, "MAX_DENSE_VALUES", 50)
    with pytest.raises(DataError, match=rf"{N} rows × 3 features = {3 * N} values exceeds the in-memory limit of 50"):
        load_table(csv(table()), target="label", file_name="a.csv")
    monkeypatch.setattr(limits, "MAX_TABLE_FILE_BYTES", 100)
    with pytest.raises(DataError, match=r"'a.csv' is .* bytes; tables above 100 bytes are not loaded"):
        load_table(csv(table()), target="label", file_name="a.csv")


def test_path_problems(tmp_path: Path):
    with pytest.raises(DataError, match="File not found"):
        load_table(tmp_path / "missing.csv", target="label")
    with pytest.raises(DataError, match="is a folder"):
        load_table(tmp_path, target="label")
    with pytest.raises(DataError, match="Cannot read data from a int"):
        load_table(12345, target="label")  # type: ignore[arg-type]


def test_hundred_thousand_columns_load_or_hit_the_limit(monkeypatch):
    """A 100,000-column table loads with the right shape (and fast enough), or names the memory limit."""
    d = 100_000
    values = np.random.default_rng(1).integers(0, 9, size=(12, d)).astype(str)
    lines = [",".join(f"c{j}" for j in range(d)) + ",label"]
    lines += [",".join(row) + f",{i % 2}" for i, row in enumerate(values)]
    data = ("\n".join(lines) + "\n").encode()
    dataset = load_table(data, target="label", file_name="wide.csv")
    assert dataset.X.shape == (12, d) and dataset.feature_names[-1] == f"c{d - 1}"
    np.testing.assert_array_equal(dataset.X[:, 5], values[:, 5].astype(np.float32))
    monkeypatch.setattr(limits, "MAX_DENSE_VALUES", 1_000_000)
    with pytest.raises(DataError, match=r"12 rows × 100000 features = 1,200,000 values exceeds"):
        load_table(data, target="label", file_name="wide.csv")


# ----------------------------------------------- inputs that are odd but fine
def test_class_with_a_single_sample_still_gives_valid_traces():
    """Not an error: stratification falls back and every method returns a full trace."""
    frame = table(n=30)
    frame.loc[0, "label"] = 2  # class "2" has one sample
    dataset = load_table(csv(frame), target="label", file_name="rare.csv")
    assert dataset.class_names == ["0", "1", "2"]
    for method, options in (("sa", {"epochs": 3, "device": "cpu"}), ("omp", {})):
        trace = run_method(dataset, method, 2, **options)
        assert trace.k == 2 and len(set(trace.selected)) == 2 and not trace.stopped_early


def test_non_utf8_text_is_read_as_latin1():
    frame = table().rename(columns={"f0": "Größe", "label": "Klasse"})
    dataset = load_table(csv(frame).decode().encode("latin-1"), target="Klasse", file_name="de.csv")
    assert dataset.feature_names == ["Größe", "f1", "f2"]


# ------------------------------------------------------------- parameters
def _dataset():
    return make_planted(n_samples=60, n_features=6, n_informative=2, random_state=0)


PARAMETER_CASES = [
    # SA's parameter rules are declared once (SequentialAttentionSelector._parameter_constraints); scikit-learn's
    # message names the parameter, the allowed range and the value, and SA adds what the parameter is for
    ("k=0", "sa", 0, {}, DataError, r"n_features_to_select must be a positive whole number, got 0"),
    ("k<0", "sa", -3, {}, DataError, r"n_features_to_select must be a positive whole number, got -3"),
    ("k=2.5", "sa", 2.5, {}, DataError, r"whole number, got 2\.5"),
    ("k>n", "sa", 7, {}, DataError, r"n_features_to_select=7 is larger than the number of features \(6\)"),
    ("omp k>n", "omp", 99, {}, DataError, r"k=99 is larger than the number of features \(6\)"),
    ("omp k=0", "omp", 0, {}, DataError, r"positive whole number"),
    ("epochs<0", "sa", 2, {"epochs": -5}, ValueError,
     r"'epochs' parameter .* must be an int in the range \[1, inf\) or None\. Got -5 .*None \(the default\) trains "
     r"until the picks have converged"),
    ("epochs=0", "sa", 2, {"epochs": 0}, ValueError, r"'epochs' parameter .* int in the range \[1, inf\) or None"),
    ("epochs=1.5", "sa", 2, {"epochs": 1.5}, ValueError, r"'epochs' parameter .* int in the range .* Got 1\.5"),
    ("lr=nan", "sa", 2, {"learning_rate": float("nan")}, ValueError,
     r"'learning_rate' parameter .* float in the range \(0\.0, 10\.0\] or None\. Got nan"),
    ("lr=inf", "sa", 2, {"learning_rate": float("inf")}, ValueError, r"'learning_rate' parameter .* Got inf"),
    ("lr<0", "sa", 2, {"learning_rate": -0.01}, ValueError, r"'learning_rate' parameter .* Got -0\.01"),
    ("lr huge", "sa", 2, {"learning_rate": 1e38}, ValueError,
     r"range \(0\.0, 10\.0\] .* Got 1e\+38 .*typically 1e-3 to 0\.05; beyond 10 it only diverges"),
    ("batch=0", "sa", 2, {"batch_size": 0}, ValueError, r"'batch_size' parameter .* int in the range \[1, inf\)"),
    ("hidden=0", "sa", 2, {"hidden": 0}, ValueError, r"'hidden' parameter .* int in the range \[1, inf\)\. Got 0"),
    ("lr_decay=nan", "sa", 2, {"lr_decay": float("nan")}, ValueError,
     r"'lr_decay' parameter .* range \(0\.0, 1\.0\]\. Got nan"),
    ("lr_decay<0", "sa", 2, {"lr_decay": -1.0}, ValueError, r"'lr_decay' parameter .* range \(0\.0, 1\.0\]"),
    ("lr_decay>1", "sa", 2, {"lr_decay": 1e12}, ValueError, r"'lr_decay' parameter .* range \(0\.0, 1\.0\]"),
    ("l2<0", "sa", 2, {"model": "linear", "l2": -1.0}, ValueError, r"'l2' parameter .* \[0\.0, inf\).* finite number ≥ 0"),
    ("l2=nan", "sa", 2, {"model": "linear", "l2": float("nan")}, ValueError, r"'l2' parameter .* Got nan"),
    ("seed<0", "sa", 2, {"random_state": -1}, ValueError, r"'random_state' parameter .* \[0, 4294967295\] or None"),
    ("seed=str", "sa", 2, {"random_state": "abc"}, ValueError, r"'random_state' parameter .* Got 'abc'"),
    ("val=nan", "sa", 2, {"validation_fraction": float("nan")}, ValueError,
     r"'validation_fraction' parameter .* range \[0\.0, 0\.9\)\. Got nan"),
    ("val=0.95", "sa", 2, {"validation_fraction": 0.95}, ValueError, r"'validation_fraction' parameter .* Got 0\.95"),
    ("max_seconds=0", "sa", 2, {"max_seconds": 0}, ValueError,
     r"'max_seconds' parameter .* range \(0\.0, inf\) or None\. Got 0"),
    ("model", "sa", 2, {"model": "rnn"}, ValueError, r"'model' parameter .* among \{.*'mlp'.*\}\. Got 'rnn'"),
    ("device", "sa", 2, {"device": "tpu"}, ValueError, r"Unknown device 'tpu'"),
    ("pinned range", "sa", 2, {"pinned": [99]}, ValueError, r"pinned holds indices outside 0\.\.5: \[99\]"),
    ("pin+ban", "sa", 2, {"pinned": [1], "banned": [1]}, ValueError, r"both pinned and banned: \[1\]"),
    ("k>candidates", "sa", 2, {"pinned": [0, 1, 2], "banned": [3, 4]}, ValueError,
     r"only 1 features can be picked \(6 features, 3 pinned, 2 banned\)"),
    ("method", "magic", 2, {}, ValueError, r"Unknown method 'magic'; available: sa, omp"),
    ("banned=1.5", "sa", 2, {"banned": [1.5]}, ValueError,
     r"banned must hold feature indices \(whole numbers\), got \[1\.5\]"),
    ("pinned=name", "omp", 2, {"pinned": ["f0"]}, ValueError,
     r"pinned must hold feature indices \(whole numbers\), got \['f0'\]"),
]


@pytest.mark.parametrize(("label", "method", "k", "options", "error", "message"), PARAMETER_CASES,
                         ids=[c[0] for c in PARAMETER_CASES])
def test_bad_parameters_raise_typed_errors(label, method, k, options, error, message):
    options = {"device": "cpu", **options} if method == "sa" else options
    with pytest.raises(error, match=message):
        run_method(_dataset(), method, k, **options)


def test_too_few_steps_for_the_phases_warns_and_trains_the_fewest_that_hold_them():
    """epochs=1 of 48-row batches is one optimizer step for 6 phases: the user gets the 6 picks, told how."""
    with pytest.warns(UserWarning, match=r"epochs=1 gives 1 optimizer steps .* too few for 6 selection phases; "
                                         r"training 6 steps instead"):
        trace = run_method(_dataset(), "sa", 6, device="cpu", epochs=1, batch_size=48, gain_model="none")
    assert trace.k == 6 and not trace.stopped_early and trace.settings["total_steps"] == 6
    assert "training 6 steps instead" in trace.settings["budget_note"]  # the trace says so too


def test_diverging_training_says_lower_the_learning_rate(monkeypatch):
    """Valid settings do not diverge on this data, so lift the learning-rate cap to force it."""
    uncapped = [Interval(Real, 0, None, closed="neither"), None]
    for name in ("learning_rate", "attention_learning_rate"):
        monkeypatch.setitem(SequentialAttentionSelector._parameter_constraints, name, uncapped)
    with pytest.raises(ValueError, match=r"Training diverged .*lower the learning rate"):
        run_method(_dataset(), "sa", 2, device="cpu", learning_rate=1e10, attention_learning_rate=1e10, epochs=3,
                   gain_model="none")


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.ones((10, 3)) * np.nan, np.arange(10) % 2, r"NaN"),
        (np.ones(10), np.arange(10) % 2, r"2D array"),
        (np.ones((10, 3)), np.arange(9) % 2, r"inconsistent numbers of samples"),
        (np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10), r"single class"),
        (np.random.default_rng(0).normal(size=(2, 3)), np.array([0, 1]), r"training sample|at least 2"),
    ],
    ids=["nan", "1d", "lengths", "one-class", "two-rows"],
)
def test_selector_fit_rejects_bad_arrays(X, y, message):
    with pytest.raises(ValueError, match=message):
        SequentialAttentionSelector(1, device="cpu", epochs=2, task="classification").fit(X, y)


# --------------------------------------------------------- outputs on disk
def test_cli_bad_input_exits_2_and_leaves_output_untouched(tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv(table().assign(f1=np.nan)))
    fresh, existing = tmp_path / "new.json", tmp_path / "old.json"
    existing.write_text("previous result")
    for out in (fresh, existing):
        code = cli_main(["select", "--data", str(bad), "--target", "label", "-k", "2", "--out", str(out), "--quiet"])
        assert code == EXIT_BAD_INPUT
        assert "NaN/inf" in capsys.readouterr().err
    good = tmp_path / "good.csv"
    good.write_bytes(csv(table()))
    code = cli_main(["select", "--data", str(good), "--target", "label", "-k", "9", "--method", "omp",
                     "--out", str(fresh), "--quiet"])
    assert code == EXIT_BAD_INPUT and "k=9 is larger than the number of features (3)" in capsys.readouterr().err
    assert not fresh.exists()
    assert existing.read_text() == "previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "old.json"]


def test_trace_writes_are_atomic(tmp_path: Path, monkeypatch):
    trace = run_method(_dataset(), "omp", 2)
    out = tmp_path / "trace.json"
    out.write_text("old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        trace.to_json(out)
    with pytest.raises(OSError, match="disk full"):
        trace.to_csv(tmp_path / "picks.csv")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.json"]  # no temp files left behind
    monkeypatch.undo()
    trace.to_json(out)
    assert SelectionTrace.from_json(out).selected == trace.selected
    write_atomically(tmp_path / "x.txt", "ok")
    assert (tmp_path / "x.txt").read_text() == "ok" and (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644



# ------------------------------------- memory and CPU bombs, measured in a child process
#: What the issue demands of a hostile file: refused (or safely skipped) this fast, with this little memory.
BOMB_SECONDS, BOMB_PEAK_MB = 10.0, 1024


def test_far_corner_workbook_is_refused_fast_and_small():
    """5.6 KB with one cell at XFD1048576: pandas' reader padded a 1M × 16k grid (7+ GB) before."""
    result = measure_in_child("""
from tests.support.bad_inputs_corpus import far_corner_xlsx
from seqattn.data.tables import load_table
data = far_corner_xlsx()
assert len(data) < 10_000
measure(lambda: load_table(data, target="label", file_name="corner.xlsx"))
""")
    assert result["outcome"].startswith("DataError: Sheet 'Sheet1' of 'corner.xlsx' spans 1,048,576 rows × 16,384 ")
    assert result["seconds"] < BOMB_SECONDS and result["peak_mb"] < BOMB_PEAK_MB, result


@pytest.mark.slow
def test_workbook_with_0_9_gb_of_sheet_xml_is_refused_fast_and_small(tmp_path: Path):
    """0.9 GB of sheet XML in a ~5 MB file (under the old 1 GiB unpacked guard): refused from the zip directory."""
    path = huge_sheet_xlsx(tmp_path / "xml_bomb.xlsx", 900 << 20)
    assert path.stat().st_size < 10 << 20
    result = measure_in_child(f"""
from seqattn.data.tables import load_table
measure(lambda: load_table({str(path)!r}, target="label"))
""")
    assert result["outcome"].startswith("DataError: 'xml_bomb.xlsx': the sheet 'xl/worksheets/sheet1.xml' unpacks "
                                        "to 900.0 MiB of XML"), result
    assert result["seconds"] < BOMB_SECONDS and result["peak_mb"] < BOMB_PEAK_MB, result


def test_sheet_xml_is_also_counted_while_decompressing(tmp_path: Path, monkeypatch):
    """The zip directory is checked first; should it pass (a lying or future zip reader), the bytes actually
    decompressed are counted too, and the parse stops at the limit."""
    from seqattn.data import xlsx

    path = huge_sheet_xlsx(tmp_path / "big.xlsx", 3 << 20)
    monkeypatch.setattr(xlsx, "_check_part_sizes", lambda archive, name: None)
    monkeypatch.setattr(xlsx, "MAX_XLSX_SHEET_BYTES", 1 << 20)
    with pytest.raises(DataError, match=r"the sheet 'xl/worksheets/sheet1.xml' unpacks to more than 1\.0 MiB"):
        load_table(path, target="label")


def test_workbook_parse_time_is_bounded(tmp_path: Path, monkeypatch):
    from seqattn.data import xlsx

    path = huge_sheet_xlsx(tmp_path / "slow.xlsx", 2 << 20)
    monkeypatch.setattr(xlsx, "MAX_XLSX_SECONDS", 0.0)
    with pytest.raises(DataError, match=r"took more than 0 s to parse, so it was stopped.*save the sheet as CSV"):
        load_table(path, target="label")


def test_workbook_used_range_is_bounded_while_streaming(monkeypatch):
    """A dense sheet just over the cell limit is refused at the first cell past it, not after the parse."""
    from seqattn.data import xlsx
    from tests.support.bad_inputs_corpus import xlsx_bytes

    monkeypatch.setattr(xlsx, "MAX_XLSX_CELLS", 60)
    data = xlsx_bytes({"Sheet1": [["f0", "f1", "label"]] + [[i, i, i % 2] for i in range(30)]})
    with pytest.raises(DataError, match=r"spans 21 rows × 3 columns \(a value in row 21, column 1\); sheets above "
                                         r"60 cells are not read"):
        load_table(data, target="label", file_name="dense.xlsx")
    monkeypatch.setattr(xlsx, "MAX_XLSX_CELLS", 93)
    assert load_table(data, target="label", file_name="dense.xlsx").n_samples == 30  # 31 × 3 = 93: at the limit


def test_workbooks_read_as_pandas_reads_them():
    """Numbers, whole numbers, text, dates, booleans, empty cells and errors: the same frame as read_excel."""
    import datetime

    from seqattn.data.sources import open_source
    from seqattn.data.xlsx import read_xlsx
    from tests.support.bad_inputs_corpus import xlsx_bytes

    rows = [["x", "n", "when", "flag", "text", "label"]]
    rows += [[i * 1.5, i, datetime.datetime(2024, 1, 1 + i % 28), bool(i % 2), None if i % 3 else "t", f"c{i % 3}"]
             for i in range(30)]
    data = xlsx_bytes({"Sheet1": rows}, cells={"B5": "=1/0", "G40": 7})
    expected = pd.read_excel(io.BytesIO(data), engine="openpyxl")
    frame, header = read_xlsx(open_source(data, "t.xlsx"), [])
    pd.testing.assert_frame_equal(frame, expected)
    assert header == [str(c) for c in expected.columns]


def test_single_line_text_file_is_refused_fast_and_small(tmp_path: Path):
    """A text file with no line break (here 48 MB; the issue's was 1 GB): refused after reading 16 MiB."""
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"f0,f1,label," + b"1234567," * (6 << 20))
    result = measure_in_child(f"""
from seqattn.data.tables import load_table, list_columns
measure(lambda: list_columns({str(path)!r}))
measure(lambda: load_table({str(path)!r}, target="label"))
""")
    assert result["outcome"].startswith("DataError: 'one_line.csv' has no line break in its first 16.0 MiB: it is "
                                        "not a table"), result
    assert result["seconds"] < BOMB_SECONDS and result["peak_mb"] < BOMB_PEAK_MB, result


@pytest.mark.parametrize("as_path", [False, True], ids=["upload", "path"])
def test_obsm_decompression_bomb_is_never_read(as_path: bool, tmp_path: Path):
    """obsm declares 12 GB (gzip, no chunk written): the selection never reads obsm, so it loads in little memory."""
    from tests.support.bad_inputs_corpus import declared_bomb_h5ad

    data = declared_bomb_h5ad(tmp_path, "obsm/X_bomb", (N, 125_000_000), name="obsm_bomb.h5ad")
    assert len(data) < 100_000
    source = repr(str(tmp_path / "obsm_bomb.h5ad")) if as_path else (
        f"open({str(tmp_path / 'obsm_bomb.h5ad')!r}, 'rb').read(), file_name='obsm_bomb.h5ad'")
    result = measure_in_child(f"""
from seqattn.data.tables import load_table
measure(lambda: print(load_table({source}, target="cell_type").feature_names))
""")
    assert result["outcome"] == "loaded" and result["peak_mb"] < BOMB_PEAK_MB, result


def test_decompression_bomb_in_a_read_element_is_refused_naming_it(tmp_path: Path):
    """The same bomb as a layer the user picks: refused before reading, naming the dataset."""
    from tests.support.bad_inputs_corpus import declared_bomb_h5ad

    declared_bomb_h5ad(tmp_path, "layers/counts", (N, 125_000_000), name="layer_bomb.h5ad")
    path = tmp_path / "layer_bomb.h5ad"
    result = measure_in_child(f"""
from seqattn.data.tables import load_table
measure(lambda: load_table({str(path)!r}, target="cell_type", layer="counts"))
""")
    assert re.match(r"DataError: 'layer_bomb.h5ad': dataset 'layers/counts' declares 11\.2 GiB once decompressed "
                    r"\(shape \(24, 125000000\), float32\), above ", result["outcome"]), result
    assert result["peak_mb"] < BOMB_PEAK_MB, result


def test_read_budget_follows_available_memory(monkeypatch):
    from seqattn.data import limits

    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 3 << 30)
    assert limits.read_budget() == (1 << 30, "a third of the memory available now (3.0 GiB)")
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: None)
    assert limits.read_budget() == (limits.MAX_READ_BYTES, "the read limit of 4.0 GiB")
    assert limits.available_memory_bytes.__module__  # the real probe runs on this machine:
    monkeypatch.undo()
    found = limits.available_memory_bytes()
    assert found is None or 0 < found < 1 << 50


def test_small_read_budget_refuses_an_ordinary_h5ad_naming_the_dataset(tmp_path: Path, monkeypatch):
    from seqattn.data import limits

    path = anndata_file(tmp_path / "cells.h5ad")
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 3 * 300)
    with pytest.raises(DataError, match=r"dataset 'X' declares 480 bytes once decompressed \(shape \(24, 5\), "
                                        r"float32\), above a third of the memory available now \(900 bytes\)"):
        load_table(path, target="cell_type")


# ----------------------------------------------------------------- text bounds
@pytest.mark.parametrize("utf8_first", [True, False], ids=["utf8-then-latin1", "latin1-then-utf8"])
def test_mixed_encodings_name_both_lines(utf8_first: bool):
    utf8 = "".join(f"{i},café\n" for i in range(12)).encode("utf-8")
    latin1 = "".join(f"{i},thé\n" for i in range(12)).encode("latin-1")
    data = b"f0,label\n" + (utf8 + latin1 if utf8_first else latin1 + utf8)
    first, second = (2, 14) if utf8_first else (14, 2)
    with pytest.raises(DataError, match=rf"mixes two text encodings: line {first} is UTF-8 \(e\.g\. '0,café'\) but "
                                        rf"line {second} is not valid UTF-8"):
        load_table(data, target="label", file_name="mixed.csv")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1"])
def test_files_in_one_encoding_still_load(encoding: str):
    text = "Größe,label\n" + "".join(f"{i},{'café' if i % 2 else 'thé'}\n" for i in range(20))
    dataset = load_table(text.encode(encoding), target="label", file_name="one.csv")
    assert dataset.feature_names == ["Größe"] and dataset.class_names == ["café", "thé"]


def test_over_long_row_and_too_many_columns_are_refused_before_pandas(monkeypatch):
    from seqattn.data import text_checks

    def no_pandas(*args, **kwargs):
        raise AssertionError("pandas was asked to parse a file that should have been refused")

    monkeypatch.setattr(pd, "read_csv", no_pandas)
    monkeypatch.setattr(text_checks, "MAX_LINE_BYTES", 100)
    with pytest.raises(DataError, match=r"Line 3 of 'long.csv' is longer than 100 bytes"):
        load_table(b"f0,label\n1,0\n" + b"2" * 200 + b",1\n", target="label", file_name="long.csv")
    monkeypatch.setattr(text_checks, "MAX_TABLE_COLUMNS", 3)
    with pytest.raises(DataError, match=r"'wide.csv' has 4 columns in its header; tables above 3 columns"):
        load_table(b"a,b,c,label\n1,2,3,0\n", target="label", file_name="wide.csv")
    monkeypatch.setattr(limits, "MAX_DENSE_VALUES", 50)
    with pytest.raises(DataError, match=r"about 60 rows × 1 features = 60 values exceeds .*counted before parsing"):
        load_table(b"f0,label\n" + b"1,0\n" * 60, target="label", file_name="tall.csv")


# -------------------------------------------------------------- CLI arguments
def _cli(tmp_path: Path, *args: str) -> list[str]:
    return ["select", "--data", "digits", "-k", "2", "--quiet", "--out", str(tmp_path / "o.json"), *args]


@pytest.fixture
def no_computation(monkeypatch):
    """Fail the test if the CLI starts a selection: its checks must come first."""
    import seqattn.selectors as selectors

    def refuse(*args, **kwargs):
        raise AssertionError("the CLI started the computation before refusing its arguments")

    monkeypatch.setattr(selectors, "run_method", refuse)


@pytest.mark.parametrize(("extra", "message"), [
    (["--method", "sa", "--batch-size", "1"], "--batch-size must give at least 2 rows: batch normalisation needs two"),
    (["--method", "anova", "--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1."),
    (["--method", "anova", "--top-genes", "0"], "--top-genes must be a positive integer"),
], ids=["batch-size-1", "seed-negative", "top-genes-0"])
def test_cli_numbers_are_refused_in_cli_terms(extra, message, tmp_path: Path, capsys, no_computation):
    assert cli_main(_cli(tmp_path, *extra)) == EXIT_BAD_INPUT
    assert f"error: {message}" in capsys.readouterr().err


def test_cli_out_is_checked_before_the_computation(tmp_path: Path, capsys, no_computation):
    folder = tmp_path / "results.json"
    folder.mkdir()
    assert cli_main(["select", "--data", "digits", "-k", "2", "--out", str(folder)]) == EXIT_BAD_INPUT
    assert f"--out {str(folder)!r} is a folder; give a file name in it" in capsys.readouterr().err
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    assert cli_main(["select", "--data", "digits", "-k", "2", "--out", str(blocker / "sub" / "o.json")]) == 2
    assert f"{str(blocker)!r} is a file, not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "results.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_cli_out_in_a_read_only_folder_is_refused_first(tmp_path: Path, capsys, no_computation):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert cli_main(["select", "--data", "digits", "-k", "2", "--out", str(locked / "o.json")]) == EXIT_BAD_INPUT
    assert "cannot write in" in capsys.readouterr().err


def test_data_naming_a_fifo_is_refused_at_once(tmp_path: Path):
    """Reading a FIFO blocks until someone writes to it: the CLI hung there before."""
    import subprocess
    import sys

    fifo = tmp_path / "table.csv"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "seqattn", "select", "--data", str(fifo), "--target", "label",
                           "-k", "2", "--method", "anova", "--out", str(tmp_path / "o.json")],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert done.returncode == EXIT_BAD_INPUT
    assert f"error: {str(fifo)!r} is not a regular file (a pipe, socket or device)" in done.stderr
    with pytest.raises(DataError, match="is not a regular file"):
        load_table(fifo, target="label")


def test_backed_chunk_reads_are_bounded_by_the_read_budget(tmp_path: Path, monkeypatch):
    """Backed rows are read in chunks sized from the average row; a chunk whose row pointers claim more
    stored values than one read may hold is refused before it is read."""
    from seqattn.data import limits
    from seqattn.data.h5ad_backed import write_planted_counts_h5ad

    write_planted_counts_h5ad(tmp_path / "atlas.h5ad", 200, 40, n_types=2, markers_per_type=2, random_state=0)
    dataset = load_table(tmp_path / "atlas.h5ad", "cell_type", backed=True)
    assert dataset.X.read(np.arange(50)).shape == (50, dataset.n_features)
    monkeypatch.setattr(limits, "read_budget", lambda: (1000, "the test's budget of 1000 bytes"))
    with pytest.raises(DataError, match=r"Rows 0–50 of X in 'atlas.h5ad' claim [\d,]+ stored values .*above the "
                                        r"test's budget of 1000 bytes"):
        dataset.X.read(np.arange(50))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_truncated_gzipped_table_is_refused_with_a_clear_message(encoding):
    rng = np.random.default_rng(0)
    text = "f0,f1,label\n" + "".join(f"{a:.6f},{b:.6f},{int(a > b)}\n" for a, b in rng.random((20_000, 2)))
    packed = gzip.compress(text.encode(encoding), 6)
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_table(packed[: len(packed) * 3 // 4], target="label", file_name="cut.csv.gz")
