"""Feature groups: one-hot text columns, missing indicators and user groups are selected as units."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqattn.cli import main as cli_main
from seqattn.data import DataError, Dataset
from seqattn.evaluation.retrain import accuracy_vs_k
from seqattn.trace import pick_columns
from seqattn.data.groups import FeatureGroups
from seqattn.data.tables import load_table
from seqattn.selectors import run_method
from seqattn.selectors.omp import omp_select
from seqattn.selectors.sequential_attention import SequentialAttention
from seqattn.trace import SelectionTrace


def _tips(tmp_path: Path, n: int = 240, seed: int = 3) -> Path:
    """A tips-like CSV: text columns sex/smoker/day/time; whether the tip is big depends on the day."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "total_bill": rng.gamma(4, 5, n).round(2),
        "sex": rng.choice(["Male", "Female"], n),
        "smoker": rng.choice(["Yes", "No"], n),
        "day": rng.choice(["Thur", "Fri", "Sat", "Sun"], n),
        "time": rng.choice(["Lunch", "Dinner"], n),
        "size": rng.integers(1, 7, n),
    })
    effect = frame["day"].map({"Thur": -1.0, "Fri": 1.0, "Sat": -1.0, "Sun": 1.0})
    frame["big_tip"] = np.where(effect + rng.normal(0, 0.7, n) > 0, "yes", "no")
    path = tmp_path / "tips.csv"
    frame.to_csv(path, index=False)
    return path


def test_tips_text_columns_become_named_groups(tmp_path: Path):
    ds = load_table(_tips(tmp_path), target="big_tip")
    assert ds.groups.names == ("total_bill", "sex", "smoker", "day", "time", "size")
    day = ds.groups.columns[3]
    assert [ds.feature_names[c] for c in day] == ["day=Fri", "day=Sat", "day=Sun", "day=Thur"]
    assert ds.n_groups == 6 and ds.n_features == 12
    assert ds.extra["warnings"] == []  # the day matters but does not decide the label alone
    assert any("One-hot encoded" in n and "'day' (4 values)" in n for n in ds.extra["notes"])


@pytest.mark.parametrize("method", ["omp", "greedy", "anova", "mutual_info", "sa"])
def test_every_method_finds_the_categorical_group(tmp_path: Path, method: str):
    ds = load_table(_tips(tmp_path), target="big_tip")
    options = {"epochs": 30} if method == "sa" else {}
    trace = run_method(ds, method, 2, random_state=0, **options)
    assert trace.feature_names == list(ds.groups.names) and trace.selected_names[0] == "day"
    assert trace.columns_of([trace.selected[0]]) == list(ds.groups.columns[3])
    frame = trace.to_frame()
    assert frame.loc[0, "columns"] == "day=Fri; day=Sat; day=Sun; day=Thur"
    again = SelectionTrace.from_json(trace.to_json())
    assert again.groups == trace.groups and again.column_names == ds.feature_names
    # accuracy-vs-k retrains on the picked groups' columns
    acc = accuracy_vs_k(ds, {method: trace}, ks=[1], seeds=[0], model="logistic")
    assert acc["features"].iloc[0] == "day" and acc["value"].iloc[0] > 0.6


