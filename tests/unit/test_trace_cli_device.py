"""SelectionTrace round trips, the CLI contract, device resolution, sklearn estimator checks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqattn import SelectionTrace, resolve_device
from seqattn.cli import main
from seqattn.device import available_devices

ROOT = Path(__file__).resolve().parents[2]


def _trace() -> SelectionTrace:
    trace = SelectionTrace(method="sa", feature_names=["a", "b", "c"], dataset="toy", task="classification",
                           metric_name="accuracy", pinned=[2], settings={"k": 2})
    trace.add_step(1, np.array([0.2, 0.8, np.nan]), 0.1, 0.7, 0.5)
    trace.add_step(0, np.array([1.0, np.nan, np.nan]), 0.05, 0.75, 0.9)
    return trace


def test_trace_json_round_trip_keeps_everything(tmp_path):
    trace = _trace()
    text = trace.to_json(tmp_path / "t.json")
    data = json.loads(text)  # strict JSON: NaN became null
    assert data["selected"] == [1, 0] and data["selected_names"] == ["b", "a"]
    assert data["steps"][0]["scores"][2] is None
    back = SelectionTrace.from_json(tmp_path / "t.json")
    assert back.selected == [1, 0] and back.pinned == [2]
    np.testing.assert_array_equal(np.isnan(back.score_matrix()), np.isnan(trace.score_matrix()))
    np.testing.assert_allclose(np.nan_to_num(back.score_matrix()), np.nan_to_num(trace.score_matrix()))
    assert SelectionTrace.from_json(text).to_dict() == trace.to_dict()


def test_trace_frame_and_csv():
    trace = _trace()
    frame = trace.to_frame()
    # the pinned feature is a row too (order 0, pinned True), then the picks in order
    assert list(frame["name"]) == ["c", "b", "a"] and list(frame["order"]) == [0, 1, 2]
    assert list(frame["pinned"]) == [True, False, False]
    assert frame.loc[1, "score"] == pytest.approx(0.8)
    assert frame.loc[1, "confidence"] == pytest.approx(0.8 / 0.5) and frame.loc[1, "runner_up"] == "a"
    assert frame.loc[1, "runner_up_weight"] == pytest.approx(0.2)
    parsed = pd.read_csv(__import__("io").StringIO(trace.to_csv()))
    assert list(parsed.columns) == ["order", "feature", "name", "pinned", "score", "confidence", "runner_up",
                                    "runner_up_weight", "separation", "near_tie", "marginal_gain", "val_metric",
                                    "seconds_since_start"]
    pd.testing.assert_frame_equal(parsed, frame.fillna(np.nan), check_dtype=False)  # the CSV round-trips
    assert trace.truncated(1).selected == [1]


def test_confidence_runner_up_and_near_tie_survive_json():
    names = [f"f{i}" for i in range(40)]
    trace = SelectionTrace(method="sa", feature_names=names)
    clear = np.full(40, 0.5 / 39)
    clear[7] = 0.5  # 19.5× the uniform share, far outside the others
    trace.add_step(7, clear)
    rng = np.random.default_rng(0)
    noisy = np.exp(rng.normal(0, 0.3, 40))
    noisy[7] = np.nan
    noisy /= np.nansum(noisy)
    pick = int(np.nanargmax(noisy))
    trace.add_step(pick, noisy)
    first, second = trace.steps
    assert first.confidence == pytest.approx(0.5 * 40) and not first.near_tie
    assert second.near_tie and second.runner_up is not None and second.runner_up != pick
    assert second.separation < 4.7  # within what the largest of 39 noisy logits reaches (√(2 ln 39) + 2)
    data = json.loads(trace.to_json())
    assert data["steps"][0]["confidence"] == pytest.approx(20.0) and data["steps"][1]["near_tie"] is True
    back = SelectionTrace.from_json(trace.to_json())
    for a, b in zip(back.steps, trace.steps):
        assert (a.confidence, a.runner_up, a.runner_up_weight, a.near_tie) == \
               (pytest.approx(b.confidence), b.runner_up, pytest.approx(b.runner_up_weight), b.near_tie)


def test_trace_rejects_wrong_score_length():
    with pytest.raises(ValueError, match="shape"):
        _trace().add_step(0, np.array([1.0, 2.0]))


def test_device_resolution_on_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == available_devices()[0]
    with pytest.raises(ValueError, match="Unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_sa_runs_on_cuda():
    from seqattn import SequentialAttentionSelector, make_planted

    ds = make_planted(n_samples=400, n_features=20, n_informative=3, random_state=0)
    sel = SequentialAttentionSelector(3, device="cuda", random_state=0).fit_dataset(ds)
    assert sel.device_.startswith("cuda") and set(sel.selected_features_) == set(ds.informative)


@pytest.mark.gpu
@pytest.mark.skipif(not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
                    reason="no Apple MPS device on this machine")
def test_sa_runs_on_mps():
    from seqattn import SequentialAttentionSelector, make_planted

    ds = make_planted(n_samples=400, n_features=20, n_informative=3, random_state=0)
    sel = SequentialAttentionSelector(3, device="mps", random_state=0).fit_dataset(ds)
    assert sel.device_ == "mps"


def test_cli_select_json_and_csv(tmp_path, capsys):
    out = tmp_path / "trace.json"
    assert main(["select", "--data", "wine", "-k", "3", "--method", "omp", "--out", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    for key in ("method", "dataset", "k", "selected", "selected_names", "steps", "settings", "device"):
        assert key in data
    assert data["method"] == "omp" and data["k"] == 3 and len(data["steps"]) == 3
    assert set(data["steps"][0]) >= {"feature", "name", "scores", "marginal_gain", "val_metric", "seconds"}
    csv = tmp_path / "picks.csv"
    assert main(["select", "--data", "wine", "-k", "2", "--method", "sa", "--epochs", "15", "--out", str(csv),
                 "--quiet"]) == 0
    assert len(pd.read_csv(csv)) == 2


def test_cli_table_file_with_target(tmp_path):
    from seqattn import make_planted

    ds = make_planted(n_samples=200, n_features=8, n_informative=2, random_state=0)
    frame = pd.DataFrame(ds.X, columns=ds.feature_names)
    frame["label"] = ds.y
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "o.json"
    assert main(["select", "--data", str(path), "--target", "label", "-k", "2", "--method", "omp",
                 "--out", str(out), "--quiet"]) == 0
    assert set(json.loads(out.read_text())["selected"]) == set(ds.informative)


@pytest.mark.parametrize("argv, fragment", [
    (["select", "--data", "nope", "-k", "2", "--out", "x.json"], "neither a built-in"),
    (["select", "--data", "wine", "-k", "99", "--out", "x.json"], "larger than the number of features"),
    (["select", "--data", "wine", "-k", "0", "--out", "x.json"], "positive"),
    (["select", "--data", "wine", "-k", "2", "--out", "x.txt"], ".json or .csv"),
    (["select", "--data", "wine", "-k", "2", "--method", "magic", "--out", "x.json"], "unknown"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment.lower() in err.lower() and len(err.splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def _select_choices() -> dict[str, list]:
    from seqattn.cli import _parser

    select = next(a for a in _parser()._actions if a.dest == "command").choices["select"]
    return {a.dest: list(a.choices) for a in select._actions if a.choices}


def test_cli_choices_are_what_the_selector_accepts():
    """The CLI lists SA's choices from the constants the selector validates with (defaults.py), not copies."""
    from seqattn import objectives
    from seqattn.selectors import coverage, defaults
    from seqattn.selectors.sequential_attention import SequentialAttentionSelector

    choices = _select_choices()
    assert choices["coverage"] == list(coverage.COVERAGE_RULES) == ["none", "turns", "worst"]
    assert choices["coverage_score"] == list(coverage.COVERAGE_SCORES) == ["recall", "f1", "probability"]
    assert choices["model"] == list(defaults.SA_MODELS) == ["mlp", "linear"]
    assert choices["class_weight"] == ["none", "balanced"] and objectives.CLASS_WEIGHTS == (None, "balanced")
    assert coverage.COVERAGE_RULES is defaults.COVERAGE_RULES and objectives.CLASS_WEIGHTS is defaults.CLASS_WEIGHTS
    rules = SequentialAttentionSelector._parameter_constraints
    for option in ("coverage", "coverage_score", "model"):
        assert rules[option][0].options == set(choices[option]), option
    assert rules["class_weight"][0].options | {"none"} == set(choices["class_weight"]) and None in rules["class_weight"]


