"""Streamlit AppTest for the Structured pruning page, through the real app shell, on the tiny model preset
(trained into a temporary cache folder, so the user's cache is never touched)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
JOB_TIMEOUT_S = 240
SUBMIT = "FormSubmitter:structured_form-Prune and time"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("model-cache")  # the tiny model trains once for this module


@pytest.fixture(autouse=True)
def private_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("SEQATTN_CACHE_DIR", str(cache_dir))


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("pages/structured_pruning.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny_settings(at: AppTest, steps: int = 14, fractions=(0.5,)) -> None:
    at.selectbox(key="struct_preset").set_value("tiny")
    at.multiselect(key="struct_fractions").set_value(list(fractions))
    at.slider(key="struct_steps").set_value(steps)


def finish(at: AppTest) -> None:
    job = at.session_state["structured_job"]
    assert job.wait(JOB_TIMEOUT_S), "the study did not finish in time"
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def chart(at: AppTest, key: str) -> dict:
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if key in c.proto.id]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return charts[0]


def test_page_opens_with_defaults_and_an_explanation():
    at = open_page()
    assert "Structured pruning" in at.title[0].value
    assert at.multiselect(key="struct_kinds").value == ["heads", "mlp"]
    assert at.multiselect(key="struct_fractions").value == [0.5, 0.75]
    assert at.multiselect(key="struct_methods").value == ["SA++", "magnitude", "gradient", "random"]
    assert any("Prune and time" in i.value for i in at.info)


@pytest.mark.slow
def test_tiny_run_shows_tables_animation_survivors_frontier_and_latency():
    at = open_page()
    tiny_settings(at)
    at.button(key=SUBMIT).click().run()
    finish(at)
    summary = at.dataframe[0].value.set_index("method")
    assert {"dense (as trained)", "dense + same steps", "SA++", "magnitude", "gradient", "random"} == set(summary.index)
    assert (summary["val loss mean"] > 0).all()
    assert any("One seed" in c.value for c in at.caption)
    anim = chart(at, "struct_anim")
    run = at.session_state["structured_result"].run("SA++", 0.5)
    assert len(anim["frames"]) == len(run.snapshots) >= 5
    last = anim["frames"][-1]["data"][0]["z"]  # heads: 2 layers × 4, pruned ones blank
    assert sum(v is None for row in last for v in row) == 4
    survivors = chart(at, "struct_surv")
    assert len(survivors["data"]) == 4  # one panel per method
    frontier = chart(at, "struct_frontier")
    assert {t["name"] for t in frontier["data"]} == {"SA++", "magnitude", "gradient", "random", "dense"}
    assert any("the thread's CPU time" in c.value for c in at.caption)  # one CPU thread: the CPU clock, said so
    latency = next(d.value for d in at.dataframe if "ratio to dense" in d.value.columns)
    assert {"dense", "SA++ 50%", "unstructured 50%, CSR"} <= set(latency["model"])
    memory = next(d.value for d in at.dataframe if "KV cache KiB/token" in d.value.columns).set_index("model")
    assert memory.loc["SA++ 50%", "KV cache KiB/token"] == pytest.approx(memory.loc["dense", "KV cache KiB/token"] / 2)
    labels = [b.label for b in at.get("download_button")]
    assert "Download run (JSON)" in labels and "Download table (CSV)" in labels
    # the same settings again show the finished run without computing
    at.button(key=SUBMIT).click().run()
    assert "structured_job" not in at.session_state and at.session_state["structured_result"] is not None


@pytest.mark.slow
def test_stop_keeps_the_methods_that_finished():
    at = open_page()
    tiny_settings(at, steps=140, fractions=(0.5, 0.75))
    at.button(key=SUBMIT).click().run()
    job = at.session_state["structured_job"]
    deadline = time.monotonic() + 120
    while "magnitude" not in job.message and time.monotonic() < deadline:
        time.sleep(0.2)  # let SA++ finish at the first fraction
    job.stop_requested = True  # what the Stop button does
    finish(at)
    result = at.session_state["structured_result"]
    assert result.stopped_early and result.run("SA++", 0.5)
    assert len(result.runs) < 9
    assert any("Stopped early" in w.value for w in at.warning)


def test_empty_choices_get_a_message_not_a_run():
    at = open_page()
    at.multiselect(key="struct_methods").set_value([])
    at.button(key=SUBMIT).click().run()
    assert any("at least one" in e.value for e in at.error)
    assert "structured_job" not in at.session_state


def test_settings_outlive_a_visit_to_another_page():
    at = open_page()
    assert at.slider(key="struct_steps").value == 56 and at.multiselect(key="struct_kinds").value == ["heads", "mlp"]
    at.number_input(key="struct_seed").set_value(7)
    at.slider(key="struct_steps").set_value(21)
    at.multiselect(key="struct_fractions").set_value([])  # submitted without a fraction: an error, no run
    at.button[0].click().run()
    assert any("at least one" in e.value for e in at.error) and "structured_job" not in at.session_state
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/structured_pruning.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="struct_seed").value == 7 and at.slider(key="struct_steps").value == 21
    assert at.multiselect(key="struct_fractions").value == []
