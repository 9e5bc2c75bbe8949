"""The method registry: every method runs through run_method, options are checked from their
declaration for every method, and the registry is the one owner of method labels."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from seqattn.data import DataError, make_planted
from seqattn.selectors import COMMON_ARGUMENTS, METHOD_LABELS, REGISTRY, method_label, run_method

# tiny, fast settings; every method's options come from its own declaration
FAST = {"sa": {"epochs": 3}, "shap": {"n_background": 8, "n_explain": 8, "epochs": 3}}


@pytest.fixture(scope="module")
def tiny():
    return make_planted(n_samples=120, n_features=8, n_informative=2, random_state=3)


@pytest.mark.parametrize("method", list(REGISTRY))
def test_every_registered_method_runs_through_run_method(tiny, method):
    calls = []
    trace = run_method(tiny, method, 2, random_state=0, callback=lambda *a: calls.append(a), **FAST.get(method, {}))
    assert trace.k == 2 and len(set(trace.selected)) == 2
    assert all(0 <= j < tiny.n_features for j in trace.selected)
    assert trace.settings["wall_seconds"] > 0
    assert trace.dataset == tiny.name
    assert calls, "every runner reports progress through the callback"


@pytest.mark.parametrize("method", list(REGISTRY))
def test_unknown_options_are_refused_for_every_method(tiny, method):
    accepted = REGISTRY[method].options()
    with pytest.raises(ValueError, match=r"Unknown option\(s\) for .*no_such_option.*accepted: ") as err:
        run_method(tiny, method, 2, no_such_option=1)
    for name in accepted:  # the message names what is accepted
        assert name in str(err.value)


def test_ttest_no_longer_swallows_unknown_options(tiny):
    with pytest.raises(ValueError, match="foo"):
        run_method(tiny, "ttest", 2, foo=1)


@pytest.mark.parametrize("method", [m for m in REGISTRY if m != "sa"])
def test_declared_options_are_exactly_the_runners_keyword_parameters(method):
    params = inspect.signature(REGISTRY[method].load()).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()), "no hidden **options"
    declared = REGISTRY[method].options()
    assert set(declared) == {n for n, p in params.items()
                             if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in COMMON_ARGUMENTS}
    assert {"pinned", "banned"} <= set(declared)  # every method honours pinned / banned features


def test_sa_options_are_the_selector_parameters():
    from seqattn.selectors.sequential_attention import SequentialAttentionSelector

    params = SequentialAttentionSelector().get_params()
    assert REGISTRY["sa"].options() == {n: v for n, v in params.items()
                                        if n not in ("n_features_to_select", "device", "random_state")}


def test_unknown_method_and_bad_k_are_clear_errors(tiny):
    with pytest.raises(ValueError, match="Unknown method 'nope'; available: sa, omp"):
        run_method(tiny, "nope", 2)
    with pytest.raises(DataError, match="k=9 is larger than the number of features"):
        run_method(tiny, "anova", 9)


def test_the_registry_is_the_single_owner_of_labels():
    from seqattn.evaluation import compare
    from seqattn.plots import compare as compare_plots

    assert METHOD_LABELS == {name: spec.label for name, spec in REGISTRY.items()}
    assert compare.ALL_METHODS == tuple(REGISTRY)
    assert compare_plots.METHOD_LABELS is METHOD_LABELS
    assert method_label("ttest") == "t-test markers" and method_label("sa (2)") == "sa (2)"


def test_compare_runs_ttest_through_the_registry():
    from seqattn.evaluation.compare import compare_methods

    data = make_planted(n_samples=150, n_features=8, n_informative=2, random_state=1)
    result = compare_methods(data, ["ttest", "anova"], 2, ks=[1, 2], seeds=[0], eval_model="logistic")
    assert not result.errors
    assert result.traces["ttest"].method == "ttest" and result.traces["ttest"].k == 2
    assert list(result.rankings().columns) == ["t-test markers", "ANOVA F"]
    assert set(result.accuracy["method"]) == {"ttest", "anova"}
    assert np.isfinite(result.accuracy["value"]).all()