def test_cli_parser_does_not_import_torch():
    """--help and argument errors stay fast: the parser reads its choices from torch-free modules."""
    code = ("import sys; from seqattn.cli import _parser; _parser(); "
            "loaded = [m for m in ('torch', 'seqattn.selectors.coverage') if m in sys.modules]; print(loaded)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "seqattn", "datasets"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "digits" in result.stdout and "pbmc68k_reduced" in result.stdout


# ------------------------------------------------------------ scikit-learn conventions
# Every check applies and passes; none is marked as an expected failure.
# (scikit-learn itself skips check_array_api_input unless SCIPY_ARRAY_API=1.)
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@pytest.mark.slow
def test_sklearn_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    from seqattn import SequentialAttentionSelector

    estimator = SequentialAttentionSelector(1, epochs=10, random_state=0)
    results = check_estimator(estimator, on_fail=None, expected_failed_checks=EXPECTED_FAILED_CHECKS)
    failed = [r for r in results if r["status"] == "failed"]
    assert not failed, [(r["check_name"], str(r["exception"])[:300]) for r in failed]


def test_every_public_name_imports():
    import seqattn

    for name in seqattn.__all__:
        assert getattr(seqattn, name) is not None, name
    from seqattn.selectors import available_methods

    assert {"sa", "omp", "shap", "greedy", "mutual_info", "anova", "variance", "ttest"} <= set(available_methods())


@pytest.mark.parametrize("method, option", [("sa", "epochz"), ("omp", "foo"), ("anova", "bar"), ("greedy", "baz")])
def test_run_method_unknown_option_is_a_value_error(method, option):
    from seqattn import load_builtin, run_method

    with pytest.raises(ValueError, match=option):
        run_method(load_builtin("wine"), method, 2, **{option: 1})
