"""The bad-input corpus through the app (Streamlit AppTest): a message, never a traceback.

Each upload must show an ``st.error`` that carries the library's own
``DataError`` text (the same words a CLI user gets, with the advice put in
the Data page's words by ``app_support.messages`` and markdown-escaped),
raise nothing, and leave the previous data set current. Bad Sequential Attention settings and the
training time limit are driven through the SA page the same way.
"""
from __future__ import annotations

import gzip
import io
import pickle
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from seqattn.data import limits
from seqattn.data import DataError
from seqattn.data.tables import list_columns, load_table
from seqattn.safe_text import escape_markdown, unescape_markdown
from app_support.messages import data_page_message
from tests.support.bad_inputs_corpus import BAD_FILES, ExecutesOnUnpickle, csv, table

APP = str(Path(__file__).resolve().parents[2] / "app.py")
RUN_TIMEOUT_S = 120

# Cases whose error does not depend on which target column the user picks
# (in the app the target comes from a picker, so "target not found" cannot happen).
APP_CASES = [
    "empty.csv", "junk.csv", "header_only.csv", "one_row.csv", "all_nan.csv", "inf.csv", "overflow.csv",
    "strings.csv", "mixed.csv", "dupes.csv", "constant_features.csv", "long_line.csv", "long_first_row.csv",
    "long_field.csv", "open_quote.csv", "blank_lines.csv", "utf16_bad.csv", "zipped.csv", "cut.csv.gz",
    "cut.parquet", "renamed.parquet", "renamed.h5ad", "truncated.h5ad", "plain.h5ad", "nan_genes.h5ad",
    "zero_cells.h5ad", "tiny.h5ad", "cells.xlsx", "renamed.xlsx", "old.xls", "ids.csv",
    # files that read other files, crash the reader, or exhaust memory / CPU
    "external_storage.h5ad", "virtual_x.h5ad", "external_link.h5ad", "soft_link.h5ad", "categories_bomb.h5ad",
    "far_corner.xlsx", "encrypted.xlsx", "renamed_xls.xlsx", "second_sheet.xlsx", "single_line.csv",
    "mixed_encoding.csv",
]
BY_NAME = {case.name: case for case in BAD_FILES}


def data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.radio(key="data_source").set_value("Upload").run()
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.get("file_uploader")[0].upload(name, data).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def library_message(name: str, data: bytes, target: str | None) -> str:
    """What the library says about this upload with the target the page picked."""
    try:
        list_columns(io.BytesIO(data), file_name=name)
        load_table(io.BytesIO(data), target=target, file_name=name)
    except DataError as exc:
        return str(exc)
    raise AssertionError(f"{name} loaded without error")


def assert_shows_library_error(at: AppTest, name: str, data: bytes) -> str:
    """Checks the page shows the library's message (in the page's words); returns the library's message."""
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    target = at.main.selectbox[0].value if len(at.main.selectbox) else None
    expected = library_message(name, data, target)
    try:  # the page offers 'Missing values' / 'Drop columns' once it has read a table's columns
        table_controls = list_columns(io.BytesIO(data), file_name=name)["format"] != "h5ad"
    except DataError:
        table_controls = False
    # the typed DataError path (not the generic one), in the page's words, escaped for markdown
    shown = data_page_message(expected, table_controls=table_controls)
    assert errors[0] == escape_markdown(f"Could not use {name}: {shown}")
    assert at.session_state["dataset_key"] == "builtin:digits"  # the previous data set stays current
    return expected


@pytest.mark.parametrize("name", APP_CASES)
def test_bad_upload_shows_the_library_message(name: str, tmp_path: Path):
    case = BY_NAME[name]
    data = case.make(tmp_path)
    at = upload(data_page(), name, data)
    assert re.search(case.message, assert_shows_library_error(at, name, data))


