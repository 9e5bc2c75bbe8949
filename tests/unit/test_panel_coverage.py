"""Every cell type covered (issue 20, item 2): SA's picks made against the worst-served type
(:mod:`seqattn.selectors.coverage`), on planted data where the right answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from seqattn import SequentialAttentionSelector
from seqattn.data import Dataset
from seqattn.evaluation.narrative import coverage_caption
from seqattn.plots.genomics import panel_frame
from seqattn.selectors.coverage import TypeCoverage
from seqattn.selectors.ttest import ttest_markers
from tests.support.rare_type import rare_type_data

FAST = dict(epochs=8, batch_size=64, gain_model="none")


def all_rows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(612), np.arange(612)


def test_the_coverage_rule_picks_the_rare_types_marker_that_plain_sa_misses():
    X, y = rare_type_data()
    plain = SequentialAttentionSelector(3, marker_pool=3, random_state=0, **FAST).fit(X, y)
    assert 6 not in plain.selected_features_  # 2 % of the cells: A's markers crowd it out
    covered = SequentialAttentionSelector(3, marker_pool=3, coverage="turns", random_state=0, **FAST).fit(X, y)
    assert 6 in covered.selected_features_
    types = covered.trace_.settings["pick_types"]
    assert sorted(types) == ["0", "1", "2"]  # one pick per type (class codes: no class names given)
    assert types[covered.trace_.selected.index(6)] == "2"  # made for the rare type, and recorded so
    assert covered.trace_.settings["coverage"] == "turns"
    # the Gene panel page's table and caption say the same
    frame = panel_frame(covered.trace_)
    assert frame["picked for"].tolist() == types
    caption = coverage_caption(covered.trace_)
    assert "fewest picks so far take turns" in caption and "Picks per type: " in caption
    assert all(f"{t} 1" in caption for t in "012")
    assert coverage_caption(plain.trace_) == "" and "picked for" not in panel_frame(plain.trace_)


def test_every_recorded_pick_type_is_the_pool_it_came_from_and_turns_keep_types_level():
    X, y = rare_type_data(seed=1)
    sel = SequentialAttentionSelector(6, marker_pool=2, coverage="turns", n_runs=3, combine="runs", random_state=0,
                                      **FAST).fit(X, y)
    trace = sel.trace_
    panel = ttest_markers(Dataset(X=X, y=y, feature_names=[f"g{i}" for i in range(30)], task="classification"), 12)
    assert panel.settings["marker_types"] == [0, 1, 2] * 4  # the t-test's types take turns, and say so
    type_of = dict(zip(panel.selected, panel.settings["marker_types"]))
    for run in trace.settings["runs"]:  # every run: two picks per type, none outside the pools
        assert sorted(type_of[u] for u in run) == [0, 0, 1, 1, 2, 2]
    types = trace.settings["pick_types"]
    assert [types.count(c) for c in "012"] == [2, 2, 2]  # the consensus keeps each type's share of the runs' picks
    assert trace.settings["consensus"].startswith("each cell type keeps its mean share")  # and the trace says so
    assert 6 in trace.selected and types[trace.selected.index(6)] == "2"


def test_the_worst_served_type_gets_the_next_pick_among_its_pool_by_attention():
    X, y = rare_type_data()
    rule = TypeCoverage("worst", [[0, 1, 2], [10, 11], [6, 7]], X, y, all_rows)
    scores = np.full(30, 0.01)
    scores[[0, 1, 2]] = [0.2, 0.3, 0.25]  # A's markers lead the attention overall
    scores[7] = 0.05
    scores[6] = 0.02
    # nothing picked: the prior predicts A, so B and C have recall 0; C (rarest, lowest probability) first
    assert rule.type_order([], seed=0)[0] == 2
    assert rule.choose(scores, [], seed=0) == 7  # C's pool, its largest attention (not the global leader 1)
    recall, _ = rule.served([6, 0], seed=0)
    assert recall[2] > 0.75 and 0.7 < recall[0] < 1 and 0.7 < recall[1] < 1  # C's marker serves C; 0 tells A, B
    worst = int(np.argmin(recall))
    scores[6] = scores[0] = np.nan  # already picked
    pool = [u for u in rule.pools[worst] if np.isfinite(scores[u])]
    assert rule.choose(scores, [6, 0], seed=0) == max(pool, key=lambda u: scores[u])
    # "worst" lets a type run at most MAX_LEAD (2) picks ahead of the least-picked type: C, with 2 picks to
    # A's and B's 0, waits even if still the worst served
    assert rule.type_order([6, 7], seed=0)[-1] == 2


def test_coverage_consensus_keeps_each_types_mean_share():
    X, y = rare_type_data()
    rule = TypeCoverage("turns", [[0, 1, 2, 3], [10, 11, 12], [6, 7]], X, y, all_rows)
    # type 0's runs agree (0, 1 in every run); type 2's split between 6 and 7; plain votes would take 2
    runs = [[0, 1, 6, 10], [0, 1, 7, 11], [0, 1, 6, 12], [1, 0, 7, 10]]
    panel = rule.consensus(runs, 30, 3)  # fewer picks than shares: the largest type gives one up, all covered
    assert sorted(rule.type_of[u] for u in panel) == [0, 1, 2]
    panel4 = rule.consensus(runs, 30, 4)
    assert sorted(rule.type_of[u] for u in panel4) == [0, 0, 1, 2]  # 2 + 1 + 1 picks per run, kept
    assert panel4[:2] == [0, 1] and 10 in panel4  # each type's most-picked gene; 10 (2 runs) for type 1
    assert set(panel4) & {6, 7}


def test_coverage_needs_a_marker_pool_and_a_known_rule():
    X, y = rare_type_data()
    with pytest.raises(ValueError, match="marker_pool"):
        SequentialAttentionSelector(2, coverage="turns", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="coverage"):
        SequentialAttentionSelector(2, marker_pool=2, coverage="rare-first", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="marker_fdr filters the coverage rule's"):  # not silently ignored
        SequentialAttentionSelector(2, marker_pool=2, coverage="none", marker_fdr=0.05, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="coverage"):
        TypeCoverage("none", [[0]], X, y, all_rows)


def test_panel_defaults_drop_the_coverage_rule_where_there_is_no_marker_pool():
    from seqattn.selectors.defaults import panel_defaults

    cells = Dataset(X=np.ones((4, 3), dtype=np.float32), y=np.array([0, 1, 0, 1]), feature_names=list("abc"),
                    task="classification")
    three = Dataset(X=np.ones((6, 3), dtype=np.float32), y=np.array([0, 1, 2, 0, 1, 2]), feature_names=list("abc"),
                    task="classification")
    assert panel_defaults(three)["coverage"] == "worst" and panel_defaults(three)["marker_pool"] >= 1
    assert "coverage" not in panel_defaults(three, {"marker_pool": 0})  # the user's "no pool" wins, no error
    assert "coverage" not in panel_defaults(cells)  # two types: each gene serves both, no turns to take
    assert panel_defaults(cells, {"coverage": "turns"})["coverage"] == "turns"
    regression = Dataset(X=cells.X, y=np.arange(4.0), feature_names=list("abc"), task="regression")
    assert "coverage" not in panel_defaults(regression) and "marker_pool" not in panel_defaults(regression)


@pytest.mark.parametrize("score", ["recall", "f1", "probability"])
def test_each_served_ness_score_is_scikit_learns_per_type_measure(score):
    from sklearn.metrics import f1_score, recall_score

    X, y = rare_type_data()
    rule = TypeCoverage("worst", [[0, 1], [10, 11], [6, 7]], X, y, all_rows, score=score)
    y_val = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0, 0, 2, 0])  # type 0 absorbs cells of 1 and 2: recall 0.5, precision 0.4
    probability = np.random.default_rng(0).dirichlet(np.ones(3), size=len(y_val))
    served, mean_probability = rule._per_type(y_val, predicted, probability)
    expected = {"recall": recall_score(y_val, predicted, average=None),
                "f1": f1_score(y_val, predicted, average=None),
                "probability": [probability[y_val == c, c].mean() for c in range(3)]}[score]
    np.testing.assert_allclose(served, expected)
    np.testing.assert_allclose(mean_probability, [probability[y_val == c, c].mean() for c in range(3)])
    assert rule.describe()["coverage_score"] == score


def test_f1_serves_the_type_whose_calls_are_wrong_where_recall_does_not():
    X, y = rare_type_data()
    y_val = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    # type 0: every cell found, but 3 cells of types 1 and 2 are called 0 (recall 1.0, F1 8/11); types 1 and 2:
    # recall 0.75 and 0.5, F1 6/7 and 2/3 — recall ranks type 0 best served, F1 ranks it below type 1
    predicted = np.array([0, 0, 0, 0, 1, 1, 1, 0, 2, 2, 0, 0])
    probability = np.full((len(y_val), 3), 1 / 3)
    by_recall = TypeCoverage("worst", [[0], [10], [6]], X, y, all_rows, score="recall")
    by_f1 = TypeCoverage("worst", [[0], [10], [6]], X, y, all_rows, score="f1")
    recall, _ = by_recall._per_type(y_val, predicted, probability)
    f1, _ = by_f1._per_type(y_val, predicted, probability)
    assert int(np.argmax(recall)) == 0 and recall[0] == 1.0  # recall calls type 0 perfectly served
    assert f1[0] == pytest.approx(2 * 4 / (4 + 7)) and f1[0] < f1[1]  # F1 sees the cells wrongly called 0


def test_coverage_score_reaches_the_rule_and_is_checked():
    X, y = rare_type_data()
    sel = SequentialAttentionSelector(3, marker_pool=3, coverage="worst", coverage_score="f1", random_state=0,
                                      **FAST).fit(X, y)
    assert sel.trace_.settings["coverage_score"] == "f1" and "F1" in sel.trace_.settings["coverage_served_by"]
    assert 6 in sel.selected_features_  # the rare type's only marker is still picked
    with pytest.raises(ValueError, match="coverage_score"):
        SequentialAttentionSelector(2, marker_pool=2, coverage="worst", coverage_score="auc", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="coverage_score"):
        TypeCoverage("worst", [[0]], X, y, all_rows, score="auc")


def test_the_panel_defaults_pool_three_markers_per_pick_and_still_cover_the_rare_type():
    from seqattn.selectors.defaults import panel_defaults

    X, y = rare_type_data()
    cells = Dataset(X=X, y=y, feature_names=[f"g{i}" for i in range(30)], task="classification")
    options = {**panel_defaults(cells), "n_runs": 2}
    assert options["marker_pool"] == 3 and options["coverage"] == "worst"
    sel = SequentialAttentionSelector(3, random_state=0, **options, **FAST).fit(X, y)
    settings = sel.trace_.settings
    assert settings["marker_pool"] == 3 and settings["candidates"] == 9  # 3·k t-test markers, 3 per type
    panel = ttest_markers(cells, 9)
    assert set(sel.trace_.selected) <= set(panel.selected)
    assert 6 in sel.trace_.selected  # the rare type's only marker
    assert sorted(settings["pick_types"]) == ["0", "1", "2"]  # one pick per type at k = 3


def test_cli_coverage_score_reaches_the_trace(tmp_path):
    import pandas as pd

    from seqattn.cli import main
    from seqattn.trace import SelectionTrace

    X, y = rare_type_data()
    path = tmp_path / "cells.csv"
    pd.DataFrame(X, columns=[f"g{i}" for i in range(30)]).assign(label=y).to_csv(path, index=False)
    out = tmp_path / "picks.json"
    assert main(["select", "--data", str(path), "--target", "label", "-k", "3", "--method", "sa", "--runs", "1",
                 "--epochs", "8", "--marker-pool", "3", "--coverage", "worst", "--coverage-score", "f1",
                 "--out", str(out), "--quiet"]) == 0
    trace = SelectionTrace.from_json(out)
    assert trace.settings["coverage_score"] == "f1" and trace.settings["coverage"] == "worst"
    types = trace.settings["pick_types"]
    assert len(types) == 3 and set(types) <= {"0", "1", "2"}  # every pick made for a type, from its pool
    assert types[0] == "2"  # no picks yet: the prior calls every cell a large type, so the rare one is served first


# ------------------------------------------------------------ structure as one more client (structure_weight)
def programme_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four types with one clean marker each (columns 0–3; type 3's is weak, with a second weak one, 12) and a
    high-variance programme (columns 4–11, 3 × a latent factor, loosely raised in type 0): it carries the
    leading component of all genes, sits in type 0's marker pool, and tells no type apart that 0 does not."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), 80)
    X = rng.normal(size=(len(y), 30)).astype(np.float32)
    X[np.arange(len(y)), y] += np.array([4.0, 4.0, 4.0, 1.5])[y]
    X[y == 3, 12] += 1.5
    z = rng.normal(size=len(y)) + 0.8 * (y == 0)
    X[:, 4:12] += 3.0 * z[:, None]
    return X, y


def test_structure_picks_take_the_whole_pools_largest_attention_at_the_structures_share():
    from seqattn.selectors.coverage import is_structure_pick, structure_share

    assert structure_share(0) == 0 and structure_share(1) == 0.5 and structure_share(3) == 0.75
    pattern = lambda share: "".join("S" if is_structure_pick(n, share) else "t" for n in range(8))  # noqa: E731
    assert pattern(0.0) == "tttttttt" and pattern(0.5) == "tStStStS" and pattern(0.25) == "tttStttS"
    X, y = rare_type_data()
    pools = [[0, 1, 2], [10, 11], [6, 7]]
    scores = np.full(30, 0.01)
    scores[[0, 1, 2]] = [0.2, 0.3, 0.25]
    scores[[7, 6]] = [0.05, 0.02]
    rule = TypeCoverage("worst", pools, X, y, all_rows, structure=0.5)
    assert rule.choose(scores, [], seed=0) == 7  # pick 1 is a type's: C's pool, as without the structure
    picked = [7]
    scores[7] = np.nan
    assert rule.choose(scores, picked, seed=0) == 1  # pick 2 is the structure's: the pool's largest attention
    assert TypeCoverage("worst", pools, X, y, all_rows).choose(scores, picked, seed=0) != 1  # a type's otherwise
    assert rule.describe()["coverage_structure_share"] == 0.5
    with pytest.raises(ValueError, match="share"):
        TypeCoverage("worst", pools, X, y, all_rows, structure=1.0)


def test_the_structure_head_pulls_a_high_variance_programme_gene_that_classification_leaves_out():
    programme = set(range(4, 12))
    for seed in range(3):
        X, y = programme_data(seed)
        fit = lambda weight: SequentialAttentionSelector(  # noqa: E731
            5, marker_pool=3, coverage="worst", structure_weight=weight, random_state=0, epochs=30, batch_size=64,
            gain_model="none").fit(X, y)
        plain, shaped = fit(0.0), fit(0.3)
        assert not programme & set(plain.selected_features_), (seed, plain.selected_features_)
        assert programme & set(shaped.selected_features_), (seed, shaped.selected_features_)
        # the fifth pick is the structure's (share 0.3 / 1.3); the four before it still cover every type
        assert sorted(set(shaped.trace_.settings["pick_types"][:4])) == ["0", "1", "2", "3"]
        assert shaped.trace_.settings["coverage_structure_share"] == pytest.approx(0.3 / 1.3, abs=1e-4)
    assert "A share 0.23 of the picks" in coverage_caption(shaped.trace_)  # the page says so
    assert "share" not in coverage_caption(plain.trace_)


def noise_type_data() -> "Dataset":
    """Planted counts (one marker per type) plus a type "noise" of 30 cells drawn from all types: no gene
    is up-regulated in it, yet the round robin hands it its next-best t genes."""
    from seqattn.genomics import make_planted_counts

    data = make_planted_counts(n_cells=300, n_genes=40, n_types=3, markers_per_type=1, random_state=1)
    y = data.y.copy()
    y[np.random.default_rng(0).choice(len(y), 30, replace=False)] = 3
    return Dataset(X=data.X, y=y, feature_names=data.feature_names, task="classification",
                   class_names=list(data.class_names) + ["noise"])


def test_significant_markers_are_up_regulated_with_bh_adjusted_p_within_the_type():
    from statsmodels.stats.multitest import multipletests

    from seqattn.selectors.ttest import significant_markers, ttest_statistics

    data = noise_type_data()
    t, p = ttest_statistics(data)
    significant = significant_markers(t, p, 0.05)
    for c in range(len(t)):  # scanpy's pvals_adj: statsmodels' fdr_bh over all genes of the type
        adjusted = multipletests(p[c], method="fdr_bh")[1]
        np.testing.assert_array_equal(significant[c], (t[c] > 0) & (adjusted < 0.05))
    assert significant[3].sum() == 0  # the noise type has no marker
    assert all(significant[c].sum() >= 1 for c in range(3))
    with pytest.raises(ValueError, match="false-discovery rate"):
        significant_markers(t, p, 1.5)


def test_a_type_without_significant_markers_gets_no_pool_and_no_pick():
    from seqattn.selectors.ttest import significant_markers, ttest_statistics

    data = noise_type_data()
    statistics = ttest_statistics(data)
    panel = ttest_markers(data, 12, statistics=statistics)
    types = panel.settings["marker_types"]
    assert types.count(3) == 3  # the baseline panel is unchanged: the noise type takes its turns
    rows = lambda seed: (np.arange(len(data.y)), np.arange(len(data.y)))  # noqa: E731
    loose = TypeCoverage.from_marker_panel("worst", panel.selected, types, data.X, data.y, rows)
    strict = TypeCoverage.from_marker_panel("worst", panel.selected, types, data.X, data.y, rows,
                                            significant=significant_markers(*statistics))
    assert len(loose.pools[3]) == 3 and strict.pools[3] == []
    assert strict.types_without_pool(data.class_names) == ["noise"]
    assert all(strict.pools[c] for c in range(3))
    assert 3 not in strict.type_order([], seed=0)  # the rule never serves it
    # with every pool exhausted the pick is still made: the plain argmax of the candidates left
    scores = np.full(data.n_features, np.nan)
    leftover = loose.pools[3][0]
    scores[leftover] = 1.0
    assert strict.choose(scores, [u for c in range(3) for u in strict.pools[c]], seed=0) == leftover


def test_after_banning_a_types_only_marker_no_pick_is_wasted_on_its_noise_genes():
    """The new-user sweep's case: one planted marker per type, type 0's banned. Every pool of its t-test
    "markers" is noise; with significant pools the picks go to the other types' real markers."""
    from seqattn.genomics import make_planted_counts

    data = make_planted_counts(n_cells=300, n_genes=40, n_types=4, markers_per_type=1, random_state=0)
    marker = {name: genes[0] for name, genes in data.extra["markers_by_type"].items()}
    options = dict(marker_pool=3, coverage="worst", class_weight="balanced", banned=[marker["type 0"]],
                   random_state=0, **FAST)
    before = SequentialAttentionSelector(3, **options).fit_dataset(data)
    assert "type 0" in before.trace_.settings["pick_types"]  # the defect: a pick for type 0's noise
    assert not {marker["type 1"], marker["type 3"]} <= set(before.trace_.selected)
    after = SequentialAttentionSelector(3, marker_fdr=0.05, **options).fit_dataset(data)
    assert sorted(after.trace_.selected) == sorted(marker[f"type {c}"] for c in (1, 2, 3))
    assert "type 0" not in after.trace_.settings["pick_types"]
    assert after.trace_.settings["types_without_pool"] == ["type 0"]
    caption = coverage_caption(after.trace_)
    assert "type 0 has no significant marker" in caption and "no pick was made for it" in caption
    assert "significant marker" not in coverage_caption(before.trace_)
