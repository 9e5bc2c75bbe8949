"""Trustworthy panels (issue 20): stable selection over B runs, a class-balanced objective, the structure
head and the expression floor — on planted data where the right answer is known."""
from __future__ import annotations


import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.utils.class_weight import compute_class_weight

from seqattn import SequentialAttentionSelector, make_planted
from seqattn.data import Dataset
from seqattn.data.stream import as_row_source
from seqattn.evaluation.narrative import pick_warnings, stability_summary
from seqattn.genomics import expression_floor, fraction_expressing
from seqattn.objectives import balanced_class_weights, structure_components
from seqattn.selectors.sa_trainer import SelectionUnits
from seqattn.selectors.stability import (RunRecord, consensus_order, consensus_trace, selection_counts,
                                        selection_matrix, unstable_picks)
from seqattn.trace import SelectionTrace, is_unstable
from tests.support.rare_type import rare_type_data

FAST = dict(epochs=8, batch_size=64, gain_model="none")


def planted_markers(n_per_class: int = 120, n_noise: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes, each with one strong marker (columns 0, 1, 2: +4 in its class); the rest is noise.
    Any fourth or fifth pick is a coin toss between noise columns."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    X = rng.normal(size=(len(y), 3 + n_noise)).astype(np.float32)
    X[np.arange(len(y)), y] += 4.0
    return X, y


# ------------------------------------------------------------ the consensus rule
def test_consensus_ranks_by_runs_then_mean_position_and_never_invents_a_pick():
    runs = [[5, 1, 2], [1, 5, 3], [1, 2, 4], [1, 5, 2]]
    counts, position = selection_counts(runs, 7)
    assert counts.tolist() == [0, 4, 3, 1, 1, 3, 0]
    assert position[5] == pytest.approx((1 + 2 + 2) / 3) and position[2] == pytest.approx((3 + 2 + 3) / 3)
    # 1 (4 runs) first; 5 and 2 both in 3 runs, 5 earlier on average; then 3 and 4 (1 run each) by position
    assert consensus_order(runs, 7, 5) == [1, 5, 2, 3, 4]
    assert consensus_order(runs, 7, 10) == [1, 5, 2, 3, 4]  # never a unit no run picked (0, 6)


def test_consensus_trace_leaves_the_callers_settings_unchanged():
    runs = [[5, 1, 2], [1, 5, 3], [1, 2, 4], [1, 5, 2]]
    records = [RunRecord(seed=s, picks=p, confidence=[2.0] * 3, separation=[1.0] * 3) for s, p in enumerate(runs)]
    units = SelectionUnits(names=[f"g{i}" for i in range(7)], column_names=[f"g{i}" for i in range(7)],
                           pinned=[], banned=[])
    settings = {"n_runs": 4, "resample": "seeds"}
    trace = consensus_trace(records, units, 3, task="classification", settings=settings)
    assert settings == {"n_runs": 4, "resample": "seeds"}  # the kept shares went into the trace only
    assert trace.selected == [1, 5, 2] and trace.settings["n_runs"] == 4
    assert trace.settings["resampled_units"] and len(trace.settings["resampled_kept_shares"]) == \
        len(trace.settings["resampled_units"])
    assert [s.picked_in for s in trace.steps] == [4, 3, 3]


def test_stable_selection_keeps_planted_features_and_flags_the_coin_tosses():
    # the label needs all three planted features; picks 4 and 5 are coin tosses among 37 noise columns
    data = make_planted(n_samples=600, n_features=40, n_informative=3, noise=0.05, random_state=0)
    sel = SequentialAttentionSelector(5, n_runs=6, combine="runs", random_state=0, **FAST).fit(data.X, data.y)
    trace = sel.trace_
    assert set(trace.selected[:3]) == set(data.informative.tolist())  # they lead the consensus panel
    for step in trace.steps[:3]:
        assert step.picked_in == 6 and step.n_runs == 6 and not step.unstable and not step.flagged
    noise_picks = trace.steps[3:]
    # runs disagree on the noise: at most half of them make any one noise pick, so every one is flagged,
    # whatever its margin inside the runs that made it
    assert all(step.picked_in <= 3 and step.unstable and step.flagged for step in noise_picks)
    assert unstable_picks(trace) == [3, 4]
    assert len(sel.runs_) == 6 and all(len(r) == 5 for r in sel.runs_)
    assert sel.selection_frequency_[data.informative].tolist() == [1.0, 1.0, 1.0]
    assert sel.model_ is None and sel.selected_features_.tolist() == trace.selected
    warning = " ".join(pick_warnings(trace))
    assert "2 of 5 picks" in warning and f"({noise_picks[0].picked_in}/6, kept " in warning
    assert "6 runs" in stability_summary(trace)


def test_stable_trace_table_and_json_keep_picked_in_and_the_flag(tmp_path):
    X, y = planted_markers(n_per_class=60, n_noise=20)
    trace = SequentialAttentionSelector(4, n_runs=3, combine="runs", random_state=1, **FAST).fit(X, y).trace_
    frame = trace.to_frame()
    assert {"picked_in", "n_runs", "unstable", "flagged"} <= set(frame.columns)
    assert frame["n_runs"].eq(3).all()
    assert frame["unstable"].tolist() == [is_unstable(b, 3, kept) for b, kept in zip(frame["picked_in"],
                                                                                     frame["kept_share"])]
    path = tmp_path / "trace.json"
    trace.to_json(path)
    back = SelectionTrace.from_json(path)
    assert [s.picked_in for s in back.steps] == [s.picked_in for s in trace.steps]
    assert [s.unstable for s in back.steps] == [s.unstable for s in trace.steps]
    names, matrix = selection_matrix(back)
    assert matrix.shape[1] == 3 and names[:4] == back.selected_names
    assert (matrix > 0).sum(axis=1)[:4].tolist() == [s.picked_in for s in back.steps]


def test_batched_runs_pick_what_one_after_another_picks_on_clear_markers():
    X, y = planted_markers(n_per_class=80, n_noise=10)
    from seqattn.selectors.sa_trainer import SAConfig, SelectionUnits
    from seqattn.selectors.stability import fit_runs

    names = [f"g{i}" for i in range(X.shape[1])]
    units = SelectionUnits(names, names, [], [])
    config = SAConfig.from_params(dict(FAST, random_state=0))
    batched = fit_runs(config, X, y, "classification", 3, units, n_runs=3, batched=True)
    sequential = fit_runs(config, X, y, "classification", 3, units, n_runs=3, batched=False)
    assert set(batched.selected) == set(sequential.selected) == {0, 1, 2}
    assert batched.settings["run_seeds"] == sequential.settings["run_seeds"]


# ------------------------------------------------------------ every class counts
def test_balanced_weights_match_scikit_learn():
    y = np.array([0] * 90 + [1] * 8 + [2] * 2)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert np.allclose(balanced_class_weights(y, 3), expected)
    assert balanced_class_weights(np.array([0, 0, 2]), 3)[1] == 0.0  # an absent class weighs nothing


def test_balanced_objective_covers_the_rare_type():
    X, y = rare_type_data()
    plain = SequentialAttentionSelector(3, random_state=0, gain_model="none").fit(X, y)
    balanced = SequentialAttentionSelector(3, class_weight="balanced", random_state=0, gain_model="none").fit(X, y)
    assert 6 not in plain.selected_features_  # 2 % of the cells: the large types' markers crowd it out
    assert balanced.selected_features_[0] == 6, balanced.selected_features_  # weighted equally, it comes first
    assert balanced.trace_.settings["class_weight"] == "balanced"


def test_class_weight_on_a_regression_target_is_refused():
    X = np.random.default_rng(0).normal(size=(60, 5))
    with pytest.raises(ValueError, match="classification"):
        SequentialAttentionSelector(2, class_weight="balanced", task="regression", **FAST).fit(X, X[:, 0])


# ------------------------------------------------------------ structure as well as labels
def test_structure_components_are_scikit_learns_pca_scaled_to_unit_total_variance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    axes, shares = structure_components(as_row_source(X.astype(np.float32)), np.arange(200), 4)
    pca = PCA(4).fit(X)
    total = pca.explained_variance_.sum()
    assert np.allclose(np.abs(axes * np.sqrt(total)), np.abs(pca.components_.T), atol=1e-4)
    assert np.allclose(shares, pca.explained_variance_ / total, atol=1e-5)
    scores = (X - X.mean(0)) @ axes  # scaled scores: their variances sum to 1
    assert scores.var(axis=0, ddof=1).sum() == pytest.approx(1.0, rel=1e-3)


def structure_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The label is column 0; the dominant structure is a latent factor shared by columns 1–8 (variance
    ×9 each) that has nothing to do with the label; columns 9–29 are noise."""
    rng = np.random.default_rng(seed)
    n = 600
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 30)).astype(np.float32)
    X[:, 0] += 3.0 * (2 * y - 1)
    z = rng.normal(size=n)
    X[:, 1:9] = 3.0 * z[:, None] + 0.5 * rng.normal(size=(n, 8))
    return X, y


def test_structure_head_adds_a_gene_carrying_the_leading_component():
    X, y = structure_data()
    plain = SequentialAttentionSelector(2, random_state=0, **FAST).fit(X, y)
    shaped = SequentialAttentionSelector(2, structure_weight=1.0, structure_components=2, random_state=0,
                                         **FAST).fit(X, y)
    assert 0 in shaped.selected_features_  # the label's gene stays
    assert any(1 <= g <= 8 for g in shaped.selected_features_), shaped.selected_features_
    assert not any(1 <= g <= 8 for g in plain.selected_features_), plain.selected_features_
    settings = shaped.trace_.settings
    assert settings["structure_components"] == 2 and settings["structure_variance_shares"][0] > 0.8


# ------------------------------------------------------------ expression floor
def test_expression_floor_bans_rarely_detected_genes_and_says_how_many():
    X = np.zeros((100, 4), dtype=np.float32)
    X[:50, 0] = 2.0  # expressed in 50 % of cells
    X[:3, 1] = 9.0  # 3 % of cells, but a high mean of 0.27
    X[:, 2] = 0.05  # every cell, mean 0.05
    X[:20, 3] = 1.0  # 20 %, mean 0.2
    assert np.allclose(fraction_expressing(X), [0.5, 0.03, 1.0, 0.2])
    import scipy.sparse as sp
    assert np.allclose(fraction_expressing(sp.csr_matrix(X)), [0.5, 0.03, 1.0, 0.2])
    data = Dataset(X=X, y=np.zeros(100, dtype=int), feature_names=["a", "b", "c", "d"], task="classification",
                   name="floor")
    removed, message = expression_floor(data, min_fraction=0.1)
    assert removed == [1] and "1 of 4 genes" in message and "3 remain" in message
    removed, _ = expression_floor(data, min_fraction=0.1, min_mean=0.1)
    assert removed == [1, 2]
    assert expression_floor(data) == ([], "")
    with pytest.raises(ValueError, match="share of cells"):
        expression_floor(data, min_fraction=5)


def test_an_expression_floor_that_leaves_too_few_genes_says_so_not_choose_k_at_most_zero():
    """select_features(..., min_fraction=0.99) on genes seen in fewer cells used to end in "only 0 features can
    be picked (…, 40 banned); choose n_features_to_select ≤ 0", not naming the floor (progress=False hid it)."""
    import anndata as ad
    import pandas as pd

    from seqattn import DataError, select_features

    X = np.zeros((60, 8), dtype=np.float32)
    X[:, :2] = 1.0 + np.arange(60)[:, None] % 3  # genes 0 and 1 in every cell
    X[::10, 2:] = 1.0  # the others in 10 % of the cells
    adata = ad.AnnData(X, obs=pd.DataFrame({"kind": ["a", "b"] * 30}, index=[f"c{i}" for i in range(60)]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(8)]))
    with pytest.raises(DataError, match=r"Expression floor removed 8 of 8 genes.*0 remain.*min_mean") as info:
        select_features(adata, "kind", 3, method="ttest", min_mean=100, progress=False)
    assert "≤ 0" not in str(info.value)
    with pytest.raises(DataError, match=r"Expression floor removed 6 of 8 genes.*2 remain.*k=3"):
        select_features(adata, "kind", 3, method="ttest", min_fraction=0.5, progress=False)
    assert select_features(adata, "kind", 2, method="ttest", min_fraction=0.5, progress=False).selected == [0, 1]


