"""OMP: the incremental-Cholesky path picks exactly what scikit-learn's orthogonal_mp picks.

Every problem is checked with the direct path and the Gram path; simultaneous
(multi-target) OMP, which scikit-learn lacks, is checked against a plain
least-squares re-solve at every step.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import orthogonal_mp

from seqattn.selectors.omp import omp_select, use_gram


def _sklearn_order(X: np.ndarray, y: np.ndarray, k: int) -> list[int]:
    path = orthogonal_mp(X, y, n_nonzero_coefs=k, return_path=True)
    order: list[int] = []
    for j in range(path.shape[1]):
        order += [int(i) for i in np.flatnonzero(path[:, j]) if i not in order]
    return order


def _problem(kind: str, seed: int = 0):
    """(X, y, k): dense or sparse designs on which OMP's steps have clear winners."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        X = rng.standard_normal((300, 60))
    elif kind == "near_collinear":  # every informative column has a twin at correlation ≈ 0.999
        base = rng.standard_normal((300, 30))
        X = np.hstack([base, base + 0.045 * rng.standard_normal((300, 30))])
    elif kind == "correlated":  # Toeplitz design, neighbouring columns correlated 0.8
        cov = 0.8 ** np.abs(np.subtract.outer(np.arange(50), np.arange(50)))
        X = rng.multivariate_normal(np.zeros(50), cov, size=400)
    elif kind == "wide":  # fewer samples than features
        X = rng.standard_normal((80, 200))
    elif kind == "sparse":
        X = sp.random(400, 120, density=0.05, random_state=seed, format="csr").toarray() * 3.0
    elif kind == "scaled":  # columns on wildly different scales (no standardisation in sklearn)
        X = rng.standard_normal((250, 40)) * rng.uniform(0.01, 100.0, 40)
    else:
        raise ValueError(kind)
    true = rng.choice(X.shape[1], 8, replace=False)
    y = X[:, true] @ (rng.uniform(1.0, 3.0, 8) * rng.choice([-1, 1], 8)) + 0.3 * rng.standard_normal(X.shape[0])
    return X, y, 12


PROBLEMS = ["gaussian", "near_collinear", "correlated", "wide", "sparse", "scaled"]


@pytest.mark.parametrize("precompute", [False, True])
@pytest.mark.parametrize("kind", PROBLEMS)
def test_pick_order_equals_sklearn_orthogonal_mp(kind, precompute):
    X, y, k = _problem(kind)
    data = sp.csr_matrix(X) if kind == "sparse" else X
    trace = omp_select(data, y, k, task="regression", standardize=False, fit_intercept=False,
                       precompute=precompute)
    assert trace.selected == _sklearn_order(X, y, k)
    assert trace.settings["precompute"] is precompute


@pytest.mark.parametrize("kind", ["gaussian", "sparse", "near_collinear"])
def test_centred_standardised_picks_equal_sklearn_on_the_transformed_data(kind):
    X, y, k = _problem(kind, seed=1)
    Xs = X - X.mean(0)
    Xs /= np.linalg.norm(Xs, axis=0)
    expected = _sklearn_order(Xs, y - y.mean(), k)
    data = sp.csr_matrix(X) if kind == "sparse" else X  # sparse input is centred implicitly, never densified
    for precompute in (False, True):
        assert omp_select(data, y, k, task="regression", precompute=precompute).selected == expected


def _reference_simultaneous(X: np.ndarray, y: np.ndarray, k: int) -> tuple[list[int], list[np.ndarray]]:
    """Simultaneous OMP on the centred one-hot target, least squares re-solved from scratch each step."""
    Xc = X - X.mean(0)
    Xc /= np.linalg.norm(Xc, axis=0)
    Y = np.eye(y.max() + 1)[y]
    Y = Y - Y.mean(0)
    chosen, all_scores, R = [], [], Y
    for _ in range(k):
        scores = np.linalg.norm(Xc.T @ R, axis=1)
        scores[chosen] = np.nan
        chosen.append(int(np.nanargmax(scores)))
        all_scores.append(scores)
        coef, *_ = np.linalg.lstsq(Xc[:, chosen], Y, rcond=None)
        R = Y - Xc[:, chosen] @ coef
    return chosen, all_scores


