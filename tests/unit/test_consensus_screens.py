"""A consensus of several runs is told in runs, on every screen: its step scores are each candidate's share of
the runs that picked it (``stability.consensus_trace``), not attention weights, so no view may call them
attention, ratio them to a uniform share or flag within-run near-ties (issue 20: the app's default gene panel)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from seqattn import make_planted, run_method
from seqattn.evaluation.narrative import (budget_summary, consensus_stop_note, explain_step, explain_trace,
                                          pick_warnings, picks_table_caption)
from seqattn.notebook import ranked_bars_html
from seqattn.plots.selection import WITHIN_RUN_COLUMNS, picks_table, score_axis_label, selection_animation

FAST = dict(epochs=8, batch_size=64, gain_model="linear", random_state=0, device="cpu")


@pytest.fixture(scope="module")
def planted():
    return make_planted(n_samples=400, n_features=30, n_informative=2, noise=0.05, random_state=2)


@pytest.fixture(scope="module")
def consensus(planted):
    return run_method(planted, "sa", 4, n_runs=4, combine="runs", **FAST)


def test_the_animation_draws_shares_of_runs_not_attention(consensus):
    runs = consensus.n_runs
    assert consensus.is_consensus and runs == 4
    fig = selection_animation(consensus)
    spec = json.dumps(fig.to_plotly_json(), default=str)
    assert "uniform" not in spec and "near-tie" not in spec and "attention" not in spec.lower()
    assert fig.layout.annotations[0].text.startswith(f"Share of the {runs} runs that picked each candidate")
    assert fig.layout.yaxis.title.text == score_axis_label(consensus) == f"share of the {runs} runs that picked it (%)"
    for frame, step in zip(fig.frames, consensus.steps):
        bars = frame.data[0]
        shares = step.scores[np.isfinite(step.scores)]
        assert max(bars.y) == pytest.approx(100 * shares.max())  # % of the runs, from zero
        assert list(bars.customdata) == pytest.approx([y * runs / 100 for y in bars.y])  # the count of runs
        title = frame.layout.title.text
        assert f"picked in {step.picked_in}/{runs}" in title and (("(unstable)" in title) == step.unstable)


def test_steps_table_budget_and_warnings_speak_of_runs(consensus):
    lines = explain_trace(consensus)
    assert len(lines) == consensus.k and not any("uniform share" in line or "attention" in line for line in lines)
    for t, step in enumerate(consensus.steps):
        assert f"{step.name} was picked in {step.picked_in} of {step.n_runs} runs" in explain_step(consensus, t)
        assert ("— unstable" in lines[t]) == step.unstable
    table = picks_table(consensus)
    assert not set(WITHIN_RUN_COLUMNS) & set(table.columns)
    assert list(table["picked_in"]) == [s.picked_in for s in consensus.steps]
    assert "how many of the 4 runs picked it" in picks_table_caption(consensus)
    assert budget_summary(consensus).endswith("the 4 runs trained side by side.")
    assert all("near-tie" not in w for w in pick_warnings(consensus))
    html = ranked_bars_html(consensus, 0, 10)
    assert "share of the 4 runs that picked it (%)" in html and "uniform" not in html


def test_one_run_and_a_shared_selection_keep_their_attention(planted):
    single = run_method(planted, "sa", 2, **FAST)
    shared = run_method(planted, "sa", 2, n_runs=3, combine="shared", **FAST)
    for trace in (single, shared):
        assert not trace.is_consensus
        assert selection_animation(trace).layout.annotations[0].text.startswith("Attention over the candidates")
        assert score_axis_label(trace) == "attention vs the uniform share (%)"
        assert "(attention vs the uniform share (%))" in ranked_bars_html(trace, 0, 10)  # the live view's words
    assert "the uniform share" in explain_step(single, 0)
    assert list(picks_table(single).columns) == list(single.to_frame().columns)


def test_a_stopped_consensus_says_what_its_runs_had_made(planted):
    def stop_once_the_runs_have_picked(step: int, total: int, message: str) -> bool:
        made = re.search(r"(\d+)/\d+ picks", message)  # "4 runs: 5/16 picks, 0 finished, loss …"
        return made is not None and int(made.group(1)) >= 4

    stopped = run_method(planted, "sa", 4, n_runs=4, combine="runs", callback=stop_once_the_runs_have_picked,
                         **{**FAST, "epochs": 40})
    assert stopped.is_consensus and stopped.stopped_early
    made = [len(r) for r in stopped.settings["runs"]]
    assert max(made) < 4
    note = consensus_stop_note(stopped)
    span = f"{min(made)}" if min(made) == max(made) else f"{min(made)}–{max(made)}"
    assert f"the {len(made)} runs had made {span} of their 4 picks each" in note
    assert f"{sum(s.unstable for s in stopped.steps)} of them are flagged unstable" in note
    assert explain_trace(stopped)[-1] == note


def test_compare_names_a_reused_consensus_and_keeps_attention_for_one_run(consensus, planted):
    from app_support.compare import _reused_sa

    assert "the consensus of 4 runs" in _reused_sa(consensus, 2) and "untick 'Reuse SA run'" in _reused_sa(consensus, 2)
    assert _reused_sa(run_method(planted, "sa", 2, **FAST), 2) == " SA reuses its page's run."