def test_pickle_upload_is_refused_and_not_executed(tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(ExecutesOnUnpickle(marker))
    at = upload(data_page(), "model.parquet", payload)
    assert "not a parquet file" in assert_shows_library_error(at, "model.parquet", payload)
    assert not marker.exists()


def test_gzip_bomb_upload_is_refused(monkeypatch):
    monkeypatch.setattr(limits, "MAX_TABLE_FILE_BYTES", 1 << 20)
    bomb = gzip.compress(b"f0,f1,label\n" + b"0,1,0\n" * (3 << 20), 9)
    at = upload(data_page(), "bomb.csv.gz", bomb)
    assert "decompresses to more than 1.0 MiB" in assert_shows_library_error(at, "bomb.csv.gz", bomb)


def test_a_good_upload_after_a_bad_one_works(tmp_path: Path):
    at = upload(data_page(), "junk.csv", BY_NAME["junk.csv"].make(tmp_path))
    assert at.error
    upload(at, "good.csv", csv(table()))
    assert not at.error and at.session_state["dataset"].feature_names == ["f0", "f1", "f2"]


# ------------------------------------------------------------- SA settings
def sa_page_on(at: AppTest) -> AppTest:
    at.switch_page("pages/sequential_attention.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_and_collect(at: AppTest) -> AppTest:
    at.button(key="sa_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    try:
        job = at.session_state["sa_job"]
    except KeyError:  # a run that failed at once can be collected within the same script run
        return at
    assert job.wait(RUN_TIMEOUT_S), "SA did not finish"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_too_few_epochs_for_k_still_gives_every_pick_and_says_why():
    """Issue 23: a fixed budget too short for k phases is extended to the fewest steps that hold them
    (a warning, not an error), and the trace records it."""
    at = data_page()
    at.radio(key="data_source").set_value("Built-in").run()
    at = sa_page_on(at)  # digits: 1797 samples, 64 features
    at.number_input(key="sa_k").set_value(20)
    at.number_input(key="sa_epochs").set_value(1)
    run_and_collect(at)
    assert not at.error
    trace = at.session_state["sa_trace"]
    assert trace.k == 20 and not trace.stopped_early
    assert "too few for 20 selection phases; training 22 steps instead" in trace.settings["budget_note"]
    shown = [unescape_markdown(w.value) for w in at.warning]
    assert trace.settings["budget_note"] in shown  # the page says so beside the results


def test_pins_leaving_too_few_candidates_show_the_counts():
    at = upload(data_page(), "small.csv", csv(table()))
    at = sa_page_on(at)
    at.multiselect(key="sa_pinned").select("f0").select("f1")
    at.number_input(key="sa_k").set_value(2)
    run_and_collect(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert "only 1 features can be picked (3 features, 2 pinned, 0 banned)" in errors[0]


@pytest.mark.slow
class _StepClock:
    """A clock for the trainer that advances a fixed tick per reading: the time limit then falls after the same
    number of training steps on any machine, however loaded (a wall clock made this test pass or fail by load)."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def _sa_page_with_time_limit(monkeypatch, limit: float, tick: float) -> AppTest:
    from app_support import state
    from seqattn.selectors import sa_trainer

    monkeypatch.setattr(state, "MAX_TRAINING_SECONDS", limit)
    monkeypatch.setattr(sa_trainer, "time", _StepClock(tick))
    at = data_page()
    at.radio(key="data_source").set_value("Built-in").run()
    at = sa_page_on(at)
    at.number_input(key="sa_k").set_value(10)
    at.number_input(key="sa_epochs").set_value(1000)  # many minutes without the limit
    run_and_collect(at)
    return at


def test_training_time_limit_stops_and_keeps_the_picks(monkeypatch):
    at = _sa_page_with_time_limit(monkeypatch, limit=3.0, tick=0.001)  # 3,000 clock readings: a few phases
    trace = at.session_state["sa_trace"]
    assert trace.stopped_early and trace.settings["stop_reason"] == "time limit" and 0 < trace.k < 10
    assert any(f"Stopped at the training time limit (3 s): kept the {trace.k} pixels picked so far" in w.value
               for w in at.warning), [w.value for w in at.warning]


def test_a_time_limit_before_the_first_pick_says_so_not_stop_pressed(monkeypatch):
    at = _sa_page_with_time_limit(monkeypatch, limit=3.0, tick=1.0)  # the limit passes in the warm-up
    trace = at.session_state["sa_trace"]
    assert trace.stopped_early and trace.settings["stop_reason"] == "time limit" and trace.k == 0
    warnings = [w.value for w in at.warning]
    assert any("The training time limit (3 s) ran out before the first pick" in w for w in warnings), warnings
    assert not any("Stop" in w for w in warnings)


def test_crashing_virtual_dataset_upload_is_refused_and_the_server_lives(tmp_path: Path):
    """The upload that segfaulted the server (X mapped from itself), driven through the Data page in a
    separate process so that a crash would show as its exit status instead of killing the test run."""
    import json
    import os
    import subprocess
    import sys

    from tests.support.bad_inputs_corpus import virtual_x_h5ad

    path = tmp_path / "crash.h5ad"
    path.write_bytes(virtual_x_h5ad(tmp_path, None, "made.h5ad"))
    root = Path(APP).parent
    script = f"""
import json, sys
sys.path.insert(0, {str(root / "tests" / "app")!r})
from test_bad_inputs_app import data_page, upload
at = upload(data_page(), "crash.h5ad", open({str(path)!r}, "rb").read())
print("RESULT " + json.dumps({{"errors": [e.value for e in at.error], "key": at.session_state["dataset_key"]}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(root)), cwd=str(root))
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # before: -11 (segmentation fault)
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["errors"] == ["Could not use crash.h5ad: 'crash.h5ad': dataset 'X' is an HDF5 virtual dataset (its "
                                "values would come from 'X' in this same file); virtual datasets are refused. "
                                "anndata never writes these: write the file again with anndata (adata.write_h5ad) "
                                "from data held in memory, or upload a CSV/parquet."]
    assert result["key"] == "builtin:digits"
