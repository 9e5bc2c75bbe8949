"""Baselines: SHAP ranking, greedy forward selection and filters all return valid traces
whose scores mean what they say; the XOR pair separates interaction-aware methods from filters."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.feature_selection import f_classif, f_regression

from seqattn.data import Dataset, make_planted
from seqattn.evaluation.agreement import recovery
from seqattn.evaluation.retrain import accuracy_vs_k
from seqattn.scoring import candidate_gains
from seqattn.selectors import REGISTRY
from seqattn.selectors.filters import anova_select, mutual_info_select, variance_select
from seqattn.selectors.greedy import greedy_select
from seqattn.selectors.shap_rank import explain_model, shap_explain, shap_select

BASELINES = {name: REGISTRY[name].load() for name in ("shap", "greedy", "mutual_info", "anova", "variance")}

SMALL_SHAP = {"n_background": 16, "n_explain": 24, "epochs": 15}


@pytest.fixture(scope="module")
def planted() -> Dataset:
    return make_planted(n_samples=400, n_features=10, n_informative=3, random_state=1)


@pytest.fixture(scope="module")
def xor_data() -> Dataset:
    """Only an XOR pair carries signal: no feature has any marginal association."""
    return make_planted(n_samples=600, n_features=10, n_informative=0, xor_pairs=1, random_state=2)


def _run(name: str, dataset: Dataset, k: int):
    options = SMALL_SHAP if name == "shap" else {}
    return BASELINES[name](dataset, k, **options)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_method_returns_a_valid_trace(planted: Dataset, name: str) -> None:
    k = 3
    trace = _run(name, planted, k)
    assert trace.method == name
    assert trace.k == k and len(set(trace.selected)) == k
    scores = trace.score_matrix()
    assert scores.shape == (k, planted.n_features)
    for t, step in enumerate(trace.steps):
        earlier = trace.selected[:t]
        assert np.all(np.isnan(step.scores[earlier])), "already selected features must be NaN"
        remaining = [i for i in range(planted.n_features) if i not in earlier]
        assert np.all(np.isfinite(step.scores[remaining]))
        # the pick is the best remaining candidate by this method's own score
        assert step.feature == remaining[int(np.argmax(step.scores[remaining]))]
        assert 0.0 <= step.val_metric <= 1.0
    assert trace.metric_name == "accuracy"
    assert trace.settings["wall_seconds"] > 0


def test_pinned_and_banned_are_respected(planted: Dataset) -> None:
    trace = anova_select(planted, 3, pinned=[0], banned=[1, 2])
    assert not {0, 1, 2} & set(trace.selected)
    assert np.all(np.isnan(trace.steps[0].scores[[0, 1, 2]]))
    with pytest.raises(ValueError, match="only 7 features can be picked"):
        variance_select(planted, 8, pinned=[0], banned=[1, 2])


def test_filter_scores_match_scikit_learn(planted: Dataset) -> None:
    anova = anova_select(planted, 2)
    expected, _ = f_classif(planted.X, planted.y)
    np.testing.assert_allclose(anova.steps[0].scores, expected, rtol=1e-5)

    variance = variance_select(planted, 4)
    assert variance.selected == list(np.argsort(-planted.X.var(axis=0))[:4])

    diabetes_like = make_planted(n_samples=300, n_features=8, n_informative=2, task="regression", random_state=3)
    reg = anova_select(diabetes_like, 2)
    np.testing.assert_allclose(reg.steps[0].scores, f_regression(diabetes_like.X, diabetes_like.y)[0], rtol=1e-5)
    assert set(reg.selected) == set(diabetes_like.informative)
    assert reg.metric_name == "R²"


def test_mutual_information_finds_linear_signal(planted: Dataset) -> None:
    trace = mutual_info_select(planted, 3)
    assert set(trace.selected) == set(planted.informative)


def test_greedy_scores_are_true_marginal_gains(planted: Dataset) -> None:
    trace = greedy_select(planted, 3)
    assert set(trace.selected) == set(planted.informative)
    for t, step in enumerate(trace.steps):
        gains = candidate_gains(planted, trace.selected[:t])
        by_feature = dict(zip(gains["feature"], gains["gain"]))
        for i, value in by_feature.items():
            # greedy warm-starts each refit from the fit on S; candidate_gains starts at zero. Same convex
            # optimum, each reached to lbfgs' tolerance (1e-4), so the two agree to about that.
            assert step.scores[i] == pytest.approx(value, rel=2e-3, abs=1e-4)
        # marginal_gain is the change in validation accuracy from S_{t-1} to S_t
        previous = trace.base_metric if t == 0 else trace.steps[t - 1].val_metric
        assert step.marginal_gain == pytest.approx(step.val_metric - previous)


def test_greedy_refuses_wide_data_unless_shortlisting() -> None:
    wide = make_planted(n_samples=120, n_features=130, n_informative=2, random_state=0)
    with pytest.raises(ValueError, match="max_candidates"):
        greedy_select(wide, 2)
    trace = greedy_select(wide, 2, max_candidates=12)
    assert "12 of 130 candidates" in trace.settings["candidate_shortlist"]
    assert int(np.isfinite(trace.steps[0].scores).sum()) == 12
    with pytest.raises(ValueError, match="lookahead"):
        greedy_select(wide, 2, max_candidates=12, lookahead=3)


class _SinGate(torch.nn.Module):
    """Uses functional ops (sin, x·sigmoid(x)) that DeepExplainer cannot attribute."""

    def __init__(self, n_features: int, n_outputs: int):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.sin(x) + x * torch.sigmoid(x))


def test_shap_falls_back_to_gradient_explainer_when_deep_fails(planted: Dataset) -> None:
    torch.manual_seed(0)
    model = _SinGate(planted.n_features, 2)
    explanation = shap_explain(planted, model=model, n_background=16, n_explain=20, random_state=0)
    assert explanation.explainer == "gradient"
    assert "DeepExplainer failed" in explanation.fallback_reason
    assert explanation.values.shape == (20, planted.n_features, 2)
    trace = shap_select(planted, 3, explanation=explanation)
    assert trace.settings["explainer"] == "gradient"
    assert trace.settings["fallback_reason"].startswith("DeepExplainer failed")
    with pytest.raises(Exception):
        explain_model(model, np.zeros((4, planted.n_features)), np.ones((2, planted.n_features)), explainer="deep")


def test_shap_deep_explainer_on_the_mlp_is_additive_and_finds_signal(planted: Dataset) -> None:
    trace = shap_select(planted, 3, **SMALL_SHAP)
    assert trace.settings["explainer"] == "deep"  # the MLP is rewrapped so Deep supports it
    assert trace.settings["fallback_reason"] == ""
    assert set(trace.selected) == set(planted.informative)


@pytest.mark.slow
def test_xor_pair_is_found_by_interaction_aware_methods_and_missed_by_filters(xor_data: Dataset) -> None:
    pair = set(xor_data.extra["xor_pairs"][0])
    traces = {
        "greedy": greedy_select(xor_data, 2, model="quadratic", lookahead=2),
        "anova": anova_select(xor_data, 2),
        "mutual_info": mutual_info_select(xor_data, 2),
        "variance": variance_select(xor_data, 2),
    }
    from seqattn.selectors.sequential_attention import SequentialAttentionSelector

    traces["sa"] = SequentialAttentionSelector(2, random_state=0).fit_dataset(xor_data).trace_
    found = recovery(xor_data, traces, [2]).set_index("method")["xor_pairs_found"]
    assert found["greedy"] == 1 and found["sa"] == 1
    assert found["anova"] == 0 and found["mutual_info"] == 0 and found["variance"] == 0
    assert set(traces["greedy"].selected) == pair

    acc = accuracy_vs_k(xor_data, traces, [2], seeds=[0, 1], epochs=40).groupby("method")["value"].mean()
    for winner in ("greedy", "sa"):
        for filt in ("anova", "mutual_info", "variance"):
            assert acc[winner] > acc[filt] + 0.25, acc.to_dict()
    assert acc["greedy"] > 0.85 and max(acc["anova"], acc["variance"]) < 0.65


def test_plain_greedy_cannot_see_one_half_of_an_xor_pair(xor_data: Dataset) -> None:
    """Why lookahead exists: alone, an XOR member has no gain; next to its partner it has a large one."""
    a, b = xor_data.extra["xor_pairs"][0]
    alone = candidate_gains(xor_data, [], model="quadratic").set_index("feature")["gain"]
    assert abs(alone[a]) < 0.02 and abs(alone[b]) < 0.02
    with_partner = candidate_gains(xor_data, [a], model="quadratic")
    assert with_partner.iloc[0]["feature"] == b
    assert with_partner.iloc[0]["gain"] > 0.2


def test_greedy_warm_starts_and_score_test_shortlist_keep_the_picks(planted: Dataset) -> None:
    from seqattn.scoring import RefitScorer

    full = greedy_select(planted, 3)
    scorer = RefitScorer(planted, list(range(planted.n_features)))
    cold = []
    for _ in range(3):  # greedy by hand with cold-start refits
        losses = {i: scorer.evaluate(cold + [i])[0] for i in range(planted.n_features) if i not in cold}
        cold.append(min(losses, key=losses.get))
    assert full.selected == cold
    short = greedy_select(planted, 3, refits_per_step=4)
    assert short.selected == full.selected
    assert all(np.isfinite(s.scores).sum() == 4 for s in short.steps)  # only the shortlist was refitted
    assert "score-test" in short.settings["refits_per_step"]
    # the score test ranks an informative feature first on the empty set
    _, _, state = scorer.fit([])
    statistic = scorer.score_test([], state, list(range(planted.n_features)))
    assert int(np.argmax(statistic)) in set(planted.informative)
    with pytest.raises(ValueError, match="refits_per_step"):
        greedy_select(planted, 2, refits_per_step=0)
