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
