"""Built-in data sets, all available offline.

scikit-learn bundles digits, breast cancer, wine and diabetes; ``data/`` ships
``pbmc68k_reduced`` (real single-cell genomics) and ``mnist_5k``; ``planted``
is synthetic with known informative features. An installed package carries
``data/`` as ``seqattn.builtin_data`` (see setup.py), so the files are found
from any working directory.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seqattn.data.dataset import Dataset
from seqattn.data.errors import DataError
from seqattn.data.synthetic import make_planted


def builtin_data_dir() -> Path:
    """Where the bundled files live: the installed ``seqattn.builtin_data`` package
    (wheel or editable install), else ``data/`` beside the ``seqattn`` package in a
    source checkout used without installing."""
    try:
        spec = importlib.util.find_spec("seqattn.builtin_data")
    except ImportError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "pbmc68k_reduced.h5ad").exists():
            return Path(location)
    package_dir = Path(importlib.util.find_spec("seqattn").origin).resolve().parent
    return package_dir.parent / "data"


#: The bundled data files; in the repository, the top-level ``data/`` (their one home).
DATA_DIR = builtin_data_dir()


def _sklearn(loader_name: str, task: str, name: str, image_shape: tuple[int, int] | None = None) -> Callable[[], Dataset]:
    def load() -> Dataset:
        import sklearn.datasets as skd

        bunch = getattr(skd, loader_name)()
        names = list(getattr(bunch, "feature_names", [f"x{i}" for i in range(bunch.data.shape[1])]))
        if image_shape is not None:
            names = [f"pixel ({r},{c})" for r in range(image_shape[0]) for c in range(image_shape[1])]
        class_names = [str(c) for c in bunch.target_names] if task == "classification" else None
        return Dataset(
            X=bunch.data.astype(np.float32),
            y=bunch.target,
            feature_names=names,
            task=task,
            name=name,
            class_names=class_names,
            image_shape=image_shape,
        )

    return load


PBMC_FILE = DATA_DIR / "pbmc68k_reduced.h5ad"
MNIST_FILE = DATA_DIR / "mnist_5k.npz"


def _missing(path: Path) -> DataError:
    return DataError(f"The bundled data file {path.name} is missing from {path.parent}; restore it from the "
                     "repository (see data/README.md for where it comes from).")


def load_pbmc68k_reduced() -> Dataset:
    """700 PBMCs × 765 genes, 10 cell types (``bulk_labels``), log-normalised, sparse.

    We use the file's ``.raw`` (log-normalised expression) rather than its ``X``
    (per-gene z-scores): it is what marker tables and per-type means are read
    in, and SA standardises inputs itself (BatchNorm).
    """
    from seqattn.data.tables import load_table

    if not PBMC_FILE.exists():
        raise _missing(PBMC_FILE)
    dataset = load_table(PBMC_FILE, target="bulk_labels", layer="raw", task="classification",
                         name="pbmc68k_reduced")
    dataset.description = (
        "10x Genomics PBMC 68k, reduced by scanpy to 700 cells × 765 genes; log-normalised expression "
        "(sparse); target: cell type (obs 'bulk_labels', 10 types)."
    )
    dataset.extra["log_normalised"] = True  # log1p again would compress it twice
    return dataset


def load_mnist_5k() -> Dataset:
    """5000 MNIST digits (500 per class) of 28×28 pixels, intensities scaled to [0, 1]."""
    if not MNIST_FILE.exists():
        raise _missing(MNIST_FILE)
    with np.load(MNIST_FILE, allow_pickle=False) as npz:
        X, y = npz["X"], npz["y"]
    return Dataset(
        X=X.astype(np.float32) / 255.0,
        y=y.astype(np.int64),
        feature_names=[f"pixel ({r},{c})" for r in range(28) for c in range(28)],
        task="classification",
        name="mnist_5k",
        class_names=[str(d) for d in range(10)],
        image_shape=(28, 28),
        description="MNIST handwritten digits, 5000 images (500 per digit) of 28×28 pixels scaled to [0, 1].",
    )


# name -> (loader, one-line description)
BUILTIN_DATASETS: dict[str, tuple[Callable[[], Dataset], str]] = {
    "planted": (lambda: make_planted(n_samples=1000, n_features=50, n_informative=5, xor_pairs=1,
                                     redundant=2, random_state=0),
                "Synthetic classification, 50 features: 5 linear + 1 XOR pair informative (ground truth known)."),
    "digits": (_sklearn("load_digits", "classification", "digits", (8, 8)),
               "Handwritten digits, 1797 images of 8×8 pixels, 10 classes."),
    "breast_cancer": (_sklearn("load_breast_cancer", "classification", "breast_cancer"),
                      "Breast cancer Wisconsin, 569 samples × 30 features, 2 classes."),
    "wine": (_sklearn("load_wine", "classification", "wine"), "Wine, 178 samples × 13 features, 3 classes."),
    "diabetes": (_sklearn("load_diabetes", "regression", "diabetes"),
                 "Diabetes progression, 442 samples × 10 features, regression."),
    "pbmc68k_reduced": (load_pbmc68k_reduced,
                        "Single-cell RNA-seq, 700 blood cells × 765 genes, 10 cell types (real genomics)."),
    "mnist_5k": (load_mnist_5k, "MNIST digits, 5000 images of 28×28 pixels, 10 classes."),
}


def load_builtin(name: str) -> Dataset:
    """Load a built-in data set by name (see ``BUILTIN_DATASETS``)."""
    if name not in BUILTIN_DATASETS:
        raise DataError(f"Unknown data set {name!r}; built-ins are: {', '.join(BUILTIN_DATASETS)}.")
    loader, description = BUILTIN_DATASETS[name]
    dataset = loader()
    dataset.description = dataset.description or description
    dataset.extra["builtin"] = name  # provenance: a notebook can reload it (seqattn.reproduce)
    return dataset
