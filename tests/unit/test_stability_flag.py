"""The unstable flag answers "would another seed's panel contain this gene?" (issue 20): the B runs resampled
with replacement, the consensus rebuilt with the same rule, each pick's kept share — on runs whose answer is
known, and the one verdict shown alike by the trace, the tables, the CLI's stderr and the AnnData record."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from seqattn import SequentialAttentionSelector, make_planted, select_features
from seqattn.anndata_api import trace_from_anndata
from seqattn.evaluation.narrative import pick_warnings, support_text
from seqattn.plots.genomics import panel_frame
from seqattn.selectors.defaults import PANEL_DEFAULTS, SMALL_PANEL_MAX_K, SMALL_PANEL_RUNS, panel_runs
from seqattn.selectors.sa_trainer import SAConfig, SelectionUnits
from seqattn.selectors.stability import (RESAMPLED_PANELS, BatchedSATrainer, consensus_order, kept_shares,
                                         resampled_kept_shares, run_seeds)
from seqattn.trace import MIN_KEPT_SHARE, SelectionTrace, is_unstable

FAST = dict(epochs=8, batch_size=64, gain_model="none")


def coin_flip_runs() -> list[list[int]]:
    """8 runs of 2 picks: unit 0 first in every run; the second pick is unit 1 in 5 runs and unit 2 in 3 (both
    at position 2, so a tie in count goes to the lower index, unit 1)."""
    return [[0, 1]] * 5 + [[0, 2]] * 3


# ------------------------------------------------------------ the resampled consensus
def test_a_unanimous_pick_is_always_kept_and_a_coin_flip_is_kept_as_often_as_the_binomial_says():
    runs = coin_flip_runs()
    assert consensus_order(runs, 3, 2) == [0, 1]
    kept = resampled_kept_shares(runs, 3, 2, seed=0)
    assert kept[0] == 1.0  # every resample holds unit 0
    # a resample keeps unit 1 when it holds at least 4 of the 8 "unit 1" runs: X ~ Bin(8, 5/8), P(X ≥ 4)
    assert kept[1] == pytest.approx(binom.sf(3, 8, 5 / 8), abs=0.07)  # 200 resamples: SE ≈ 0.025
    assert kept[1] + kept[2] == pytest.approx(1.0)  # one second slot, held by one of them in every resample
    # unit 1 was made by more than half the runs (5/8), so only the resampled share flags it
    assert not is_unstable(5, 8) and is_unstable(5, 8, kept[1]) and not is_unstable(8, 8, kept[0])


def test_the_kept_share_is_deterministic_given_the_seed_and_uses_the_rule_it_is_given():
    runs = coin_flip_runs()
    first, again = resampled_kept_shares(runs, 3, 2, seed=[7, 8]), resampled_kept_shares(runs, 3, 2, seed=[7, 8])
    assert np.array_equal(first, again)
    seen: list[list[list[int]]] = []

    def only_unit_2(resampled, n_units, k):  # a consensus rule of its own: it sees every resample, keeps unit 2
        seen.append(resampled)
        return [2]

    kept = resampled_kept_shares(runs, 3, 2, only_unit_2, seed=0)
    assert kept.tolist() == [0.0, 0.0, 1.0] and len(seen) == RESAMPLED_PANELS
    assert all(len(r) == len(runs) and all(run in runs for run in r) for r in seen)  # B of the same runs


def test_the_rule_in_one_place():
    assert not is_unstable(6, 8) and not is_unstable(6, 8, None) and not is_unstable(6, 8, MIN_KEPT_SHARE)
    assert is_unstable(4, 8, 1.0)  # half the runs did not make it, however often a resample keeps it
    assert is_unstable(7, 8, MIN_KEPT_SHARE - 0.01)
    assert support_text(5, 8, 0.615) == "5/8, kept 62%" and support_text("5/8", None, None) == "5/8"


def test_small_panels_combine_more_runs_than_large_ones():
    from seqattn.data import Dataset
    from seqattn.selectors.defaults import panel_defaults

    assert panel_runs(20) == panel_runs(SMALL_PANEL_MAX_K) == SMALL_PANEL_RUNS == 16
    assert panel_runs(SMALL_PANEL_MAX_K + 1) == panel_runs(200) == panel_runs(None) == PANEL_DEFAULTS["n_runs"] == 8
    cells = Dataset(X=np.ones((6, 3), dtype=np.float32), y=np.array([0, 1, 2, 0, 1, 2]), feature_names=list("abc"),
                    task="classification")
    assert panel_defaults(cells, k=20)["n_runs"] == 16 and panel_defaults(cells, k=200)["n_runs"] == 8
    assert panel_defaults(cells, {"n_runs": 3}, k=20)["n_runs"] == 3  # the user's choice wins


# ------------------------------------------------------------ every screen says the same
@pytest.fixture(scope="module")
def stable_trace() -> SelectionTrace:
    """Two planted features and coin tosses among the noise: some picks stable, some not."""
    data = make_planted(n_samples=400, n_features=30, n_informative=2, noise=0.05, random_state=2)
    return SequentialAttentionSelector(4, n_runs=4, combine="runs", random_state=0, **FAST).fit(
        data.X, data.y, feature_names=data.feature_names).trace_


def test_trace_table_json_and_page_table_carry_one_verdict(stable_trace, tmp_path):
    steps = stable_trace.steps
    assert all(s.kept_share is not None and 0 <= s.kept_share <= 1 for s in steps)
    assert [s.unstable for s in steps] == [is_unstable(s.picked_in, s.n_runs, s.kept_share) for s in steps]
    assert any(s.unstable for s in steps) and any(not s.unstable for s in steps)
    assert all(kept_shares(stable_trace)[s.feature] == s.kept_share for s in steps)
    frame = stable_trace.to_frame()
    assert frame["kept_share"].tolist() == [s.kept_share for s in steps]
    assert frame["unstable"].tolist() == frame["flagged"].tolist() == [s.unstable for s in steps]
    page = panel_frame(stable_trace)
    assert page["kept"].tolist() == [s.kept_share for s in steps]
    assert page["unstable"].tolist() == [s.unstable for s in steps]
    back = SelectionTrace.from_json(stable_trace.to_json())
    assert [(s.kept_share, s.unstable) for s in back.steps] == [(s.kept_share, s.unstable) for s in steps]
    notebook = stable_trace._repr_html_()
    assert notebook.count("<b>unstable</b>") == sum(s.unstable for s in steps)
    assert all(f"<td>{s.picked_in}/{s.n_runs}</td><td>{s.kept_share:.0%}</td>" in notebook for s in steps)
    warning = " ".join(pick_warnings(stable_trace))
    for s in steps:
        listed = f"{s.name} ({support_text(s.picked_in, s.n_runs, s.kept_share)})"
        assert (listed in warning) == s.unstable


def test_notebook_display_of_a_consensus_leaves_out_the_within_run_columns(stable_trace):
    """A consensus's score is its share of runs and its confidence a median inside the runs that made the pick (a
    gene picked in every run could show 0.28): the app's table drops them (WITHIN_RUN_COLUMNS); so does the notebook."""
    header = stable_trace._repr_html_().split("</thead>")[0]
    for within in ("score", "confidence", "seconds"):
        assert f"<th>{within}</th>" not in header, header
    assert "<th>picked in</th>" in header and "<th>kept</th>" in header and "<th>unstable</th>" in header


