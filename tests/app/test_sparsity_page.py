"""Streamlit AppTest for the Sparsity page, through the real app shell, with small sizes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
JOB_TIMEOUT_S = 180


def open_sparsity() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("pages/sparsity.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def finish(at: AppTest, job_key: str) -> None:
    job = at.session_state[job_key]
    assert job.wait(JOB_TIMEOUT_S), f"{job_key} did not finish in time"
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def frame_with(at: AppTest, column: str):
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert frames, [list(d.value.columns) for d in at.dataframe]
    return frames[0]


def test_attention_patterns_render_without_pressing_anything():
    at = open_sparsity()
    assert "Sparsity" in at.title[0].value
    table = frame_with(at, "attention mass captured")
    assert list(table["pattern"]) == ["dense causal", "sliding window + sink", "BigBird-like", "Quest top-k",
                                      "PSA adaptive", "NSA-style"]
    assert any("our implementation of the published rule" in c.value for c in at.caption)
    psa = table.set_index("pattern").loc["PSA adaptive"]
    assert psa["attention mass captured"] >= 0.9 - 1e-3 and psa["kept fraction"] < 1
    # a smaller τ keeps fewer blocks
    at.slider(key="attn_tau").set_value(0.6).run()
    smaller = frame_with(at, "attention mass captured").set_index("pattern").loc["PSA adaptive"]
    assert smaller["kept fraction"] < psa["kept fraction"]


@pytest.mark.slow
def test_sapp_training_and_quick_latency_run():
    at = open_sparsity()
    at.number_input(key="sapp_hidden").set_value(32)
    at.number_input(key="sapp_epochs").set_value(9)
    at.number_input(key="sapp_cycles").set_value(1)
    at.button(key="FormSubmitter:sapp_form-Train SA++ and baselines").click().run()
    finish(at, "sparsity_sapp_job")
    acc = frame_with(at, "test accuracy").set_index("method")
    assert list(acc.index) == ["SA++", "magnitude", "dense"]
    assert (acc["test accuracy"] > 0.5).all() and acc.loc["SA++", "block sparsity"] == pytest.approx(0.8, abs=0.02)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "sapp_anim" in c.proto.id]
    assert len(charts) == 1 and len(charts[0]["frames"]) >= 5
    # the BSR slider defaults to the SA++ sparsity
    assert at.slider(key="lat_bsr").value == pytest.approx(0.8)

    at.button(key="FormSubmitter:lat_form-Measure latency").click().run()  # quick preset: no compile
    finish(at, "sparsity_latency_job")
    decode = frame_with(at, "context_len")
    # 1024 tokens in blocks of 64 = 16 blocks; 10% of them rounds to 2
    assert set(decode["candidate"]) == {"dense SDPA", "top-2 blocks", "PSA adaptive blocks"}
    assert (decode["median ms"] > 0).all() and (decode["time ÷ baseline (median of rounds)"] > 0).all()
    bsr = frame_with(at, "block_sparsity")
    assert bsr["max abs diff"].dropna().iloc[0] < 1e-3
    labels = [b.label for b in at.get("download_button")]
    assert "Download latency (CSV)" in labels and "Download SA++ run (JSON)" in labels


def test_settings_outlive_a_visit_to_another_page():
    at = open_sparsity()
    assert at.slider(key="attn_tau").value == 0.9 and at.number_input(key="sapp_hidden").value == 128
    at.slider(key="attn_tau").set_value(0.75).run()
    at.number_input(key="attn_window").set_value(5).run()
    at.selectbox(key="attn_seq").set_value(256).run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/sparsity.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key="attn_tau").value == 0.75
    assert at.number_input(key="attn_window").value == 5 and at.selectbox(key="attn_seq").value == 256
