"""The Sequential Attention page makes the gene panel select_features makes, by default, on expression data
with cell types (issue 20): the panel options from ``defaults.panel_defaults``, several runs combined, every
view speaking of runs rather than attention; the "Gene panel defaults" toggle gives one plain run; the Gene
panel page then shows "picked in" / "kept" directly. Digits keep the plain run and no toggle."""
from __future__ import annotations

import json

import pytest

from seqattn.selectors.defaults import QUICK_PANEL_K, panel_defaults, panel_runs
from tests.app.test_app_pages import animation_spec, dataframe_with, goto, run_sa_and_wait, start

PANEL_OPTIONS = ("marker_pool", "class_weight", "coverage", "n_runs")


def pbmc_sa_page():
    at = goto(start(), "data")
    at.selectbox(key="builtin_name").select("pbmc68k_reduced").run()
    return goto(at, "sequential_attention")


@pytest.mark.slow
def test_default_run_on_pbmc_is_the_library_panel_and_the_toggle_gives_one_plain_run():
    at = pbmc_sa_page()
    assert at.number_input(key="sa_k").value == QUICK_PANEL_K  # the page's first panel size
    assert at.toggle(key="sa_panel").value is True  # on by default where a panel is the product
    at.number_input(key="sa_k").set_value(3)
    at.number_input(key="sa_epochs").set_value(2)  # fast: a fixed, short budget
    run_sa_and_wait(at)
    trace = at.session_state["sa_trace"]
    dataset = at.session_state["dataset"]
    expected = panel_defaults(dataset, {}, 3)
    assert trace.is_consensus and trace.n_runs == panel_runs(3) == expected["n_runs"]
    assert {name: trace.settings[name] for name in PANEL_OPTIONS} == {name: expected[name] for name in PANEL_OPTIONS}
    assert trace.settings["combine"] == "runs" and trace.settings["epochs"] == 2  # the user's settings win

    # every view speaks of runs: no attention ratios, no "uniform share", no true-gain comparison
    spec = animation_spec(at)
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert titles[0].startswith(f"Share of the {trace.n_runs} runs that picked each candidate")
    assert spec["layout"]["yaxis"]["title"]["text"] == f"share of the {trace.n_runs} runs that picked it (%)"
    assert "uniform" not in json.dumps(spec) and "near-tie" not in json.dumps(spec)
    first = trace.steps[0]
    assert f"picked in {first.picked_in}/{trace.n_runs}" in spec["layout"]["title"]["text"]
    bars = spec["data"][0]
    assert max(bars["y"]) == pytest.approx(100 * max(s for s in first.scores if s == s))  # % of runs
    steps_text = " ".join(m.value for m in at.markdown)
    assert f"picked in {first.picked_in} of {trace.n_runs} runs" in steps_text and "uniform share" not in steps_text
    assert not [b for b in at.button if b.key == "sa_teach_run"]
    table = dataframe_with(at, "kept_share")
    assert "near_tie" not in table.columns and list(table["picked_in"]) == [s.picked_in for s in trace.steps]
    warnings = " ".join(w.value for w in at.warning)
    assert "near-tie" not in warnings
    assert ("are unstable" in warnings) == any(s.unstable for s in trace.steps)
    assert any(f"{trace.n_runs} runs with different seeds, combined" in c.value for c in at.caption)

    # the Gene panel page shows the panel's own stability, without offering a second check
    goto(at, "gene_panel")
    assert not at.error, [e.value for e in at.error]
    panel = dataframe_with(at, "kept")
    assert list(panel["picked in"]) == [f"{s.picked_in}/{trace.n_runs}" for s in trace.steps]
    assert list(panel["kept"]) == [s.kept_share for s in trace.steps] and "score" not in panel.columns
    assert not [b for b in at.button if b.key == "gp_check_stability"]
    assert not any("not been checked against other seeds" in c.value for c in at.caption)

    # teaching mode: one plain run with its attention
    goto(at, "sequential_attention")
    at.toggle(key="sa_panel").set_value(False).run()
    assert any("gene panel defaults on → off" in w.value for w in at.warning)  # the panel on screen is out of date
    run_sa_and_wait(at)
    single = at.session_state["sa_trace"]
    assert single.n_runs is None and not single.is_consensus
    assert not {"marker_pool", "coverage"} & set(single.settings) and single.settings["class_weight"] is None
    assert animation_spec(at)["layout"]["annotations"][0]["text"].startswith("Attention over the candidates")
    assert [b for b in at.button if b.key == "sa_teach_run"]


def test_digits_keep_the_plain_run_and_offer_no_panel_toggle():
    at = goto(goto(start(), "data"), "sequential_attention")
    assert not [t for t in at.toggle if t.key == "sa_panel"]
    at.number_input(key="sa_k").set_value(2)
    at.number_input(key="sa_epochs").set_value(2)
    run_sa_and_wait(at)
    trace = at.session_state["sa_trace"]
    assert trace.n_runs is None and "marker_pool" not in trace.settings
    assert animation_spec(at)["layout"]["annotations"][0]["text"].startswith("Attention over the candidates")


@pytest.mark.slow
def test_stop_during_a_panel_run_combines_the_runs_picks_so_far_and_says_so():
    import re
    import time

    at = pbmc_sa_page()
    at.number_input(key="sa_k").set_value(4)
    at.number_input(key="sa_epochs").set_value(300)  # minutes if left alone
    at.button(key="sa_run").click().run()
    job = at.session_state["sa_job"]
    deadline = time.monotonic() + 120
    made = 0
    while made < 16 and time.monotonic() < deadline:  # about one pick per run
        time.sleep(0.2)
        found = re.search(r"(\d+)/\d+ picks", job.message)
        made = int(found.group(1)) if found else 0
    assert job.message.startswith("16 runs: "), job.message  # the progress counts the runs' picks
    at.button(key="sa_stop").click().run()
    assert job.wait(120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    trace = at.session_state["sa_trace"]
    assert trace.is_consensus and trace.stopped_early and 1 <= trace.k <= 4
    made = [len(r) for r in trace.settings["runs"]]
    warned = " ".join(w.value for w in at.warning)
    assert "Stopped (Stop pressed) before the runs finished" in warned and "of their 4 picks each" in warned
    assert "picked before Stop was pressed" not in warned
    assert max(made) < 4
