"""Finished runs and data sets come back from their links in a new session (issue 24 item 8b, 8c), in AppTest.

A new ``AppTest`` is a new browser session of a server whose memory is gone:
all it has is the URL (``?run=`` / ``?data=``) and the run store on disk.
The restart of a real server is ``tests/browser/test_run_store_browser.py``.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.support.app_helpers import APP, run_compare, run_sa, uploaded
from app_support.runs import run_store
from seqattn.safe_text import unescape_markdown



@pytest.fixture(autouse=True)
def own_store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQATTN_RUN_DIR", str(tmp_path / "runs"))
    run_store.clear()
    yield
    run_store.clear()


def mine_csv() -> bytes:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(80, 4)).round(4), columns=["mine_a", "mine_b", "mine_c", "mine_d"])
    frame["label"] = (frame["mine_a"] - frame["mine_c"] > 0).astype(int)
    return frame.to_csv(index=False).encode()


def session(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def with_upload() -> AppTest:
    at = uploaded("mine.csv", mine_csv())
    assert at.session_state["dataset"].name == "mine"
    return at


def test_an_sa_run_comes_back_from_its_link_in_a_new_session():
    at = run_sa(with_upload(), k=2, epochs=4)
    trace, run_id = at.session_state["sa_trace"], at.session_state["sa_run_id"]
    assert run_id and at.query_params["run"] == run_id
    assert any(f"?run={run_id}" in c.value for c in at.caption)  # the page shows the link

    later = session(run=run_id)  # a new session: only the link and the store
    assert later.session_state["dataset"].name == "mine"
    assert later.session_state["dataset_key"] == at.session_state["dataset_key"]
    later.switch_page("pages/sequential_attention.py").run()
    assert later.session_state["sa_trace"].selected_names == trace.selected_names
    assert any(m.value.startswith("Selected **2** features") for m in later.markdown)
    later.switch_page("pages/data.py").run()
    assert later.radio(key="data_source").value == "Upload"
    assert [s.value for s in later.subheader] == ["Current data set: mine"]


@pytest.mark.slow
def test_a_comparison_comes_back_from_its_link():
    at = run_compare(with_upload(), ["omp", "anova"], k=3)
    result, run_id = at.session_state["cmp_result"], at.session_state["cmp_run_id"]
    assert run_id

    later = session(run=run_id)
    later.switch_page("pages/compare.py").run()
    restored = later.session_state["cmp_result"]
    assert restored.rankings().equals(result.rankings())
    pd.testing.assert_frame_equal(restored.accuracy_table(), result.accuracy_table())
    assert later.session_state["cmp_run_id"] == run_id


def test_a_reconnecting_tab_gets_its_data_set_back():
    at = with_upload()
    data_id = at.query_params["data"]  # the URL names the data set from the moment it loaded
    later = session(data=data_id)
    assert later.session_state["dataset"].name == "mine"
    later.switch_page("pages/sequential_attention.py").run()
    assert any(c.value.startswith("**mine**") for c in later.caption)


def test_a_link_that_is_no_longer_kept_says_so():
    at = session(run="A" * 22)
    assert any("no longer kept" in unescape_markdown(w.value) for w in at.warning)
    at = session(run="../../etc/passwd")
    assert any("not valid" in w.value for w in at.warning)
