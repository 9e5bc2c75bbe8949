"""Built-in data sets load offline with the right shapes, names and labels."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from seqattn.data.builtins import BUILTIN_DATASETS, load_builtin
from seqattn.data import DataError


def test_every_builtin_loads_consistently():
    for name in BUILTIN_DATASETS:
        dataset = load_builtin(name)
        assert dataset.name == name
        assert dataset.n_samples == len(dataset.y) > 0
        assert len(dataset.feature_names) == dataset.n_features
        assert len(set(dataset.feature_names)) == dataset.n_features, name
        assert dataset.description
        if dataset.task == "classification":
            assert len(dataset.class_names) == dataset.n_classes >= 2


def test_pbmc68k_reduced_is_real_sparse_expression():
    dataset = load_builtin("pbmc68k_reduced")
    assert dataset.X.shape == (700, 765)
    assert sp.isspmatrix_csr(dataset.X) and dataset.X.dtype == np.float32
    assert dataset.X.data.min() > 0  # log-normalised expression, zeros not stored
    assert dataset.n_classes == 10
    assert "CD14+ Monocyte" in dataset.class_names and "CD56+ NK" in dataset.class_names
    counts = np.bincount(dataset.y, minlength=10)
    assert counts[dataset.class_names.index("Dendritic")] == 240
    for gene in ("CD79A", "NKG7", "LYZ", "CD3D", "MT-ND3"):
        assert gene in dataset.feature_names
    # a canonical marker behaves as one: CD79A is far higher in B cells than elsewhere
    b = dataset.y == dataset.class_names.index("CD19+ B")
    cd79a = dataset.X[:, dataset.feature_names.index("CD79A")].toarray().ravel()
    assert cd79a[b].mean() > 5 * cd79a[~b].mean()


def test_mnist_5k():
    dataset = load_builtin("mnist_5k")
    assert dataset.X.shape == (5000, 784) and dataset.image_shape == (28, 28)
    assert dataset.feature_names[0] == "pixel (0,0)" and dataset.feature_names[28 + 5] == "pixel (1,5)"
    assert np.bincount(dataset.y).tolist() == [500] * 10
    assert dataset.X.min() == 0.0 and dataset.X.max() == 1.0
    images = dataset.X.reshape(-1, 28, 28)
    # digits are centred: the border is (almost) blank, the middle is inked
    assert images[:, 0, :].mean() < 0.01 and images[:, 10:18, 10:18].mean() > 0.2
    # zeros are round and ones are thin: the centre pixel is inked far more often for 1 than for 0
    centre = images[:, 14, 14] > 0.5
    assert centre[dataset.y == 1].mean() > 0.8 > 0.2 > centre[dataset.y == 0].mean()


def test_unknown_builtin_lists_names():
    with pytest.raises(DataError, match="Unknown data set 'pbmc'.*pbmc68k_reduced.*mnist_5k"):
        load_builtin("pbmc")
