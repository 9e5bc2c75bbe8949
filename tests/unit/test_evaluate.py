"""Evaluation: retraining on top-k, agreement between methods, recovery, true candidate gains."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from seqattn.data import Dataset, make_planted, split_indices
from seqattn.evaluation.agreement import (
    full_ranking,
    jaccard,
    overlap_matrix,
    rank_correlation,
    rank_correlation_matrix,
    recovery,
)
from seqattn.evaluation.retrain import accuracy_vs_k, fit_and_score, holdout, summarize_accuracy
from seqattn.models import TrainConfig
from seqattn.scoring import candidate_gains
from seqattn.trace import SelectionTrace


@pytest.fixture(scope="module")
def planted() -> Dataset:
    return make_planted(n_samples=500, n_features=12, n_informative=3, random_state=4)


def make_trace(dataset: Dataset, order: list[int], method: str = "m") -> SelectionTrace:
    """A trace picking ``order``; the scores rank the remaining features by index (lowest best)."""
    trace = SelectionTrace(method=method, feature_names=dataset.feature_names)
    for t, feature in enumerate(order):
        scores = -np.arange(dataset.n_features, dtype=float)
        scores[order[:t]] = np.nan
        trace.add_step(feature, scores)
    return trace


def test_jaccard_and_overlap_matrix(planted: Dataset) -> None:
    assert jaccard([1, 2, 3], [2, 3, 4]) == pytest.approx(2 / 4)
    a, b = make_trace(planted, [0, 1, 2, 3]), make_trace(planted, [3, 2, 9, 8])
    frame = overlap_matrix({"a": a, "b": b}, k=2)
    assert frame.loc["a", "a"] == 1.0 and frame.loc["a", "b"] == 0.0
    assert overlap_matrix({"a": a, "b": b}, k=4).loc["b", "a"] == pytest.approx(2 / 6)


def test_rank_correlation_sign_and_full_ranking(planted: Dataset) -> None:
    forward = make_trace(planted, [0, 1, 2, 3])
    backward = make_trace(planted, [3, 2, 1, 0])
    assert rank_correlation(forward, forward, 4) == pytest.approx(1.0)
    assert rank_correlation(forward, backward, 4) == pytest.approx(-1.0)
    # after the picks, the rest follows the last step's scores (lowest index best here)
    assert full_ranking(backward)[:6] == [3, 2, 1, 0, 4, 5]
    matrix = rank_correlation_matrix([forward, backward], 4)
    assert list(matrix.index) == ["m", "m (2)"]
    assert matrix.iloc[0, 1] == pytest.approx(-1.0)


def test_recovery_counts_planted_features(planted: Dataset) -> None:
    truth = list(planted.informative)
    noise = [i for i in range(planted.n_features) if i not in truth]
    traces = {"right": make_trace(planted, truth + noise[:2]), "wrong": make_trace(planted, noise[:3] + truth)}
    table = recovery(planted, traces, [3, 6]).set_index(["method", "k"])
    assert table.loc[("right", 3), "recovered"] == 3 and table.loc[("right", 3), "recall"] == 1.0
    assert table.loc[("wrong", 3), "recovered"] == 0
    assert table.loc[("wrong", 6), "recovered"] == 3
    plain = Dataset(X=planted.X, y=planted.y, feature_names=planted.feature_names, task="classification")
    with pytest.raises(ValueError, match="ground truth"):
        recovery(plain, traces, [3])


def test_accuracy_vs_k_prefers_informative_features(planted: Dataset) -> None:
    truth = list(planted.informative)
    noise = [i for i in range(planted.n_features) if i not in truth]
    traces = {"truth": make_trace(planted, truth), "noise": make_trace(planted, noise[:3]),
              "truth again": make_trace(planted, truth[::-1])}
    frame = accuracy_vs_k(planted, traces, [1, 3, 5], seeds=[0, 1, 2], model="logistic")
    assert set(frame["k"]) == {1, 3}  # k=5 is beyond every trace and is skipped
    assert len(frame) == 3 * 2 * 3
    summary = summarize_accuracy(frame).set_index(["method", "k"])
    assert summary.loc[("truth", 3), "mean"] > 0.85
    assert summary.loc[("noise", 3), "mean"] < 0.65
    assert summary.loc[("truth", 3), "std"] >= 0.0 and summary.loc[("truth", 3), "n"] == 3
    # the same subset (in another order) is scored identically for every seed
    same = frame[frame["k"] == 3].pivot(index="seed", columns="method", values="value")
    np.testing.assert_array_equal(same["truth"], same["truth again"])


def test_accuracy_vs_k_with_mlp_and_separate_test_set(planted: Dataset) -> None:
    train, test = holdout(planted, 0.25, random_state=0)
    assert train.n_samples + test.n_samples == planted.n_samples
    trace = make_trace(planted, list(planted.informative))
    frame = accuracy_vs_k(train, {"truth": trace}, [3], seeds=[0, 1], test=test, epochs=30)
    assert frame["value"].min() > 0.8
    assert frame.attrs["split"] == "separate test set"
    other = make_planted(n_samples=100, n_features=5, random_state=0)
    with pytest.raises(ValueError, match="another data set"):
        accuracy_vs_k(other, {"truth": trace}, [3])


def test_fit_and_score_regression_r2() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = (2 * X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(400)).astype(np.float32)
    for model in ("logistic", "mlp"):
        r2 = fit_and_score(X[:300], y[:300], X[300:], y[300:], "regression", model=model,
                           config=TrainConfig(epochs=60))
        assert r2 > 0.9, model
    # no features: predicting the training mean gives R² ≈ 0
    assert abs(fit_and_score(X[:300, :0], y[:300], X[300:, :0], y[300:], "regression")) < 0.05


def test_candidate_gains_match_a_direct_refit(planted: Dataset) -> None:
    selected = [int(planted.informative[0])]
    frame = candidate_gains(planted, selected)
    assert len(frame) == planted.n_features - 1 and selected[0] not in set(frame["feature"])
    assert list(frame["rank"]) == list(range(1, len(frame) + 1))
    assert frame["gain"].is_monotonic_decreasing
    assert set(frame["feature"][:2]) == set(planted.informative[1:])

    # recompute one candidate's gain by hand: standardised logistic regression, same split
    train, val, _ = split_indices(planted.n_samples, planted.y, 0.2, 0.0, random_state=0)
    X = planted.X.astype(np.float64)

    def loss(cols: list[int]) -> float:
        A = X[:, cols]
        A = (A - A[train].mean(0)) / A[train].std(0)
        model = LogisticRegression(max_iter=300, random_state=0).fit(A[train], planted.y[train])
        return log_loss(planted.y[val], model.predict_proba(A[val]), labels=[0, 1])

    best = int(frame.iloc[0]["feature"])
    assert frame.iloc[0]["gain"] == pytest.approx(loss(selected) - loss(selected + [best]), rel=1e-6)


def test_candidate_gains_shortlist_and_bad_input(planted: Dataset) -> None:
    frame = candidate_gains(planted, [], max_candidates=4)
    assert len(frame) == 4
    assert "kept the 4" in frame.attrs["note"]
    assert set(planted.informative) <= set(frame["feature"])  # shortlisted by univariate F
    explicit = candidate_gains(planted, [0], candidates=[0, 1, 2])
    assert set(explicit["feature"]) == {1, 2}
    with pytest.raises(ValueError, match="outside"):
        candidate_gains(planted, [99])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_batched_mlp_training_equals_training_one_at_a_time(task):
    """Problems of different widths trained side by side score as each would alone (padding, own seeds)."""
    from seqattn.evaluation.retrain import fit_and_score, fit_and_score_many

    rng = np.random.default_rng(0)
    X = rng.standard_normal((260, 6))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) if task == "classification" else X[:, 0] - 2 * X[:, 3]
    problems = [(X[:200, cols], y[:200], X[200:, cols], y[200:], seed)
                for cols, seed in (([0], 0), ([0, 1, 2], 1), ([0, 1, 2, 3, 4, 5], 0), ([3, 1], 2))]
    n_classes = 2 if task == "classification" else 0
    config = TrainConfig(epochs=8)
    alone = [fit_and_score(a, b, c, d, task, n_classes=n_classes, seed=s, config=config, device="cpu")
             for a, b, c, d, s in problems]
    together = fit_and_score_many(problems, task, n_classes=n_classes, config=config, device="cpu")
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)
    assert len(set(np.round(alone, 6))) > 1  # the problems differ, so equality is not trivial


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_batched_trainer_trains_as_torchs_own_modules_would(task):
    """The stacked weights and hand-written batch norm of train_mlps follow the plain recipe — MLP with
    nn.BatchNorm1d, Adam with exponential decay, a fresh permutation per epoch — to float rounding."""
    import torch

    from seqattn.models import MLP, loss_function, train_mlp

    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 5)).astype(np.float32)
    y = (X[:, 0] - X[:, 2] > 0).astype(np.int64) if task == "classification" else (X[:, 1] * 3 + 1).astype(np.float32)
    config, n_out, seed = TrainConfig(epochs=3, batch_size=32), 2 if task == "classification" else 1, 4
    trained = train_mlp(X, y, task, n_out, seed=seed, config=config, device="cpu")

    mu, sd = (float(y.mean()), float(y.std())) if task == "regression" else (0.0, 1.0)
    target = torch.tensor((y - mu) / sd if task == "regression" else y)
    torch.manual_seed(seed)
    reference = MLP(5, n_out, config.hidden)
    optimizer = torch.optim.Adam(reference.parameters(), lr=config.learning_rate)
    steps = config.epochs * (150 // 32)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay ** (1 / steps))
    generator, loss_fn, xt = torch.Generator().manual_seed(seed), loss_function(task), torch.tensor(X)
    for _ in range(config.epochs):
        order = torch.randperm(150, generator=generator)
        for b in range(150 // 32):
            rows = order[b * 32:(b + 1) * 32]
            out = reference(xt[rows])
            loss = loss_fn(out.squeeze(-1) if task == "regression" else out, target[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    reference.eval()
    for name, value in reference.state_dict().items():
        np.testing.assert_allclose(trained.state_dict()[name].numpy(), value.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    with torch.no_grad():
        np.testing.assert_allclose(trained(xt).numpy(), reference(xt).numpy(), rtol=1e-4, atol=1e-5)
    assert trained.target_scale == pytest.approx((mu, sd))


def test_held_out_check_fits_the_picks_once_and_agrees_with_panel_accuracy(planted, monkeypatch):
    """Two fits (picks, all features), not three; the accuracy read off the confusion equals panel_accuracy's."""
    import seqattn.genomics as gx
    from seqattn.evaluation.holdout import held_out_check

    expected = gx.panel_accuracy(planted, [0, 1, 2])
    fitted_widths = []
    real_panel_model = gx.panel_model

    def counting_panel_model(X, y, max_iter):
        fitted_widths.append(X.shape[1])
        return real_panel_model(X, y, max_iter)

    monkeypatch.setattr(gx, "panel_model", counting_panel_model)
    check = held_out_check(planted, [2, 0, 1])
    assert sorted(fitted_widths) == [3, planted.n_features]
    assert check["selected"] == expected["panel_accuracy"] and check["all_features"] == expected["all_genes_accuracy"]
    assert (check["n_train"], check["n_test"]) == (expected["n_train"], expected["n_test"])
    counts = check["confusion"].attrs["counts"]
    assert counts.sum() == check["n_test"] and check["selected"] == np.trace(counts) / check["n_test"]
