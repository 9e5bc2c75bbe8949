"""AppTest for the Compare page, with the current data set (and an SA trace) preset in session state."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from seqattn.data import make_planted
from seqattn.selectors.sequential_attention import SequentialAttentionSelector
from seqattn.trace import SelectionTrace

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "compare.py")
APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def planted():
    return make_planted(n_samples=300, n_features=8, n_informative=2, xor_pairs=1, random_state=5)


@pytest.fixture(scope="module")
def sa_trace(planted):
    return SequentialAttentionSelector(4, epochs=15, random_state=0).fit_dataset(planted).trace_


def page_with(dataset, key: str, sa_trace=None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["dataset"] = dataset
    at.session_state["dataset_key"] = key
    at.session_state["device"] = "cpu"
    if sa_trace is not None:
        at.session_state["sa_trace"] = sa_trace
    return at.run()


def quick_settings(at: AppTest, methods: list[str], k: int) -> AppTest:
    """``methods`` at ``k``, evaluated at k = 1 and ``k`` with one seed and the logistic model."""
    at.multiselect(key="cmp_methods").set_value(methods)
    at.number_input(key="cmp_k").set_value(k)
    at.text_input(key="cmp_ks").set_value(f"1, {k}")
    at.number_input(key="cmp_seeds").set_value(1)
    at.radio(key="cmp_eval_model").set_value("logistic")
    return at


def submit(at: AppTest) -> AppTest:
    """Press Run; if that started a background comparison, wait for it and rerun to collect it."""
    next(b for b in at.button if b.label == "Run comparison").click()
    at.run()
    job = at.session_state["cmp_job"] if "cmp_job" in at.session_state else None
    if job is not None:
        assert job.wait(300), "the comparison did not finish in time"
        at.run()
    return at


def test_without_a_data_set_the_page_uses_digits_and_points_to_the_data_page() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()  # through the app shell: the page links to Data
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert any("uses the built-in **digits**" in i.value and "**Data** page" in i.value for i in at.info)
    assert any(link.proto.page == "data" for link in at.main.get("page_link"))


@pytest.mark.slow
def test_run_comparison_reuses_sa_and_shows_every_section(planted, sa_trace) -> None:
    at = page_with(planted, "test:planted", sa_trace)
    assert not at.exception
    assert any("Run comparison" in i.value for i in at.info)
    at.multiselect(key="cmp_methods").set_value(["sa", "omp", "greedy", "anova", "variance"])
    at.number_input(key="cmp_k").set_value(4)
    at.text_input(key="cmp_ks").set_value("2, 4")
    at.number_input(key="cmp_seeds").set_value(2)
    at.radio(key="cmp_eval_model").set_value("logistic")
    at = submit(at)
    assert not at.exception, at.exception

    result = at.session_state["cmp_result"]
    assert set(result.traces) == {"sa", "omp", "greedy", "anova", "variance"}
    assert result.traces["sa"].settings.get("reused") is True
    assert result.traces["sa"].selected == sa_trace.selected  # the page's SA run, not a new one
    assert sorted(result.accuracy["k"].unique()) == [2, 4]
    assert len(result.accuracy) == 5 * 2 * 2

    chart_titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("Test accuracy of a fresh model") for t in chart_titles)
    assert any("Recovery of the planted" in t for t in chart_titles)
    assert any(t.startswith("Step 1: the same candidates") for t in chart_titles)
    assert any(t.startswith("Wall time") for t in chart_titles)
    labels = {b.label for b in at.get("download_button")}
    assert {"Summary (CSV)", "Everything (JSON: traces, accuracy, settings)", "Notebook (.ipynb)"} <= labels

    # a later step of the teaching view refits for SA's picks so far
    at.slider(key="cmp_step").set_value(3).run()
    assert not at.exception
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("Step 3: the same candidates") for t in titles)


def test_bad_k_values_are_reported(planted) -> None:
    at = page_with(planted, "test:planted-bad")
    at.multiselect(key="cmp_methods").set_value(["anova"])
    at.number_input(key="cmp_k").set_value(3)
    at.text_input(key="cmp_ks").set_value("2, 9")
    at = submit(at)
    assert not at.exception
    assert any("between 1 and k=3" in e.value for e in at.error)
    assert "cmp_result" not in at.session_state


def test_shap_section_and_greedy_shortlist_on_wide_data() -> None:
    """120 features: greedy shortlists 50 candidates (said in its trace); SHAP's summary is drawn."""
    wide = make_planted(n_samples=150, n_features=120, n_informative=3, random_state=0)
    at = page_with(wide, "test:wide")
    at.multiselect(key="cmp_methods").set_value(["shap", "greedy", "variance"])
    at.number_input(key="cmp_k").set_value(3)
    at.text_input(key="cmp_ks").set_value("3")
    at.number_input(key="cmp_seeds").set_value(1)
    at.radio(key="cmp_eval_model").set_value("logistic")
    at.number_input(key="cmp_shap_background").set_value(10)
    at.number_input(key="cmp_shap_explain").set_value(10)
    at = submit(at)
    assert not at.exception, at.exception
    result = at.session_state["cmp_result"]
    assert result.shap is not None and result.shap.explainer == "deep"
    assert "50 of 120 candidates" in result.traces["greedy"].settings["candidate_shortlist"]
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("SHAP: mean |SHAP value|") for t in titles)
    assert any(t.startswith("SHAP beeswarm") for t in titles)


