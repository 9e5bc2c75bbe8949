"""Streamlit AppTest: Home, Data and Sequential Attention pages, driven through the real app shell."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
RUN_TIMEOUT_S = 120


def start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_sa_and_wait(at: AppTest) -> None:
    """Press Run, wait for the background job, rerun so the page collects the trace."""
    at.button(key="sa_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["sa_job"]
    assert job.wait(RUN_TIMEOUT_S), "SA did not finish in time"
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def animation_spec(at: AppTest) -> dict:
    charts = [c for c in at.get("plotly_chart") if "sa_animation" in c.proto.id]
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def dataframe_with(at: AppTest, column: str):
    """The one dataframe on the page that has ``column`` (AppTest does not expose dataframe keys)."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) == 1, [list(d.value.columns) for d in at.dataframe]
    return frames[0]


def test_home_renders_with_device_and_navigation():
    at = start()
    assert "Sequential Attention" in at.title[0].value
    assert any("Device in use" in m.value for m in at.markdown)
    assert at.sidebar.selectbox(key="device").value == "auto"
    assert "cpu" in at.sidebar.selectbox(key="device").options
    at.sidebar.selectbox(key="device").select("cpu").run()
    assert any("setting `cpu`" in m.value for m in at.markdown)
    from app_support.shell import PAGES

    quick_start = next(m.value for m in at.markdown if "**Data**" in m.value)
    assert all(f"**{title}**" in quick_start for _, title, _ in PAGES if title != "Home")  # every page named


def test_sa_page_opened_from_home_without_data_uses_digits_says_so_and_links_the_data_page():
    """Issue 23 item 8: Home's link to SA used to land on "No data set yet" with no way on."""
    at = start()
    assert any(link.proto.page == "sequential_attention" for link in at.get("page_link"))
    at = goto(at, "sequential_attention")
    assert at.session_state["dataset_key"] == "builtin:digits"
    assert any("No data set was chosen yet, so this page uses the built-in **digits**" in i.value for i in at.info)
    assert any(link.proto.page == "data" for link in at.main.get("page_link"))
    assert at.button(key="sa_run") and "sa_trace" not in at.session_state


def test_data_page_defaults_to_digits_and_switches_built_ins():
    at = goto(start(), "data")
    assert at.session_state["dataset_key"] == "builtin:digits"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["samples"] == "1797" and metrics["features"] == "64" and metrics["classes"] == "10"
    at.selectbox(key="builtin_name").select("diabetes").run()
    assert not at.exception
    assert at.session_state["dataset"].name == "diabetes"
    assert {m.label: m.value for m in at.metric}["task"] == "regression"
    # leaving and coming back keeps the choice instead of resetting it to digits
    goto(at, "home")
    goto(at, "data")
    assert at.session_state["dataset_key"] == "builtin:diabetes"


def test_csv_upload_with_target_picker():
    at = goto(start(), "data")
    at.radio(key="data_source").set_value("Upload").run()
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60))
    at.get("file_uploader")[0].upload("toy.csv", f"a,b,label\n{rows}\n".encode(), "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    dataset = at.session_state["dataset"]
    assert dataset.feature_names == ["a", "b"] and dataset.task == "classification"
    assert at.session_state["dataset_key"].startswith("upload:")
    assert at.selectbox[0].value == "label"  # the hinted target column was preselected


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", b"", "empty"),
        ("noise.h5ad", b"this is not an HDF5 file at all", "noise.h5ad"),
        ("onecol.csv", b"label\n1\n0\n1\n", "onecol.csv"),
    ],
)
def test_bad_uploads_show_a_message_not_a_traceback(name, content, expected):
    at = goto(start(), "data")
    at.radio(key="data_source").set_value("Upload").run()
    at.get("file_uploader")[0].upload(name, content).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error, "expected an error message"
    assert expected in at.error[0].value
    assert at.session_state["dataset_key"] == "builtin:digits"  # the previous data set stays current