def test_a_single_runs_panel_checked_against_a_stable_selection_gets_the_same_flag(stable_trace):
    from seqattn.genomics import panel_stability

    names = stable_trace.feature_names
    kept = kept_shares(stable_trace)
    never = next(u for u in range(len(names)) if u not in kept)  # a gene no resampled panel held
    table = panel_stability([*stable_trace.selected_names, names[never]], stable_trace)
    assert table["kept"].tolist()[:-1] == [s.kept_share for s in stable_trace.steps]
    assert table["unstable"].tolist()[:-1] == [s.unstable for s in stable_trace.steps]
    assert table["kept"].iloc[-1] == 0.0 and table["unstable"].iloc[-1]


def test_cli_stderr_and_anndata_record_name_the_same_unstable_picks(tmp_path, capsys):
    from seqattn.cli import main

    data = make_planted(n_samples=400, n_features=30, n_informative=2, noise=0.05, random_state=2)
    path = tmp_path / "planted.csv"
    pd.DataFrame(data.X, columns=data.feature_names).assign(label=data.y).to_csv(path, index=False)
    out = tmp_path / "picks.json"
    assert main(["select", "--data", str(path), "--target", "label", "-k", "4", "--method", "sa", "--runs", "4",
                 "--epochs", "8", "--out", str(out), "--quiet"]) == 0
    trace = SelectionTrace.from_json(out)
    err = capsys.readouterr().err
    flagged = [s for s in trace.steps if s.unstable]
    assert flagged and f"{len(flagged)} of 4 picks are unstable" in err
    for s in trace.steps:
        assert (f"{s.name} ({support_text(s.picked_in, 4, s.kept_share)})" in err) == s.unstable

    adata = ad.AnnData(X=data.X, obs=pd.DataFrame({"label": pd.Categorical(data.y.astype(str))}))
    adata.var_names = data.feature_names
    stored = select_features(adata, "label", k=4, n_runs=4, marker_pool=0, coverage="none", random_state=0,
                             progress=False, **FAST)
    adata.write_h5ad(tmp_path / "panel.h5ad")
    back = trace_from_anndata(ad.read_h5ad(tmp_path / "panel.h5ad"))
    assert [(s.kept_share, s.unstable) for s in back.steps] == [(s.kept_share, s.unstable) for s in stored.steps]
    assert kept_shares(back) == kept_shares(stored)


# ------------------------------------------------------------ the batched trainer's score cache
def test_batched_picks_bump_the_attention_version_once_per_pick_and_pick_what_an_uncached_run_picks():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    X = rng.normal(size=(len(y), 13)).astype(np.float32)
    X[np.arange(len(y)), y] += 4.0
    names = [f"g{i}" for i in range(X.shape[1])]
    units = SelectionUnits(names, names, [], [])
    config = SAConfig.from_params(dict(FAST, random_state=0))

    def trained(shared: bool, cached: bool) -> tuple[BatchedSATrainer, int]:
        trainer = BatchedSATrainer(config, X, y, "classification", 3, units, run_seeds(0, 3), shared=shared)
        logit_bumps = []
        logit_step = trainer._logit_step

        def counted(training):
            before = trainer._attention_version
            logit_step(training)
            logit_bumps.append(trainer._attention_version - before)

        trainer._logit_step = counted
        if not cached:  # every read recomputes: what the cache must reproduce
            recompute = trainer._all_scores
            trainer._all_scores = lambda: (setattr(trainer, "_host_scores", None), recompute())[1]
        trainer.run()
        return trainer, sum(logit_bumps)

    for shared in (True, False):
        trainer, logit_bumps = trained(shared, cached=True)
        picks = sum(len(r.picks) for r in trainer.records)
        assert picks == (3 if shared else 9)
        assert trainer._attention_version == logit_bumps + picks  # one bump per pick, not one per run in it
        uncached, _ = trained(shared, cached=False)
        assert [r.picks for r in trainer.records] == [r.picks for r in uncached.records]