def test_same_settings_twice_reuses_the_finished_run(planted) -> None:
    at = quick_settings(page_with(planted, "test:planted-cache"), ["omp", "mutual_info"], 3)
    first = submit(at).session_state["cmp_result"]
    next(b for b in at.button if b.label == "Run comparison").click()
    at.run()
    assert not at.exception, at.exception
    assert "cmp_job" not in at.session_state  # no new run was started…
    assert at.session_state["cmp_result"] is first  # …the finished one is shown again


def test_stop_keeps_what_finished(planted) -> None:
    at = page_with(planted, "test:planted-stop")
    at.multiselect(key="cmp_methods").set_value(["sa", "omp", "mutual_info"])
    at.number_input(key="cmp_k").set_value(3)
    at.text_input(key="cmp_ks").set_value("1, 3")
    at.number_input(key="cmp_sa_epochs").set_value(400)  # long enough to press Stop while SA trains
    at.radio(key="cmp_eval_model").set_value("logistic")
    next(b for b in at.button if b.label == "Run comparison").click()
    at.run()
    job = at.session_state["cmp_job"]
    job.stop_requested = True  # what the Stop button does
    assert job.wait(300)
    at.run()
    assert not at.exception, at.exception
    result = at.session_state["cmp_result"]
    assert result.settings["stopped"] == "stopped"
    assert len(result.traces) < 3  # it stopped before running every method
    assert any("Stopped" in i.value for i in at.info)


def test_an_sa_run_stopped_before_its_first_pick_is_not_offered_for_reuse(planted) -> None:
    empty = SelectionTrace("sa", list(planted.feature_names), dataset=planted.name, task=planted.task,
                           stopped_early=True)
    at = page_with(planted, "test:planted-empty-sa", sa_trace=empty)
    assert at.checkbox(key="cmp_reuse_sa").disabled
    assert not any("0 picks" in c.value for c in at.caption)


def test_every_registered_method_is_offered_and_ttest_runs_from_the_page(planted) -> None:
    """The page offers the registry's methods (labels from the registry); ttest runs like any other."""
    from seqattn.selectors import METHOD_LABELS, REGISTRY

    at = page_with(planted, "test:planted-ttest")
    picker = at.multiselect(key="cmp_methods")
    assert list(picker.options) == [METHOD_LABELS[m] for m in REGISTRY]
    picker.set_value(["ttest", "anova"])
    at.number_input(key="cmp_k").set_value(3)
    at.text_input(key="cmp_ks").set_value("1, 3")
    at.number_input(key="cmp_seeds").set_value(1)
    at.radio(key="cmp_eval_model").set_value("logistic")
    at = submit(at)
    assert not at.exception, at.exception
    result = at.session_state["cmp_result"]
    assert set(result.traces) == {"ttest", "anova"} and not result.errors
    assert result.traces["ttest"].k == 3


