"""SA's automatic training budget (seqattn.schedule) and per-pick confidence, on data with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from seqattn.cli import main
from seqattn.data import DataError, make_planted
from seqattn.evaluation.narrative import budget_summary
from seqattn.schedule import (CONVERGENCE_PATIENCE, HANDOVER_PATIENCE, ConvergenceSchedule, FixedSchedule,
                              LossPlateau, Probe, separated_together)
from seqattn.selectors.sa_trainer import SAConfig
from seqattn.selectors.sequential_attention import SequentialAttentionSelector


def planted(seed: int, n_features: int = 40, xor_pairs: int = 1, n_informative: int = 3):
    """3,000 rows: linear features plus XOR pairs (no marginal signal), the rest noise."""
    return make_planted(n_samples=3000, n_features=n_features, n_informative=n_informative, xor_pairs=xor_pairs,
                        random_state=seed)


def noise(seed: int, n: int = 600, d: int = 20):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, 2, n)


def recovered(ds, seed: int) -> SequentialAttentionSelector:
    k = len(ds.informative)
    selector = SequentialAttentionSelector(k, random_state=seed, gain_model="none", device="cpu")
    return selector.fit_dataset(ds)


def test_defaults_recover_linear_and_xor_features():
    ds = planted(0)
    selector = recovered(ds, 0)
    assert set(selector.trace_.selected) == set(ds.informative.tolist())
    assert selector.trace_.settings["budget"] == "auto"
    assert set(selector.trace_.settings["picks_per_phase"]) == {1}  # one pick per phase unless asked for more
    assert not any(step.near_tie for step in selector.trace_.steps)  # real signal is never flagged
    assert all(step.confidence >= 2 for step in selector.trace_.steps)
    text = budget_summary(selector.trace_)
    assert text.startswith(f"Automatic budget: {selector.n_iter_} optimizer steps — a warm-up of ")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(40, 1, 3), (60, 2, 4)])
def test_defaults_recover_every_true_feature_on_every_seed(seed, shape):
    n_features, xor_pairs, n_informative = shape
    ds = planted(seed, n_features, xor_pairs, n_informative)
    assert set(recovered(ds, seed).trace_.selected) == set(ds.informative.tolist())


def test_pure_noise_picks_are_flagged_as_near_ties():
    X, y = noise(0)
    trace = SequentialAttentionSelector(3, gain_model="none", device="cpu").fit(X, y).trace_
    assert all(step.near_tie for step in trace.steps)
    # no phase separated: each ran to its cap (60 = 6 × the 10-step minimum, within the phase budget)
    settings = trace.settings
    assert settings["phase_steps"] == [60] * 3 and settings["max_phase_steps"] == 60
    assert settings["capped_phases"] == 3 and settings["picks_per_phase"] == [1, 1, 1]
    assert sum(settings["phase_steps"]) <= settings["phase_budget"] * settings["warmup_steps"]
    assert "3 phases ended at their cap without a clear leader" in budget_summary(trace)


def test_fixed_epochs_keep_the_exact_schedule():
    ds = planted(0, n_features=12)
    selector = SequentialAttentionSelector(3, epochs=4, batch_size=100, gain_model="none", device="cpu")
    selector.fit_dataset(ds)
    per_epoch = int(0.8 * 3000) // 100
    settings = selector.trace_.settings
    assert selector.n_iter_ == settings["total_steps"] == 4 * per_epoch
    assert settings["budget"] == "fixed" and settings["epochs"] == 4
    assert settings["warmup_steps"] == int(0.1 * 4 * per_epoch)
    assert budget_summary(selector.trace_) == (f"Fixed budget: 4 epochs = {4 * per_epoch} optimizer steps "
                                               f"({int(0.4 * per_epoch)} of warm-up).")


def test_automatic_budget_is_bitwise_deterministic():
    X, y = planted(3, n_features=15).X, planted(3, n_features=15).y
    a = SequentialAttentionSelector(3, random_state=7, gain_model="none", device="cpu").fit(X, y).trace_
    b = SequentialAttentionSelector(3, random_state=7, gain_model="none", device="cpu").fit(X, y).trace_
    assert a.selected == b.selected
    assert a.settings["phase_steps"] == b.settings["phase_steps"]
    np.testing.assert_array_equal(a.score_matrix(), b.score_matrix())


def test_selection_point_start_picks_once_the_warm_up_ends():
    ds = planted(0, n_features=12)
    trace = SequentialAttentionSelector(5, selection_point="start", gain_model="none",
                                        device="cpu").fit_dataset(ds).trace_
    assert trace.k == 5
    per_phase = trace.settings["picks_per_phase"]  # the first pick needs no phase
    assert len(trace.settings["phase_steps"]) == len(per_phase) and sum(per_phase) == 4
    first = trace.steps[0]
    assert first.confidence == pytest.approx(1.0, abs=1e-3) and first.near_tie  # untrained logits: a tie


def test_pinned_and_banned_conflict_names_the_features():
    ds = planted(0, n_features=8)
    with pytest.raises(DataError, match=r"both pinned and banned: \[2\] \(x2\)"):
        SequentialAttentionSelector(2, pinned=[2], banned=[2, 3]).fit_dataset(ds)


# ------------------------------------------------------------------ the schedule on its own
def _run_to_the_end(schedule: ConvergenceSchedule, probe: Probe) -> None:
    """Drive the schedule as the trainer does: a pick whenever one is due, else an optimizer step."""
    while not schedule.finished:
        if schedule.pick_due():
            schedule.picked()
        else:
            schedule.after_step(probe)


def _probe(losses=(), weights=None) -> Probe:
    values = iter(losses)
    return Probe(lambda: next(values), lambda: weights)


def test_warm_up_ends_when_the_validation_loss_stops_improving():
    schedule = ConvergenceSchedule(k=1, min_phase_steps=10, max_phase_steps=100, check_every=10,
                                   warmup_patience=3, warmup_min_steps=10)
    losses = [1.0, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4]  # best at check 3, then three checks without improvement
    probe = _probe(losses)
    while schedule.dense:
        schedule.after_step(probe)
    assert schedule.warmup_steps == 60 and not schedule.pick_due()


def test_warm_up_and_phases_stop_at_their_caps():
    schedule = ConvergenceSchedule(k=2, min_phase_steps=5, max_phase_steps=20, check_every=5,
                                   warmup_max_steps=15)
    improving = Probe(lambda: 1.0 / (schedule.step + 1), lambda: np.full(10, 0.1))  # uniform attention
    _run_to_the_end(schedule, improving)
    assert schedule.warmup_steps == 15 and schedule.phase_steps == [20, 20] and schedule.capped_phases == 2


def test_a_phase_ends_once_one_candidate_clearly_leads_for_long_enough():
    weights = np.full(30, 0.5 / 29)
    weights[4] = 0.5  # 15× the uniform share, far outside the rest
    schedule = ConvergenceSchedule(k=1, min_phase_steps=10, max_phase_steps=1000, check_every=5,
                                   phase_check_every=5, warmup_max_steps=5, stable_steps=20)
    probe = Probe(lambda: 1.0, lambda: weights)
    while not schedule.pick_due():
        schedule.after_step(probe)
    assert schedule.phase_steps == [20] and schedule.capped_phases == 0


def test_two_strong_candidates_trading_the_lead_do_not_hold_a_phase_to_its_cap():
    """Two equally strong features swap the lead every check; both stand clear of the rest, so the
    phase ends after stable_steps (the next phase takes the other one) instead of running to its cap."""
    first, second = np.full(30, 0.2 / 28), np.full(30, 0.2 / 28)
    first[[3, 8]], second[[3, 8]] = (0.45, 0.35), (0.35, 0.45)
    views = iter([first, second] * 100)
    schedule = ConvergenceSchedule(k=1, min_phase_steps=10, max_phase_steps=1000, check_every=5,
                                   phase_check_every=5, warmup_max_steps=5, stable_steps=20)
    probe = Probe(lambda: 1.0, lambda: next(views))
    while not schedule.pick_due():
        schedule.after_step(probe)
    assert schedule.phase_steps == [20] and schedule.capped_phases == 0


def test_a_phase_without_a_separated_leader_starts_counting_again():
    clear, flat = np.full(30, 0.5 / 29), np.full(30, 1 / 30)
    clear[4] = 0.5
    views = iter([clear, clear, flat] + [clear] * 100)  # separated, separated, lost, then separated again
    schedule = ConvergenceSchedule(k=1, min_phase_steps=5, max_phase_steps=1000, phase_check_every=5,
                                   warmup_max_steps=5, stable_steps=15)
    probe = Probe(lambda: 1.0, lambda: next(views))
    while not schedule.pick_due():
        schedule.after_step(probe)
    assert schedule.phase_steps == [30]  # 15 - 0 - 15: the flat check at step 15 reset the count


def test_warm_up_hands_over_to_the_phases_before_plain_training_would_stop():
    """Both use the same plateau rule; the warm-up waits HANDOVER_PATIENCE checks, plain training's
    "converged" (the benchmark's baseline) CONVERGENCE_PATIENCE: the phases keep training the network."""
    def plateau_step(plateau: LossPlateau) -> int:
        step = 0
        while not plateau.reached(step := step + 1, lambda: 1.0 / min(step, 300)):  # best at step 300
            pass
        return step

    assert plateau_step(LossPlateau()) == 300 + 10 * HANDOVER_PATIENCE == 350
    assert plateau_step(LossPlateau.converged()) == 300 + 10 * CONVERGENCE_PATIENCE == 500
    schedule = ConvergenceSchedule(k=1, min_phase_steps=10, max_phase_steps=100)
    probe = Probe(lambda: 1.0 / min(schedule.step, 300), lambda: np.full(10, 0.1))
    while schedule.dense:
        schedule.after_step(probe)
    assert schedule.warmup_steps == 350


def test_phase_budget_shares_what_is_left_and_never_goes_below_the_minimum():
    """Uniform attention never separates, so every phase runs to its cap: 2 × its fair share of the phase
    budget left (1.0 × the 100-step warm-up), then the 5-step minimum once the budget is spent."""
    schedule = ConvergenceSchedule(k=4, min_phase_steps=5, max_phase_steps=1000, warmup_max_steps=100,
                                   phase_budget=1.0, budget_slack=2.0)
    probe = Probe(lambda: 1.0, lambda: np.full(10, 0.1))
    _run_to_the_end(schedule, probe)
    assert schedule.warmup_steps == 100
    assert schedule.phase_steps == [50, 33, 17, 5]  # 2·100/4, 2·50/3, 2·17/2, then the minimum
    assert schedule.capped_phases == 4 and schedule.picks_per_phase == [1, 1, 1, 1]


def test_a_short_warm_up_still_leaves_three_minimum_phases_per_pick():
    """A 10-step warm-up × 1.0 would leave 10 steps for 4 phases; the floor of 3 × 5 steps per pick gives 60."""
    schedule = ConvergenceSchedule(k=4, min_phase_steps=5, max_phase_steps=1000, warmup_max_steps=10,
                                   phase_budget=1.0, budget_slack=2.0, pick_budget=3.0)
    probe = Probe(lambda: 1.0, lambda: np.full(10, 0.1))
    _run_to_the_end(schedule, probe)
    assert schedule.warmup_steps == 10
    assert schedule.phase_steps == [30, 20, 10, 5]  # 2·60/4, 2·30/3, 2·10/2, then the minimum


def test_only_candidates_that_separated_together_share_a_phase_end():
    two = np.full(30, 0.1 / 28)
    two[[3, 8]] = (0.46, 0.44)  # both far above the rest, a wide gap below them
    assert separated_together(two, limit=5) == [3, 8]
    assert separated_together(two, limit=1) == [3]
    runner_up = np.full(30, 0.4 / 28)
    runner_up[[5, 9]] = (0.4, 0.2)  # the runner-up is separated too, but holds only half the leader's weight
    assert separated_together(runner_up, limit=5) == [5]
    crowd = np.zeros(30)
    crowd[:6] = [0.16, 0.15, 0.14, 0.13, 0.12, 0.11]  # all separated, falling off smoothly: no gap, one pick
    crowd[6:] = (1 - crowd[:6].sum()) / 24
    assert separated_together(crowd, limit=5) == [0]
    assert separated_together(np.full(30, 1 / 30), limit=5) == []


def test_two_strong_candidates_separated_together_end_the_phase_with_two_picks():
    first = np.full(30, 0.1 / 28)
    first[[3, 8]] = (0.46, 0.44)
    schedule = ConvergenceSchedule(k=3, min_phase_steps=10, max_phase_steps=1000, phase_check_every=5,
                                   warmup_max_steps=5, stable_steps=10, max_picks_per_phase=3)
    probe = Probe(lambda: 1.0, lambda: first)
    while not schedule.pick_due():
        schedule.after_step(probe)
    assert schedule.due_now() == 2 and schedule.picks_per_phase == [2]
    schedule.picked()
    assert schedule.pick_due() and schedule.due_now() == 1
    schedule.picked()
    assert not schedule.pick_due() and schedule.picks == 2


def test_joint_picks_record_each_picks_own_attention_and_gain():
    """Joint picks (opt-in): on planted data, seed 0, the five true features separate together in one phase.
    Each pick's trace row holds the attention renormalised over the candidates left at that pick, and its own
    read-out gain."""
    ds = planted(0)
    trace = SequentialAttentionSelector(5, max_picks_per_phase=5, random_state=0, device="cpu").fit_dataset(ds).trace_
    assert set(trace.selected) == set(ds.informative.tolist())
    per_phase = trace.settings["picks_per_phase"]
    assert sum(per_phase) == 5 and max(per_phase) > 1
    start = 0
    for n in per_phase:  # within a phase: the same attention, renormalised after each pick
        first = trace.steps[start].scores
        for j in range(start, start + n):
            step = trace.steps[j]
            assert np.all(np.isnan(step.scores[trace.selected[:j]]))
            assert np.nansum(step.scores) == pytest.approx(1.0)
            candidates = np.isfinite(step.scores)
            np.testing.assert_allclose(step.scores[candidates], first[candidates] / first[candidates].sum(), rtol=1e-5)
            assert step.confidence >= 2 and not step.near_tie and step.marginal_gain is not None
        start += n
    assert f"made {sum(n for n in per_phase if n > 1)} picks" in budget_summary(trace)


def test_one_pick_per_phase_by_default_and_the_linear_model_keeps_a_converged_warm_up():
    """Joint picks are opt-in: candidates that separate together may be redundant (tests/unit/test_scale.py's
    markers of one cell type). The linear model's picks must follow OMP's (tests/unit/test_omp.py): no phase
    budget, full patience."""
    schedule = SAConfig.from_params({"model": "linear"}).schedule(k=5, batches_per_epoch=1)
    assert schedule.phase_budget is None and schedule.max_picks_per_phase == 1
    assert schedule.warmup_patience == CONVERGENCE_PATIENCE and schedule.max_phase_steps == 6 * 400
    mlp = SAConfig.from_params({}).schedule(k=5, batches_per_epoch=1)
    assert mlp.phase_budget == 1.5 and mlp.max_picks_per_phase == 1 and mlp.warmup_patience == HANDOVER_PATIENCE
    assert SAConfig.from_params({"max_picks_per_phase": 3}).schedule(k=5, batches_per_epoch=1).max_picks_per_phase == 3


def test_max_picks_per_phase_must_be_a_positive_integer():
    X, y = noise(0, n=60, d=5)
    with pytest.raises(ValueError, match="max_picks_per_phase"):
        SequentialAttentionSelector(2, max_picks_per_phase=0, device="cpu").fit(X, y)


def test_fixed_schedule_matches_the_reference_split():
    fixed = FixedSchedule(k=3, total_steps=100, selection_point="end")
    assert fixed.warmup_steps == 10 and fixed.pick_steps == [40, 70, 100]
    start = FixedSchedule(k=3, total_steps=100, selection_point="start")
    assert start.pick_steps == [10, 40, 70]


def test_cli_warns_about_near_ties_on_stderr(tmp_path, capsys):
    X, y = noise(1, n=300, d=8)
    table = tmp_path / "noise.csv"
    header = ",".join([f"g{i}" for i in range(8)] + ["label"])
    rows = [",".join([*(f"{v:.4f}" for v in X[r]), str(y[r])]) for r in range(len(y))]
    table.write_text("\n".join([header, *rows]) + "\n")
    out = tmp_path / "picks.csv"
    code = main(["select", "--data", str(table), "--target", "label", "-k", "2", "--device", "cpu",
                 "--out", str(out), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "warning: Pick 1" in err and "near-tie" in err and "train longer" in err  # (with X, or: did not stand out)
    assert math.isfinite(float(out.read_text().splitlines()[1].split(",")[5]))  # the confidence column