def _planted_groups(n: int = 400, seed: int = 0) -> Dataset:
    """Two 3-column groups; only the *sum* of group 'A' matters, each of its columns is weak alone.
    A single noise column is a decoy, as are 10 more noise columns."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 14)).astype(np.float32)
    y = X[:, 0:3].sum(axis=1) + 0.3 * rng.standard_normal(n)
    ds = Dataset(X=X, y=y, feature_names=[f"c{j}" for j in range(14)], task="regression", name="planted_groups")
    return ds.with_groups({"A": ["c0", "c1", "c2"], "B": ["c3", "c4", "c5"]})


def test_planted_group_is_found_by_sa_omp_and_greedy():
    ds = _planted_groups()
    assert ds.groups.names[:2] == ("A", "B") and ds.n_groups == 10
    for method, options in (("omp", {}), ("greedy", {}), ("sa", {"epochs": 30})):
        trace = run_method(ds, method, 1, random_state=0, **options)
        assert trace.selected_names == ["A"], method
        assert pick_columns(trace) == [0, 1, 2]


def test_group_omp_with_groups_of_one_equals_plain_omp():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((150, 8))
    y = X[:, 2] - 2 * X[:, 5] + 0.5 * X[:, 0] + 0.1 * rng.standard_normal(150)
    plain = omp_select(X, y, 4, task="regression")
    names = [f"x{i}" for i in range(8)]
    grouped = omp_select(X, y, 4, task="regression",
                         groups=FeatureGroups(tuple(f"g{i}" for i in range(8)), tuple((i,) for i in range(8)), 8))
    assert grouped.selected == plain.selected
    np.testing.assert_allclose(grouped.steps[0].scores, plain.steps[0].scores, rtol=1e-9)
    assert grouped.column_names == names


def test_attention_expands_group_weights_to_columns():
    mask = SequentialAttention(3, pinned=[1], generator=torch.Generator().manual_seed(0),
                               column_group=[0, 0, 1, 2, 2, 2])
    with torch.no_grad():
        mask.logits.copy_(torch.tensor([0.5, 9.0, -0.5]))
    w = mask.weights()
    assert w.shape == (6,)
    assert torch.equal(w[0], w[1]) and torch.equal(w[3], w[4]) and w[2] == 1.0  # pinned group: weight 1
    assert torch.isclose(w[0] + w[3], torch.tensor(1.0))  # softmax over the two candidate groups
    assert torch.equal(mask.weights(dense=True), torch.ones(6))
    group, scores = mask.select()
    assert group == 0 and np.isnan(scores[1])


def test_group_definitions_are_checked():
    names = ["a", "b", "c"]
    with pytest.raises(DataError, match="'b' is in two groups"):
        FeatureGroups.from_mapping({"g1": ["a", "b"], "g2": ["b"]}, names)
    with pytest.raises(DataError, match="no column named 'z'"):
        FeatureGroups.from_mapping({"g1": ["z"]}, names)
    with pytest.raises(DataError, match="must list its columns"):
        FeatureGroups.from_mapping({"g1": "a"}, names)
    with pytest.raises(DataError, match="groups must not overlap"):
        FeatureGroups(("g", "h"), ((0, 1), (1, 2)), 3)
    base = FeatureGroups(("a", "colour"), ((0,), (1, 2)), 3)
    merged = FeatureGroups.from_mapping({"set": ["a", 1]}, names, base)  # the whole one-hot group joins
    assert merged.names == ("set",) and merged.columns == ((0, 1, 2),)
    np.testing.assert_array_equal(merged.aggregate(np.array([1.0, 3.0, 2.0]), "sum"), [6.0])


def test_library_and_cli_groups(tmp_path: Path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.standard_normal((80, 6)), columns=[f"g{j}" for j in range(6)])
    frame["y"] = frame[["g3", "g4"]].sum(axis=1) + 0.2 * rng.standard_normal(80)
    path = tmp_path / "genes.csv"
    frame.to_csv(path, index=False)
    ds = load_table(path, target="y", groups={"set34": ["g3", "g4"]})
    assert ds.groups.names == ("g0", "g1", "g2", "set34", "g5")
    out = tmp_path / "picks.json"
    assert cli_main(["select", "--data", str(path), "--target", "y", "-k", "1", "--method", "omp",
                     "--group", "set34=g3,g4", "--out", str(out), "--quiet"]) == 0
    trace = SelectionTrace.from_json(out)
    assert trace.selected_names == ["set34"] and trace.columns_of(trace.selected) == [3, 4]
    assert cli_main(["select", "--data", str(path), "--target", "y", "-k", "1", "--group", "bad",
                     "--out", str(out), "--quiet"]) == 2


def test_shap_scores_a_group_by_the_sum_of_its_columns(tmp_path: Path):
    from seqattn.selectors.shap_rank import shap_explain, shap_select

    ds = load_table(_tips(tmp_path), target="big_tip")
    explanation = shap_explain(ds, n_background=30, n_explain=40, epochs=20, random_state=0)
    trace = shap_select(ds, 1, explanation=explanation, random_state=0)
    per_group = ds.groups.aggregate(explanation.importance, "sum")
    np.testing.assert_allclose(trace.steps[0].scores, per_group)
    assert trace.selected_names == ["day"] and trace.settings["group_score"] == "sum over the group's columns"