def test_sa_on_the_pages_default_automatic_budget_runs_when_not_reused(planted) -> None:
    """The page's SA epochs field defaults to 0 (= automatic, passed as epochs=None); with no SA run to
    reuse, the comparison trains SA on that budget (it once crashed estimating SA's time from epochs=None)."""
    at = page_with(planted, "test:planted-auto-sa")
    assert at.number_input(key="cmp_sa_epochs").value == 0 and at.checkbox(key="cmp_reuse_sa").disabled
    at.multiselect(key="cmp_methods").set_value(["sa", "anova"])
    at.number_input(key="cmp_k").set_value(3)
    at.text_input(key="cmp_ks").set_value("1, 3")
    at.number_input(key="cmp_seeds").set_value(1)
    at.radio(key="cmp_eval_model").set_value("logistic")
    at = submit(at)
    assert not at.exception, at.exception
    assert not any("failed" in e.value for e in at.error), [e.value for e in at.error]
    result = at.session_state["cmp_result"]
    assert not result.errors and result.traces["sa"].settings["budget"] == "auto"
    assert len(result.traces["sa"].selected) == 3


@pytest.mark.slow
def test_partial_results_show_method_by_method_while_the_comparison_runs(planted) -> None:
    import time

    at = page_with(planted, "test:partial")
    at.multiselect(key="cmp_methods").set_value(["anova", "variance", "sa"])
    at.number_input(key="cmp_k").set_value(3)
    at.text_input(key="cmp_ks").set_value("1, 3")
    at.number_input(key="cmp_seeds").set_value(1)
    at.radio(key="cmp_eval_model").set_value("logistic")
    at.number_input(key="cmp_sa_epochs").set_value(1000)  # SA runs long enough to look at the page meanwhile
    next(b for b in at.button if b.label == "Run comparison").click()
    at.run()
    job = at.session_state["cmp_job"]
    try:
        deadline = time.time() + 120
        while (job.partial is None or len(job.partial.traces) < 2) and not job.done and time.time() < deadline:
            time.sleep(0.1)
        at.run()
        assert not job.done, "SA finished before the page could be looked at mid-run"
        assert not at.exception, at.exception
        assert any("Finished so far (2 of 3 methods)" in m.value for m in at.markdown)
        table, rankings = at.dataframe[0].value, at.dataframe[1].value  # the page stops under the progress panel
        assert list(table.iloc[:, 0]) == ["ANOVA F", "Variance"] and list(table.columns[1:]) == ["k = 1", "k = 3"]
        assert all("±" in v for v in table.iloc[:, 1:].to_numpy().ravel())  # mean ± spread per k, already
        assert list(rankings.columns) == ["ANOVA F", "Variance"] and len(rankings) == 3
        assert "Sequential Attention (3/3)" in job.message and " left" in job.message
    finally:
        job.stop_requested = True
        assert job.wait(120)
    at.run()
    result = at.session_state["cmp_result"]
    assert result.settings["stopped"] == "stopped" and {"anova", "variance"} <= set(result.traces)


def test_a_regression_comparison_is_headed_by_its_metric_not_accuracy() -> None:
    """On a regression target the chart and table show test R²; the heading above them said "Accuracy vs k"."""
    diabetes = make_planted(n_samples=200, n_features=6, n_informative=2, task="regression", random_state=0)
    at = submit(quick_settings(page_with(diabetes, "test:regression-heading"), ["anova", "variance"], 2))
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.session_state["cmp_result"].accuracy["metric"]) == {"R²"}
    headings = [h.value for h in at.subheader]
    assert "R² vs k" in headings and "Accuracy vs k" not in headings, headings
