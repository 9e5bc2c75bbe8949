"""Data: the ``Dataset`` type, readers (tables, h5ad), built-ins and planted synthetic data.

Data flows one way: readers and generators build a :class:`Dataset`; selectors,
scoring and evaluation only consume it. Everything that reads user data raises
:class:`DataError` with a message a person can act on.

Layout, in the order a load passes through it: ``tables`` (``load_table`` /
``list_columns``: the entry points, which choose a reader) · ``sources``
(open a path, bytes or upload; sniff the format) · the readers, one module per
format: ``text`` (+ ``text_checks``), ``xlsx``, ``parquet``, ``h5ad`` (+
``h5ad_backed``, ``h5ad_safety``) · ``frame`` (a table's frame -> ``Dataset``)
and ``encoding`` (text columns, imputation) · ``checks`` (what every loader
checks, and the target -> ``Dataset``) · ``limits`` (shared size limits, read
budget). Below them all: ``errors`` (``DataError``), ``scaling``, ``dataset``
(the type, splits, shared transforms), ``groups``; beside them ``stream`` (row
sources, SA's batches), ``guards`` (leak warnings), ``builtins``,
``synthetic`` (``make_planted``). Readers load lazily: ``import seqattn.data``
does not import pandas readers or anndata.
"""
from __future__ import annotations

from seqattn.data.dataset import (
    TASKS,
    Dataset,
    attach_preprocessing,
    check_pinned_banned,
    column_mean_var,
    dense_columns,
    encode_target,
    infer_task,
    split_indices,
    validate_k,
)
from seqattn.data.errors import DataError
from seqattn.data.scaling import safe_scale, standardise
from seqattn.data.synthetic import make_planted

__all__ = [
    "TASKS", "DataError", "Dataset", "attach_preprocessing", "check_pinned_banned", "column_mean_var", "dense_columns",
    "encode_target", "infer_task", "make_planted", "safe_scale", "split_indices", "standardise", "validate_k",
]
