"""Reruns and long runs: same settings + seed -> same selection on CPU; limits stop cleanly.

* SA and OMP through ``run_method``: identical picks *and* identical score
  vectors on a rerun, whatever the global RNGs were doing in between (SA
  seeds its own generators and restores the global torch state);
* a different seed may change SA's scores (so the seed is really used);
* ``max_seconds`` and a Stop request both end training early with the picks
  so far and say why (``trace.settings["stop_reason"]``).

On a GPU, cuDNN/cuBLAS reductions are not bitwise reproducible by default, so
scores can differ in the last digits between runs and picks can differ when
two candidates are nearly tied; see "Limits and reliability" in the README.
The GPU test below only runs where CUDA is present and checks the picks.
"""
from __future__ import annotations

import random
import time

import numpy as np
import pytest
import torch

from seqattn.data import make_planted
from seqattn.selectors import run_method


def _planted(task: str = "classification"):
    return make_planted(n_samples=300, n_features=20, n_informative=4, task=task, random_state=11)


def _scramble_global_rngs() -> None:
    torch.manual_seed(987)
    np.random.seed(654)
    random.seed(321)
    torch.rand(10)
    np.random.rand(10)


def _scores(trace) -> np.ndarray:
    return np.array([s.scores for s in trace.steps])


@pytest.mark.parametrize("model", ["mlp", "linear"])
def test_sa_rerun_gives_identical_selection_and_scores_on_cpu(model):
    dataset = _planted()
    options = {"device": "cpu", "random_state": 5, "model": model, "gain_model": "none"}  # automatic epochs
    first = run_method(dataset, "sa", 4, **options)
    _scramble_global_rngs()
    second = run_method(dataset, "sa", 4, **options)
    assert first.selected == second.selected
    np.testing.assert_array_equal(_scores(first), _scores(second))  # bitwise, NaNs in the same places
    assert len(set(first.selected) & set(dataset.informative)) >= 3  # and it is a sensible selection


def test_sa_seed_is_used():
    dataset = _planted()
    options = {"device": "cpu", "epochs": 6, "gain_model": "none"}
    a = run_method(dataset, "sa", 4, random_state=1, **options)
    b = run_method(dataset, "sa", 4, random_state=2, **options)
    assert not np.array_equal(_scores(a), _scores(b))


def test_sa_does_not_touch_the_global_torch_rng():
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    run_method(_planted(), "sa", 2, device="cpu", epochs=3, gain_model="none")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_omp_rerun_is_identical(task):
    dataset = _planted(task)
    first = run_method(dataset, "omp", 5, random_state=3)
    _scramble_global_rngs()
    second = run_method(dataset, "omp", 5, random_state=3)
    assert first.selected == second.selected
    np.testing.assert_array_equal(_scores(first), _scores(second))
    assert [s.val_metric for s in first.steps] == [s.val_metric for s in second.steps]


# ------------------------------------------------------------- long runs
def test_time_limit_stops_training_and_keeps_the_picks():
    dataset = _planted()
    started = time.perf_counter()
    trace = run_method(dataset, "sa", 6, device="cpu", epochs=5000, max_seconds=1.5, gain_model="none")
    elapsed = time.perf_counter() - started
    assert elapsed < 1.5 + 20  # would be minutes without the limit; slack for a loaded machine
    assert trace.stopped_early and trace.settings["stop_reason"] == "time limit"
    assert trace.settings["max_seconds"] == 1.5
    assert trace.k < 6 and len(set(trace.selected)) == trace.k
    assert all(step.seconds <= elapsed for step in trace.steps)


@pytest.mark.parametrize("model", ["mlp", "linear"])  # runs trained side by side / one after another
def test_several_runs_cut_by_the_time_limit_say_time_limit_not_stopped(model):
    """Runs cut by max_seconds record why, as one run does (however many picks the load allowed), so the page
    can tell the time limit from a Stop."""
    from seqattn.evaluation.narrative import consensus_stop_note
    from seqattn.trace import SelectionTrace

    trace = run_method(_planted(), "sa", 6, device="cpu", epochs=5000, max_seconds=1.5, gain_model="none",
                       n_runs=2, combine="runs", model=model)
    assert trace.stopped_early and trace.settings["stop_reason"] == "time limit"
    partial = SelectionTrace("sa", ["a", "b", "c"], settings={"n_runs": 2, "k": 3, "runs": [[0], [0, 1]],
                                                              "stop_reason": "time limit"}, stopped_early=True)
    assert consensus_stop_note(partial).startswith("Stopped at the training time limit before the runs finished")
    partial.settings["stop_reason"] = "stopped"
    assert consensus_stop_note(partial).startswith("Stopped (Stop pressed) before the runs finished")


def test_stop_request_keeps_picks_and_says_stopped():
    dataset = _planted()
    seen: list[str] = []

    def stop_after_second_pick(step: int, total: int, message: str) -> bool:
        seen.append(message)
        return sum(m.startswith("pick") for m in seen) >= 2

    trace = run_method(dataset, "sa", 6, device="cpu", epochs=40, gain_model="none", callback=stop_after_second_pick)
    assert trace.k == 2 and trace.stopped_early and trace.settings["stop_reason"] == "stopped"
    # a stopped run's picks are the start of the full run's picks (same seed, same schedule)
    full = run_method(dataset, "sa", 6, device="cpu", epochs=40, gain_model="none")
    assert full.selected[:2] == trace.selected and not full.stopped_early and "stop_reason" not in full.settings


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sa_rerun_on_gpu_gives_the_same_picks():
    dataset = _planted()
    options = {"device": "cuda", "random_state": 5, "epochs": 6, "gain_model": "none"}
    first, second = run_method(dataset, "sa", 4, **options), run_method(dataset, "sa", 4, **options)
    assert first.selected == second.selected
    np.testing.assert_allclose(_scores(first), _scores(second), rtol=1e-4, atol=1e-6)
