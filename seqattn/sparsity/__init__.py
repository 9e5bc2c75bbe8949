"""Sequential Attention's sparsity cousins: SA++ block pruning, SA++ over a transformer's structure (heads,
MLP blocks, embedding dimensions, blocks), sparse-attention patterns (PSA and friends) and paired
dense-vs-sparse latency. Names load lazily (torch is imported on first use)."""
from __future__ import annotations

from seqattn._lazy import lazy_exports

_EXPORTS = {
    "sa_plus_plus": "seqattn.sparsity.block_pruning",
    "BlockPruningResult": "seqattn.sparsity.block_pruning",
    "BlockSparseMLP": "seqattn.sparsity.block_pruning",
    "make_attention_inputs": "seqattn.sparsity.attention_patterns",
    "run_patterns": "seqattn.sparsity.attention_patterns",
    "psa_mask": "seqattn.sparsity.attention_patterns",
    "PSA_LABEL": "seqattn.sparsity.attention_patterns",
    "measure_prefill": "seqattn.sparsity.latency",
    "measure_decode": "seqattn.sparsity.latency",
    "measure_block_sparse_linear": "seqattn.sparsity.latency",
    "run_latency_suite": "seqattn.sparsity.latency",
    "LatencyReport": "seqattn.sparsity.latency",
    # structured pruning of a small transformer
    "TinyGPT": "seqattn.sparsity.transformer",
    "TransformerConfig": "seqattn.sparsity.transformer",
    "TrainSettings": "seqattn.sparsity.transformer",
    "Gates": "seqattn.sparsity.transformer",
    "PRESETS": "seqattn.sparsity.transformer",
    "stdlib_corpus": "seqattn.sparsity.transformer",
    "load_or_train": "seqattn.sparsity.transformer",
    "train_model": "seqattn.sparsity.transformer",
    "evaluate_loss": "seqattn.sparsity.transformer",
    "PruningSettings": "seqattn.sparsity.structured",
    "prune_transformer": "seqattn.sparsity.structured",
    "train_dense_prefix": "seqattn.sparsity.structured",
    "remove_units": "seqattn.sparsity.structured",
    "unit_layouts": "seqattn.sparsity.structured",
    "unit_gates": "seqattn.sparsity.structured",
    "measure_structured_latency": "seqattn.sparsity.structured_latency",
    "structured_pruning_study": "seqattn.sparsity.structured_study",
    "StructuredPruningResult": "seqattn.sparsity.structured_study",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