def test_the_cli_names_the_expression_floor_too_when_it_leaves_too_few_genes(tmp_path, capsys):
    import anndata as ad
    import pandas as pd

    from seqattn.cli import main

    X = 1.0 + (np.arange(200, dtype=np.float32).reshape(40, 5) % 3)  # every gene expressed, mean 2
    adata = ad.AnnData(X, obs=pd.DataFrame({"kind": ["a", "b"] * 20}, index=[f"c{i}" for i in range(40)]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(5)]))
    adata.write_h5ad(tmp_path / "flat.h5ad")
    code = main(["select", "--data", str(tmp_path / "flat.h5ad"), "--target", "kind", "-k", "3", "--method", "ttest",
                 "--min-mean", "100", "--out", str(tmp_path / "p.csv"), "--quiet"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and error.startswith("error: Expression floor removed 5 of 5 genes")
    assert "k=3 needs at least 3 candidate gene(s)" in error and "≤ 0" not in error


# ------------------------------------------------------------ marker candidates
def test_marker_pool_limits_candidates_to_the_t_test_markers_and_keeps_the_users_bans():
    from seqattn.selectors.ttest import ttest_markers

    X, y = rare_type_data()
    data = Dataset(X=X, y=y, feature_names=[f"g{i}" for i in range(X.shape[1])], task="classification")
    pool = set(ttest_markers(data, 6, banned=[0]).selected)
    assert 6 in pool  # the rare type takes its turn in the t-test panel
    sel = SequentialAttentionSelector(3, marker_pool=2, banned=[0], random_state=0, **FAST).fit(X, y)
    assert set(sel.selected_features_) <= pool
    trace = sel.trace_
    assert trace.banned == [0] and trace.settings["marker_pool"] == 2 and trace.settings["candidates"] == 6
    outside = sorted(set(range(X.shape[1])) - pool)
    assert np.isnan(trace.steps[0].scores[outside]).all()  # never candidates
    with pytest.raises(ValueError, match="classification"):
        SequentialAttentionSelector(2, marker_pool=2, task="regression", **FAST).fit(X, X[:, 1])


# ------------------------------------------------------------ the defaults where a panel is the product
def test_panel_defaults_drop_what_a_data_set_cannot_use():
    from seqattn.selectors.defaults import PANEL_DEFAULTS, panel_defaults

    cells = Dataset(X=np.ones((4, 3), dtype=np.float32), y=np.array([0, 1, 2, 1]), feature_names=list("abc"),
                    task="classification")  # three types: two drop the coverage rule (test_panel_coverage.py)
    assert panel_defaults(cells) == PANEL_DEFAULTS and PANEL_DEFAULTS["n_runs"] >= 8
    regression = Dataset(X=cells.X, y=np.arange(4.0), feature_names=list("abc"), task="regression")
    assert "marker_pool" not in panel_defaults(regression) and "class_weight" not in panel_defaults(regression)
    assert panel_defaults(regression)["n_runs"] == PANEL_DEFAULTS["n_runs"]
