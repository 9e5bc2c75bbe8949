"""seqattn: Sequential Attention feature selection, its baselines and its sparsity cousins.

Public names are imported lazily so ``import seqattn`` stays cheap (torch and
shap load only when a selector is used).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SequentialAttentionSelector": "seqattn.sequential_attention",
    "omp_select": "seqattn.omp",
    "SelectionTrace": "seqattn.trace",
    "SelectionStep": "seqattn.trace",
    "Dataset": "seqattn.data",
    "DataError": "seqattn.data",
    "make_planted": "seqattn.data",
    "load_builtin": "seqattn.builtins",
    "BUILTIN_DATASETS": "seqattn.builtins",
    "load_table": "seqattn.io",
    "resolve_device": "seqattn.device",
    "run_method": "seqattn.methods",
    "shap_select": "seqattn.baselines",
    "greedy_select": "seqattn.baselines",
    "compare_methods": "seqattn.comparison",
    "accuracy_vs_k": "seqattn.evaluate",
    "builtin_data_dir": "seqattn.builtins",
    "candidate_gains": "seqattn.evaluate",
    "select_features": "seqattn.anndata_api",
    "dataset_from_anndata": "seqattn.anndata_api",
    "trace_from_anndata": "seqattn.anndata_api",
    "progress_bar": "seqattn.progress",
    "LiveSelectionView": "seqattn.notebook",
    "reproduction_notebook": "seqattn.reproduce",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'seqattn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
