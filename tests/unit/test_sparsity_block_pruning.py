"""SA++ block pruning reaches the requested block sparsity, records its phases and reports accuracy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seqattn.data.builtins import load_builtin
from seqattn.data import DataError, make_planted
from seqattn.sparsity import block_pruning as bp


@pytest.fixture(scope="module")
def digits_run() -> bp.BlockPruningResult:
    return bp.sa_plus_plus(load_builtin("digits"), sparsity=0.8, block_size=8, hidden=(64,), epochs=10,
                           n_cycles=1, device="cpu", random_state=0)


def test_block_attention_has_mean_one_and_masks_whole_blocks():
    layer = bp.BlockAttentionLinear(10, 12, block_size=4)  # partial edge blocks: grid 3 × 3
    assert layer.grid == (3, 3)
    with torch.no_grad():
        layer.logits.copy_(torch.randn(3, 3))
        assert layer.attention().mean().item() == pytest.approx(1.0, abs=1e-6)
        layer.mask[1, 2] = 0.0
        w = layer.effective_weight()
        a = layer.attention()
    assert torch.all(w[4:8, 8:10] == 0)
    assert torch.allclose(w[0:4, 0:4], layer.linear.weight[0:4, 0:4] * a[0, 0])


def test_phase_plan_covers_the_budget_in_order():
    phases = bp.plan_phases(100, n_cycles=2)
    assert [p.name for p in phases] == ["warm-up", "sparsify", "sparse", "dense", "sparsify", "sparse", "dense",
                                        "final sparsify", "fine-tune"]
    assert sum(p.steps for p in phases) == 100
    assert all(a.start + a.steps == b.start for a, b in zip(phases, phases[1:]))
    with pytest.raises(ValueError, match="phase units"):
        bp.plan_phases(5, n_cycles=2)


def test_every_method_gets_the_same_budget_and_the_same_final_ramp():
    phases = bp.plan_phases(70, n_cycles=1)  # warm-up, sparsify, sparse, dense, final sparsify: 10 each; fine-tune 20
    sapp, baseline, dense = (bp.method_phases(m, phases) for m in ("SA++", "magnitude", "dense"))
    assert sapp == phases
    assert [(p.name, p.start, p.steps) for p in baseline] == [("dense", 0, 40), ("final sparsify", 40, 10),
                                                               ("fine-tune", 50, 20)]
    assert [(p.name, p.steps) for p in dense] == [("dense", 70)]
    ramp = list(bp.phase_schedule(phases[-2], 0.5, mask_updates=5))
    assert [step for step, _, _ in ramp] == list(range(40, 50))
    shares = [share for _, share, _ in ramp]
    assert np.all(np.diff(shares) > 0) and shares[-1] == pytest.approx(0.5)  # exponential ramp up to the target
    assert shares[0] > 0.5 * 0.1  # front-loaded: after a tenth of the ramp more than a tenth is pruned
    assert [step for step, _, update in ramp if update] == [41, 43, 45, 47, 49]
    assert {share for _, share, update in bp.phase_schedule(phases[2], 0.5)} == {0.5}  # sparse: held at the target
    assert {share for _, share, update in bp.phase_schedule(phases[3], 0.5)} == {0.0}  # dense: everything back
    assert [p.restores for p in phases] == [True, False, False, True, False, False]
    assert bp.snapshot_label(phases[1], 14) == "sparsify 1 (50%)"
    assert bp.snapshot_steps(phases[1]) == {10, 13, 16, 19}


def test_a_run_that_continues_after_some_steps_trains_only_the_rest_of_its_phases():
    phases = bp.plan_phases(70, n_cycles=1)
    assert bp.phases_after(phases, 0) == phases
    assert [(p.name, p.start, p.steps) for p in bp.phases_after(phases, 25)] == [
        ("sparse", 25, 5), ("dense", 30, 10), ("final sparsify", 40, 10), ("fine-tune", 50, 20)]
    assert [(p.name, p.start, p.steps) for p in bp.phases_after(bp.method_phases("dense", phases), 40)] == [
        ("dense", 40, 30)]
    assert bp.phases_after(phases, 70) == []


def test_sa_plus_plus_reaches_the_requested_block_sparsity(digits_run):
    n_blocks = (64 // 8) * (64 // 8)
    expected = round(0.8 * n_blocks) / n_blocks
    assert digits_run.sparsity["SA++"] == pytest.approx(expected)
    assert digits_run.sparsity["magnitude"] == pytest.approx(expected)
    assert digits_run.sparsity["dense"] == 0.0
    final_mask = digits_run.snapshots[-1].mask[0]
    assert final_mask.sum() == n_blocks - round(0.8 * n_blocks)
    weight = digits_run.final_weights[0]  # pruned blocks are exactly zero in the effective weight
    pruned = ~final_mask.repeat(8, 0).repeat(8, 1)
    assert np.all(weight[pruned] == 0) and np.any(weight[~pruned] != 0)


def test_accuracy_is_reported_for_every_method_and_beats_chance(digits_run):
    table = digits_run.accuracy_table()
    assert [row["method"] for row in table] == ["SA++", "magnitude", "dense"]
    for row in table:
        assert 0.5 < row["test accuracy"] <= 1.0  # 10 classes: chance is 0.1


def test_snapshots_follow_the_phases_and_the_schedule(digits_run):
    phases = [s.phase for s in digits_run.snapshots]
    assert phases[0] == "warm-up" and phases[-1] == "fine-tune"
    assert "dense" in phases and phases.count("final sparsify") == 4  # 4 snapshots along each ramp
    ramp = [s.sparsity for s in digits_run.snapshots if s.phase == "final sparsify"]
    assert all(b >= a for a, b in zip(ramp, ramp[1:])) and ramp[-1] == pytest.approx(digits_run.sparsity["SA++"])
    dense = next(s for s in digits_run.snapshots if s.phase == "dense")
    assert dense.sparsity == 0.0  # dense phases let every block regrow
    sched = digits_run.schedule_sparsity
    assert sched.max() == pytest.approx(0.8) and sched[0] == 0.0
    assert set(digits_run.to_dict()) >= {"settings", "snapshots", "accuracy", "sparsity"}


def test_callback_can_stop_training():
    result = bp.sa_plus_plus(load_builtin("digits"), sparsity=0.5, hidden=(32,), epochs=9, n_cycles=0,
                             device="cpu", callback=lambda step, total, msg: step > 5)
    assert result.stopped_early and result.accuracy == {}


def test_regression_data_is_refused_with_a_clear_message():
    data = make_planted(n_samples=100, n_features=8, n_informative=2, task="regression")
    with pytest.raises(DataError, match="classification"):
        bp.sa_plus_plus(data, epochs=9)


def test_bad_parameters_are_refused():
    data = load_builtin("digits")
    with pytest.raises(ValueError, match="sparsity"):
        bp.sa_plus_plus(data, sparsity=1.0)
    with pytest.raises(ValueError, match="mask_score"):
        bp.sa_plus_plus(data, mask_score="random")
