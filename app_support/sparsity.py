"""The Sparsity page's choices: latency size presets, the attention-pattern inputs' sizes and options."""
from __future__ import annotations

from typing import Any

#: Latency presets: label -> ``run_latency_suite`` keyword arguments.
LATENCY_PRESETS: dict[str, dict[str, Any]] = {
    "quick (decode 1k, BSR 1024², no compile)": dict(prefill_lens=(), decode_lens=(1024,), linear_shape=(1024, 1024)),
    "standard (prefill 1k, decode 4k, BSR 2048²)": dict(prefill_lens=(1024,), decode_lens=(4096,)),
    "design targets (1k/4k/8k; minutes)": dict(prefill_lens=(1024, 4096, 8192), decode_lens=(1024, 4096, 8192)),
}
#: The attention-pattern view: token counts and block sizes offered, their defaults, and the fixed model shape.
PATTERN_TOKENS, DEFAULT_TOKENS = (256, 512, 1024), 512
PATTERN_BLOCKS, DEFAULT_BLOCK = (16, 32, 64), 32
PATTERN_LAYERS, PATTERN_HEADS, PATTERN_HEAD_DIM = 2, 4, 64
#: SA++ data sets (built-ins whose images make block masks readable), in menu order.
SAPP_DATASETS = ("digits", "mnist_5k")
#: The latency table's ratio column, named for what it holds (the charts' statistic, not one ms median ÷ another).
RATIO_COLUMNS = {"ratio": "time ÷ baseline (median of rounds)"}

#: The page's input widgets with a first value. They are kept across visits to other pages
#: (:func:`app_support.shell.before_page`), so their first values go into the session here rather than as
#: widget defaults: Streamlit logs a warning when a widget has a default and a value set through the session.
SETTING_DEFAULTS: dict[str, Any] = {
    "sapp_sparsity": 0.8, "sapp_block": 8, "sapp_hidden": 128, "sapp_epochs": 18, "sapp_cycles": 2,
    "attn_seq": DEFAULT_TOKENS, "attn_block": DEFAULT_BLOCK, "attn_tau": 0.9, "attn_window": 3, "attn_topk": 4,
    "attn_seed": 0, "lat_repeats": 5, "lat_bsr": 0.9,
}
#: Every input widget of the page (those whose first value is the widget's own first option too).
WIDGETS = (*SETTING_DEFAULTS, "sapp_data", "attn_estimate", "lat_preset", "lat_mask", "lat_threads")


def default_settings() -> None:
    """First values for the page's inputs, once per session (later visits keep the user's)."""
    import streamlit as st
    import torch

    for key, value in {**SETTING_DEFAULTS, "lat_threads": torch.get_num_threads()}.items():
        st.session_state.setdefault(key, value)
