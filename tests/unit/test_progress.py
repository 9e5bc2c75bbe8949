"""Progress that never goes backwards: the tracker every bar reads, SA's estimated totals, and the
consumers (text bar, the app's background jobs, the comparison's stages)."""
from __future__ import annotations

import io

import pytest

from seqattn import SequentialAttentionSelector, make_planted
from seqattn.progress import ESTIMATE_CEILING, EstimatedTotal, ProgressTracker, progress_bar

#: What an automatic-budget SA run reported on the page in issue 23: the total grew 470 → 615 → 910.
REVISED = [(50, 470), (150, 470), (250, 470), (300, 615), (400, 615), (500, 910), (700, 910), (900, 910)]


def test_tracker_is_monotone_and_honest_about_estimates() -> None:
    tracker = ProgressTracker()
    positions = [tracker.update(step, EstimatedTotal(total)) for step, total in REVISED]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)  # never back, never stalls
    assert max(positions) <= ESTIMATE_CEILING  # an estimate reached is not the end of the run
    assert tracker.label() == "900 of about 910 (estimated)"
    assert tracker.update(930, 930) == 1.0 and tracker.label() == "930/930"  # the exact end


def test_a_revised_plain_total_counts_as_an_estimate_and_exact_totals_are_plain_fractions() -> None:
    exact = ProgressTracker()
    assert [exact.update(s, 10) for s in (0, 5, 10)] == [0.0, 0.5, 1.0] and exact.label() == "10/10"
    revised = ProgressTracker()
    positions = [revised.update(step, total) for step, total in REVISED]  # plain ints that change
    assert positions == sorted(positions) and "about" in revised.label()
    assert ProgressTracker().update(3, 0) == 0.0  # no total: the position is unknown, not 100%


def test_sa_automatic_budget_reports_an_estimated_total_and_bars_stay_monotone() -> None:
    ds = make_planted(n_samples=300, n_features=12, n_informative=3, random_state=0)
    reports: list[tuple[int, int, bool]] = []
    tracker = ProgressTracker()
    positions: list[float] = []

    def record(step: int, total: int, message: str) -> None:
        reports.append((step, int(total), isinstance(total, EstimatedTotal)))
        positions.append(tracker.update(step, total))

    SequentialAttentionSelector(3, random_state=0).fit_dataset(ds, callback=record)
    assert all(estimated for *_, estimated in reports[:-1]) and not reports[-1][2]  # the final report is exact
    assert positions == sorted(positions) and positions[-1] == 1.0
    fixed: list[bool] = []
    SequentialAttentionSelector(3, epochs=5, random_state=0).fit_dataset(
        ds, callback=lambda s, t, m: fixed.append(isinstance(t, EstimatedTotal)))
    assert fixed and not any(fixed)  # a fixed budget knows its total


def test_text_bar_says_estimated_and_never_goes_back() -> None:
    out = io.StringIO()
    with progress_bar("sa", file=out, notebook=False) as update:
        for step, total in REVISED:
            update(step, EstimatedTotal(total), "phase 2/3")
    last = out.getvalue().split("\r")[-1]  # closing draws the last state
    assert "step 900 of about 910 (estimated)" in last and "100%" not in last
    out = io.StringIO()
    with progress_bar("sa", file=out, notebook=False) as update:
        for step, total in REVISED:
            update(step, EstimatedTotal(total), "phase 2/3")
        update(930, 930, "done")
    assert "100%" in out.getvalue().split("\r")[-1]


def test_background_job_fraction_is_monotone_with_revised_totals() -> None:
    """The app's progress panel (``st.progress(job.fraction)``) reads the same tracker."""
    pytest.importorskip("streamlit")
    from app_support.jobs import BackgroundJob

    job = BackgroundJob(lambda callback: None)
    assert job.wait(10)
    fractions = []
    for step, total in REVISED:
        job.callback(step, EstimatedTotal(total), "phase")
        fractions.append(job.fraction)
    assert fractions == sorted(fractions) and fractions[-1] <= ESTIMATE_CEILING
    assert job.steps_text == "900 of about 910 (estimated)"
    job.callback(930, 930, "done")
    assert job.fraction == 1.0 and job.steps_text == "930/930"
