"""Shared AppTest steps for the app tests that drive the whole app (imported by test modules; not a test file)."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT_S = 300


def uploaded(name: str, data: bytes, **query: str) -> AppTest:
    """A new session (with ``query`` in its URL) that uploaded ``data`` as ``name`` on the Data page."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Upload").run()
    at.get("file_uploader")[0].upload(name, data).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    return at


def run_sa(at: AppTest, k: int, epochs: int) -> AppTest:
    """Sequential Attention with ``k`` and ``epochs`` on the current data set, collected."""
    at.switch_page("pages/sequential_attention.py").run()
    at.number_input(key="sa_k").set_value(k)
    at.number_input(key="sa_epochs").set_value(epochs)
    at.button(key="sa_run").click().run()
    assert at.session_state["sa_job"].wait(TIMEOUT_S)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run_compare(at: AppTest, methods: list[str], k: int) -> AppTest:
    """A quick comparison (one seed, logistic evaluation, k = 1 and ``k``), collected."""
    at.switch_page("pages/compare.py").run()
    at.multiselect(key="cmp_methods").set_value(methods)
    at.number_input(key="cmp_k").set_value(k)
    at.text_input(key="cmp_ks").set_value(f"1, {k}")
    at.number_input(key="cmp_seeds").set_value(1)
    at.radio(key="cmp_eval_model").set_value("logistic")
    next(b for b in at.button if b.label == "Run comparison").click()
    at.run()
    assert at.session_state["cmp_job"].wait(TIMEOUT_S)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
