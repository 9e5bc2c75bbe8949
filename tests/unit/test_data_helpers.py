"""The shared data helpers that replaced per-module copies: validate_k, standardise, provenance,
target guessing, the expression-data decision and SA's quick-start settings."""
from __future__ import annotations

import numpy as np
import pytest

from seqattn.data import DataError, attach_preprocessing, make_planted, safe_scale, standardise, validate_k
from seqattn.data.tables import guess_target


def test_validate_k_counts_pinned_and_banned():
    assert validate_k(np.int64(3), 10) == 3 and validate_k(3.0, 10) == 3
    with pytest.raises(DataError, match=r"only 7 features can be picked \(10 features, 1 pinned, 2 banned\)"):
        validate_k(8, 10, n_pinned=1, n_banned=2)
    with pytest.raises(DataError, match="n_features_to_select must be a positive whole number, got True"):
        validate_k(True, 10, name="n_features_to_select")


def test_standardise_uses_training_statistics_and_keeps_constant_columns_finite():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    other = np.array([[2.0, 7.0]])
    a, b = standardise(train, other)
    np.testing.assert_allclose(a, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(b, [[0.0, 2.0]])  # constant column: scale 1, only centred
    np.testing.assert_allclose(safe_scale([0.0, 1e-13, 2.0]), [1.0, 1.0, 2.0])


def test_attach_preprocessing_copies_the_record_only_when_there_is_one():
    data = make_planted(n_samples=20, n_features=4, n_informative=1)
    assert attach_preprocessing({"a": 1}, data) == {"a": 1}
    data.extra["preprocessing"] = {"log1p": True}
    assert attach_preprocessing({"a": 1}, data) == {"a": 1, "preprocessing": {"log1p": True}}


def test_guess_target_prefers_known_names_then_the_last_column():
    assert guess_target(["g1", "Cell_Type", "g2"]) == 1
    assert guess_target(["a", "b", "c"]) == 2
    with pytest.raises(DataError, match="no columns"):
        guess_target([])


def test_expression_data_is_decided_in_one_place():
    from seqattn.genomics import is_expression_data, make_planted_counts

    counts = make_planted_counts(n_cells=60, n_genes=30, n_types=2, markers_per_type=2, random_state=0)
    assert not is_expression_data(counts)  # synthetic counts were not read from an AnnData file
    counts.extra["source_format"] = "h5ad"
    assert is_expression_data(counts)


def test_quick_start_settings_fit_the_data():
    from seqattn.models import TrainConfig
    from seqattn.selectors.sequential_attention import quick_start_settings

    wide = make_planted(n_samples=40, n_features=6, n_informative=2)
    wide.name = "wine"
    assert quick_start_settings(wide) == {"k": 5, "epochs": 60, "hidden": TrainConfig.hidden,
                                          "learning_rate": TrainConfig.learning_rate, "random_state": 0,
                                          "model": "mlp"}
    narrow = make_planted(n_samples=40, n_features=3, n_informative=1)
    assert quick_start_settings(narrow)["k"] == 2  # at least one feature left unpicked
