"""The pages' caches of library read-outs (``st.cache_data``): one place, so a page only lays out.

Each is keyed on the ``dataset_key`` (``app_support/state.py``) and what the
read-out depends on (genes, a trace's digest, settings); the ``Dataset`` and
traces themselves are passed with a leading underscore, so Streamlit never hashes them.
Loading and preprocessing data sets is cached in ``app_support/state.py``.
"""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_support.state import content_digest
from seqattn.data import Dataset
from seqattn.trace import SelectionTrace


def text_digest(text: str) -> str:
    """A short digest of ``text`` (a trace's JSON) for a cache key (:func:`app_support.state.content_digest`)."""
    return content_digest(text.encode())


# ------------------------------------------------------------------ Gene panel page
@st.cache_data(show_spinner=False, max_entries=16)
def per_type_tables(dataset_key: str, genes: tuple[str, ...], _dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean expression and fraction expressing, per cell type (genes as columns)."""
    from seqattn.genomics import fraction_expressing_by_type, mean_expression_by_type

    return mean_expression_by_type(_dataset, genes), fraction_expressing_by_type(_dataset, genes)


@st.cache_data(show_spinner=False, max_entries=16)
def held_out_accuracy(dataset_key: str, genes: tuple[str, ...], all_genes: bool, _dataset: Dataset) -> dict:
    """:func:`seqattn.genomics.panel_accuracy` of a panel."""
    from seqattn.genomics import panel_accuracy

    return panel_accuracy(_dataset, list(genes), all_genes=all_genes)


@st.cache_data(show_spinner=False, max_entries=16)
def confusion_table(dataset_key: str, genes: tuple[str, ...], _dataset: Dataset) -> pd.DataFrame:
    """:func:`seqattn.genomics.panel_confusion` of a panel."""
    from seqattn.genomics import panel_confusion

    return panel_confusion(_dataset, list(genes))


@st.cache_data(show_spinner=False, max_entries=8)
def ttest_panel(dataset_key: str, k: int, pinned: tuple[int, ...], banned: tuple[int, ...],
                _dataset: Dataset) -> SelectionTrace:
    """The t-test marker panel with the SA run's k, pins and bans."""
    from seqattn.selectors.ttest import ttest_markers

    return ttest_markers(_dataset, k, pinned=pinned, banned=banned)


@st.cache_data(show_spinner=False, max_entries=8)
def hvg_baseline(dataset_key: str, size: int, pinned: tuple[int, ...], banned: tuple[int, ...],
                 _dataset: Dataset) -> list[str]:
    """The highest-variance genes after the SA run's pins (bans left out): the HVG panel of the same size."""
    from seqattn.genomics import hvg_panel

    return hvg_panel(_dataset, size, pinned=pinned, banned=banned)


@st.cache_data(show_spinner=False, max_entries=8)
def field_metrics(dataset_key: str, panels: tuple[tuple[str, tuple[str, ...]], ...], _dataset: Dataset
                  ) -> pd.DataFrame:
    """:func:`seqattn.evaluation.panels.held_out_panel_metrics` of named panels ((name, genes), …)."""
    from seqattn.evaluation.panels import held_out_panel_metrics

    return held_out_panel_metrics(_dataset, dict(panels))


@st.cache_data(show_spinner=False, max_entries=4)
def stability_run(dataset_key: str, run_key: str, n_runs: int, _trace: SelectionTrace,
                  _dataset: Dataset) -> SelectionTrace:
    """:func:`seqattn.genomics.stability_check` of an SA run (``run_key``: :func:`stability_key`)."""
    from seqattn.genomics import stability_check

    return stability_check(_dataset, _trace, n_runs=n_runs)


def stability_key(trace: SelectionTrace) -> str:
    """What a stability check of ``trace`` depends on: its picks, pins, bans and settings."""
    return json.dumps([trace.selected, trace.pinned, trace.banned,
                       {k: v for k, v in trace.settings.items() if isinstance(v, (str, int, float, bool, type(None)))}],
                      sort_keys=True, default=str)


# ------------------------------------------------------------------ Sequential Attention page
@st.cache_data(show_spinner="Held-out check: logistic regression on the picks and on all features…", max_entries=16)
def selection_held_out(dataset_key: str, units: tuple[int, ...], _dataset: Dataset) -> dict:
    """:func:`seqattn.evaluation.holdout.held_out_check` of a selection's units."""
    from seqattn.evaluation.holdout import held_out_check

    return held_out_check(_dataset, list(units))


# ------------------------------------------------------------------ Compare page
@st.cache_data(show_spinner="Refitting every candidate…", max_entries=32)
def step_scores(dataset_key: str, sa_digest: str, step: int, _dataset: Dataset,
                _sa_trace: SelectionTrace) -> pd.DataFrame:
    """:func:`seqattn.evaluation.compare.step_scores` at one SA step (``sa_digest``: the trace's JSON digest)."""
    from seqattn.evaluation.compare import step_scores as scores

    return scores(_dataset, _sa_trace, step)


# ------------------------------------------------------------------ Sparsity page
@st.cache_data(show_spinner="Scoring attention patterns…", max_entries=8)
def attention_patterns(seq_len: int, block_size: int, n_layers: int, n_heads: int, head_dim: int, tau: float,
                       window: int, topk: int, estimate: str, seed: int):
    """Every attention pattern scored on structured random q/k/v (:func:`seqattn.sparsity.attention_patterns.run_patterns`)."""
    from seqattn.sparsity.attention_patterns import make_attention_inputs, run_patterns

    inputs = make_attention_inputs(seq_len, n_layers, n_heads, head_dim, block_size, random_state=seed)
    return run_patterns(inputs, window_blocks=window, topk_blocks=topk, tau=tau, psa_estimate=estimate,
                        nsa_selected=max(1, topk - 1), random_state=seed)