@pytest.mark.slow
def test_sa_run_on_digits_with_pin_and_ban_produces_trace_table_and_animation():
    at = goto(start(), "data")
    goto(at, "sequential_attention")
    assert at.number_input(key="sa_k").value == 10  # digits default
    at.number_input(key="sa_k").set_value(3)
    at.number_input(key="sa_epochs").set_value(4)
    at.multiselect(key="sa_pinned").select("pixel (3,3)")
    at.multiselect(key="sa_banned").select("pixel (3,4)")
    run_sa_and_wait(at)

    trace = at.session_state["sa_trace"]
    assert trace.k == 3 and trace.method == "sa"
    assert trace.pinned == [27] and trace.banned == [28]
    assert not {27, 28} & set(trace.selected)
    table = dataframe_with(at, "marginal_gain")
    assert list(table["name"]) == ["pixel (3,3)"] + trace.selected_names  # the pinned pixel is listed first
    assert list(table["order"]) == [0, 1, 2, 3] and list(table["pinned"]) == [True, False, False, False]
    assert "confidence" in table.columns and "near_tie" in table.columns

    spec = animation_spec(at)
    assert len(spec["frames"]) == 3
    for t, frame in enumerate(spec["frames"]):
        bars = frame["data"][0]
        picked = bars["x"].index(trace.selected_names[t])
        assert bars["text"][picked] == f"#{t + 1}"
        assert "pixel (3,4)" not in bars["x"] and "pixel (3,3)" not in bars["x"]
        pixels = frame["data"][-1]  # digits is image data: pixel panel, pinned marked "P"
        assert pixels["text"] == ["P"] + [str(i + 1) for i in range(t + 1)]

    steps_text = " ".join(m.value for m in at.markdown)
    assert "pinned (always selected): pixel (3,3)" in steps_text
    assert "step 3: among" in steps_text

    # teaching view: true greedy gains beside attention at step 2
    at.slider(key="sa_teach_step_3").set_value(2)
    at.number_input(key="sa_teach_max").set_value(10)
    at.button(key="sa_teach_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    teach = dataframe_with(at, "attention_rank")
    assert len(teach) == 10 and teach["picked"].sum() <= 1
    assert any("Spearman" in m.label for m in at.metric)


def test_sa_page_flags_near_tie_picks():
    import numpy as np

    from seqattn.trace import SelectionTrace

    at = goto(goto(start(), "data"), "sequential_attention")
    names = [f"pixel ({r},{c})" for r in range(8) for c in range(8)]
    trace = SelectionTrace("sa", names, dataset="digits", metric_name="accuracy")
    clear = np.full(64, 0.5 / 63)
    clear[10] = 0.5
    trace.add_step(10, clear)
    tie = np.full(64, 1 / 63)
    tie[10], tie[20] = np.nan, 1.02 / 63
    trace.add_step(20, tie / np.nansum(tie))
    at.session_state["sa_trace"] = trace
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    assert "Pick 2 (pixel (2,4)" in warnings and "near-tie with pixel (0,0)" in warnings
    assert "Pick 1" not in warnings


def test_sa_page_says_plainly_when_stop_came_before_the_first_pick():
    from seqattn.trace import SelectionTrace

    at = goto(goto(start(), "data"), "sequential_attention")
    names = [f"pixel ({r},{c})" for r in range(8) for c in range(8)]
    at.session_state["sa_trace"] = SelectionTrace("sa", names, dataset="digits", metric_name="accuracy",
                                                  stopped_early=True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    assert "Stopped before the first pick: nothing was picked" in warnings
    assert "kept the 0" not in warnings


@pytest.mark.slow
def test_first_default_sa_run_on_digits_uses_the_automatic_budget_and_is_quick():
    at = goto(goto(start(), "data"), "sequential_attention")
    assert at.number_input(key="sa_epochs").value == 0  # automatic: no per-data-set epoch table
    started = time.monotonic()
    run_sa_and_wait(at)
    seconds = time.monotonic() - started
    trace = at.session_state["sa_trace"]
    assert trace.k == 10 and trace.settings["budget"] == "auto"
    assert seconds < 60, f"the first default run took {seconds:.1f} s"


@pytest.mark.slow
def test_stop_keeps_the_picks_so_far():
    at = goto(start(), "data")
    at.selectbox(key="builtin_name").select("breast_cancer").run()
    goto(at, "sequential_attention")
    at.number_input(key="sa_k").set_value(8)
    at.number_input(key="sa_epochs").set_value(400)  # minutes if left alone
    at.button(key="sa_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["sa_job"]
    deadline = time.monotonic() + 60
    while not any(line.startswith("pick") for line in list(job.messages)) and time.monotonic() < deadline:
        time.sleep(0.2)  # let it make at least one pick
    at.button(key="sa_stop").click().run()
    assert job.wait(RUN_TIMEOUT_S)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    trace = at.session_state["sa_trace"]
    assert trace.stopped_early
    assert 1 <= trace.k < 8
    assert any("Stopped early" in w.value for w in at.warning)


def test_sa_page_offers_a_reproduction_notebook_of_the_run():
    """The Downloads tab has "Notebook (.ipynb)"; what it serves is reproduction_notebook of the run
    (executed and compared with the app's picks in tests/unit/test_reproduce.py)."""
    from seqattn.reproduce import reproduction_notebook

    at = goto(start(), "data")
    goto(at, "sequential_attention")
    at.number_input(key="sa_k").set_value(2)
    at.number_input(key="sa_epochs").set_value(2)
    run_sa_and_wait(at)
    buttons = [b for b in at.get("download_button") if "sa_dl_ipynb" in b.proto.id]
    assert len(buttons) == 1 and buttons[0].proto.label == "Notebook (.ipynb)"
    trace = at.session_state["sa_trace"]
    notebook = json.loads(reproduction_notebook(trace, at.session_state["dataset"]))
    code = "\n".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "code")
    assert "seqattn.load_builtin('digits')" in code and "epochs=2" in code
    assert f"app_picks = {trace.selected_names!r}" in code
