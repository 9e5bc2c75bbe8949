"""seqattn: Sequential Attention feature selection, its baselines and its sparsity cousins.

Public names are imported lazily so ``import seqattn`` stays cheap (torch and
shap load only when a selector is used).
"""
from __future__ import annotations

from seqattn._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "SequentialAttentionSelector": "seqattn.selectors.sequential_attention",
    "omp_select": "seqattn.selectors.omp",
    "SelectionTrace": "seqattn.trace",
    "SelectionStep": "seqattn.trace",
    "Dataset": "seqattn.data",
    "DataError": "seqattn.data",
    "make_planted": "seqattn.data",
    "load_builtin": "seqattn.data.builtins",
    "BUILTIN_DATASETS": "seqattn.data.builtins",
    "load_table": "seqattn.data.tables",
    "resolve_device": "seqattn.device",
    "run_method": "seqattn.selectors",
    "shap_select": "seqattn.selectors.shap_rank",
    "greedy_select": "seqattn.selectors.greedy",
    "compare_methods": "seqattn.evaluation.compare",
    "accuracy_vs_k": "seqattn.evaluation.retrain",
    "panel_metrics": "seqattn.evaluation.panels",
    "held_out_panel_metrics": "seqattn.evaluation.panels",
    "evaluate_panel_methods": "seqattn.evaluation.panels",
    "summarise_panel_metrics": "seqattn.evaluation.panels",
    "builtin_data_dir": "seqattn.data.builtins",
    "candidate_gains": "seqattn.scoring",
    "select_features": "seqattn.anndata_api",
    "dataset_from_anndata": "seqattn.anndata_api",
    "trace_from_anndata": "seqattn.anndata_api",
    "progress_bar": "seqattn.progress",
    "LiveSelectionView": "seqattn.notebook",
    "reproduction_notebook": "seqattn.reproduce",
    "comparison_notebook": "seqattn.reproduce",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