@pytest.mark.parametrize("n_classes", [2, 4])
def test_simultaneous_omp_equals_a_fresh_least_squares_solve_per_step(n_classes):
    rng = np.random.default_rng(n_classes)
    X = rng.standard_normal((240, 40))
    y = np.argmax(X[:, :6] @ rng.standard_normal((6, n_classes)) + 0.5 * rng.standard_normal((240, n_classes)), 1)
    expected, scores = _reference_simultaneous(X, y, 8)
    for data in (X, sp.csr_matrix(X)):
        for precompute in (False, True):
            trace = omp_select(data, y, 8, task="classification", precompute=precompute)
            assert trace.selected == expected
            np.testing.assert_allclose(np.nan_to_num(trace.score_matrix()), np.nan_to_num(np.vstack(scores)),
                                       rtol=1e-9, atol=1e-12)


def test_torch_backend_matches_numpy_on_cpu_tensors():
    pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 50))
    y = np.argmax(X[:, :5] @ rng.standard_normal((5, 3)), 1)
    for data in (X, sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))):
        for precompute in (False, True):
            ours = omp_select(data, y, 6, precompute=precompute, backend="numpy")
            torch_trace = omp_select(data, y, 6, precompute=precompute, backend="torch", device="cpu")
            assert torch_trace.selected == ours.selected
            np.testing.assert_allclose(np.nan_to_num(torch_trace.score_matrix()),
                                       np.nan_to_num(ours.score_matrix()), rtol=1e-10)


def test_duplicate_columns_and_a_perfect_fit_still_give_k_distinct_picks():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((60, 5))
    X = np.hstack([base, base, base[:, :2] + base[:, 2:4]])  # rank 5, 12 columns
    y = base @ np.arange(1.0, 6.0)
    for precompute in (False, True):
        trace = omp_select(X, y, 9, task="regression", precompute=precompute)
        assert len(set(trace.selected)) == 9
        assert np.linalg.matrix_rank(X[:, trace.selected[:5]]) == 5  # the first five span the signal
        assert np.all(np.isfinite(np.nan_to_num(trace.score_matrix(), nan=0.0)))


def test_validation_metric_is_optional_and_does_not_change_the_picks():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 20))
    y = (X[:, 0] + X[:, 3] > 0).astype(int)
    plain = omp_select(X, y, 4)
    curve = omp_select(X, y, 4, validation=True)
    assert plain.selected == curve.selected
    assert plain.base_metric is None and all(s.val_metric is None for s in plain.steps)
    assert 0.4 <= curve.base_metric <= 0.7 and curve.steps[-1].val_metric > 0.85
    assert curve.steps[0].marginal_gain == pytest.approx(curve.steps[0].val_metric - curve.base_metric)


def test_callback_reports_each_pick_and_can_stop():
    X, y, _ = _problem("gaussian")
    seen = []
    trace = omp_select(X, y, 6, task="regression", callback=lambda s, t, m: seen.append((s, t)) or s == 3)
    assert seen == [(1, 6), (2, 6), (3, 6)] and trace.k == 3 and trace.stopped_early


def test_bad_options_are_refused_with_a_message():
    X, y, _ = _problem("gaussian")
    with pytest.raises(ValueError, match="precompute"):
        omp_select(X, y, 3, precompute="yes")
    with pytest.raises(ValueError, match="backend"):
        omp_select(X, y, 3, backend="jax")


def test_gram_is_chosen_when_rows_far_outnumber_features_and_never_for_huge_d():
    assert use_gram(5000, 100, 10)
    assert not use_gram(200, 5000, 5)
    assert not use_gram(10**6, 20000, 1000)
