"""compare_methods and the one-step, three-view table behind the Compare page."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from seqattn.evaluation.compare import Comparison, compare_methods, default_ks, residual_correlations, step_scores
from seqattn.data import make_planted
from seqattn.scoring import candidate_gains
from seqattn.selectors.omp import omp_select
from seqattn.trace import SelectionTrace


@pytest.fixture(scope="module")
def planted():
    return make_planted(n_samples=300, n_features=9, n_informative=3, n_classes=3, random_state=7)


def test_residual_correlations_reproduce_omp_scores(planted) -> None:
    trace = omp_select(planted.X, planted.y, 3, planted.feature_names, task="classification")
    for t, step in enumerate(trace.steps):
        ours = residual_correlations(planted, trace.selected[:t])
        np.testing.assert_allclose(ours, step.scores, rtol=1e-6, equal_nan=True)


def test_step_scores_line_up_three_views_of_the_same_candidates(planted) -> None:
    sa = SelectionTrace(method="sa", feature_names=planted.feature_names)
    rng = np.random.default_rng(0)
    order = [int(i) for i in planted.informative]
    for t, f in enumerate(order):
        scores = rng.random(planted.n_features)
        scores[order[:t]] = np.nan
        scores[f] = 2.0
        sa.add_step(f, scores)
    frame = step_scores(planted, sa, 1)
    before = order[:1]
    assert frame.attrs["selected_before"] == before and before[0] not in set(frame["feature"])
    np.testing.assert_allclose(frame["sa_attention"], sa.steps[1].scores[frame["feature"]])
    gains = candidate_gains(planted, before).set_index("feature")["gain"]
    np.testing.assert_allclose(frame["greedy_gain"], gains[frame["feature"]].to_numpy())
    np.testing.assert_allclose(frame["omp_correlation"], residual_correlations(planted, before)[frame["feature"]])
    assert frame.loc[frame["sa_pick"], "feature"].tolist() == [order[1]]
    with pytest.raises(ValueError, match="step must be between"):
        step_scores(planted, sa, 5)


def test_compare_methods_collects_traces_errors_and_downloads(planted) -> None:
    result = compare_methods(planted, ["omp", "anova", "greedy"], 3, ks=[1, 3], seeds=[0, 1],
                             eval_model="logistic", method_options={"greedy": {"lookahead": 3}})
    assert isinstance(result, Comparison)
    assert set(result.traces) == {"omp", "anova"}
    assert "lookahead must be 1 or 2" in result.errors["greedy"]  # skipped, with the reason kept
    assert len(result.accuracy) == 2 * 2 * 2
    assert result.overlap().loc["omp", "omp"] == 1.0
    rec = result.recovery().set_index(["method", "k"])
    assert rec.loc[("omp", 3), "n_informative"] == 3
    payload = json.loads(result.to_json())
    assert set(payload["traces"]) == {"omp", "anova"}
    assert SelectionTrace.from_dict(payload["traces"]["omp"]).selected == result.traces["omp"].selected
    assert result.summary_csv().splitlines()[0] == "method,k,mean,std,n"
    assert list(result.rankings().columns) == ["OMP", "ANOVA F"]
    assert (result.timings()["seconds"] > 0).all()


def test_compare_methods_rejects_bad_requests(planted) -> None:
    with pytest.raises(ValueError, match="Unknown method"):
        compare_methods(planted, ["lasso"], 3)
    with pytest.raises(ValueError, match="between 1 and k=3"):
        compare_methods(planted, ["anova"], 3, ks=[7])
    assert default_ks(10) == [1, 2, 5, 10]
    assert default_ks(1) == [1]


def test_compare_stops_on_request_and_keeps_what_finished():
    from seqattn import load_builtin
    from seqattn.evaluation.compare import compare_methods

    ds = load_builtin("wine")
    calls = []

    def stop_after_first_method(step, total, message):
        calls.append(message)
        return "Mutual information" in message and "retraining" in message  # selected, not yet retrained

    result = compare_methods(ds, ["mutual_info", "anova", "variance"], 3, seeds=[0], eval_model="logistic",
                             callback=stop_after_first_method)
    assert list(result.traces) == ["mutual_info"]
    assert result.settings["stopped"] == "stopped"
    assert result.accuracy.empty  # stopped before retraining
    assert all(" left" in m for m in calls[:-1])  # every progress message carries an estimate of the time left


def test_compare_publishes_each_method_with_its_accuracy_as_it_finishes():
    from seqattn import load_builtin
    from seqattn.evaluation.compare import compare_methods

    partials = []
    progress = []
    result = compare_methods(load_builtin("wine"), ["anova", "variance", "omp"], 3, ks=[1, 3], seeds=[0, 1],
                             eval_model="logistic", on_partial=partials.append,
                             callback=lambda s, t, m: progress.append((s, t, m)))
    assert [list(p.traces) for p in partials] == [["anova"], ["anova", "variance"]]
    for partial in partials:  # each partial result already holds its methods' retraining rows
        assert set(partial.accuracy["method"]) == set(partial.traces) and partial.settings["running"]
        assert len(partial.accuracy) == 4 * len(partial.traces)
    assert list(result.traces) == ["anova", "variance", "omp"] and not result.settings["running"]
    pd.testing.assert_frame_equal(partials[-1].accuracy, result.accuracy.iloc[:8].reset_index(drop=True))
    fractions = [s / t for s, t, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # the bar only moves forward
    assert any(m.startswith("OMP (3/3)") for *_, m in progress)  # names the running method


def test_compare_time_limit_returns_partial_result():
    from seqattn import load_builtin
    from seqattn.evaluation.compare import compare_methods

    result = compare_methods(load_builtin("wine"), ["anova", "variance"], 3, seeds=[0], eval_model="logistic",
                             max_seconds=0.0)
    assert result.traces == {} and result.settings["stopped"] == "time limit"


def test_comparison_renders_compactly_in_jupyter() -> None:
    """A short repr and a rich one (methods, k, accuracy, picks, overlap) instead of 15,000 characters of
    dataclass fields; feature names and error messages are user text."""
    from seqattn.selectors import METHOD_LABELS

    data = make_planted(n_samples=300, n_features=9, n_informative=3, n_classes=3, random_state=7)
    data.feature_names[data.informative[0]] = "<img src=x onerror=alert(1)>"
    result = compare_methods(data, ["anova", "omp"], 3, ks=[1, 3], seeds=[0], eval_model="logistic")
    result.errors["greedy"] = "failed <b>badly</b>"
    text = repr(result)
    assert len(text) < 200 and "k=3" in text and "'anova', 'omp'" in text and "greedy" in text
    page = result._repr_html_()
    assert len(page) < 6_000
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # a picked name, escaped
    assert "<b>badly" not in page and "failed &lt;b&gt;badly&lt;/b&gt;" in page
    for method in ("anova", "omp"):
        assert METHOD_LABELS[method] in page
    for cell in result.accuracy_table().iloc[:, 1:].to_numpy().ravel():
        assert cell in page  # every accuracy "mean ± std" cell
    overlap = result.overlap().to_numpy()
    assert f"<td>{overlap[0, 1]:.2f}</td>" in page and "<td>1.00</td>" in page  # Jaccard of the top-3 sets
    assert "k = 3" in page and "Overlap" in page and "Picks" in page
