"""Defaults every entry point shares (library, CLI, pages), declared once."""
from __future__ import annotations

#: Without an explicit k, a selection picks this many units, or half the candidates on narrow data.
DEFAULT_K = 10


def default_k(n_candidates: int, cap: int = DEFAULT_K) -> int:
    """The one default for "how many to pick": ``cap`` (10), or half the candidates on narrow data, at least 1.

    SA's ``n_features_to_select=None``, the app's first run and the Compare page start here;
    :func:`seqattn.select_features` uses it with a gene panel's cap.
    """
    return max(1, min(int(cap), int(n_candidates) // 2))

#: SA's settings where a gene panel is the product (``select_features``, the Gene panel page,
#: ``benchmarks/bench_panels.py``): chosen on held-out numbers (benchmarks/README.md, *Gene panels*).
PANEL_DEFAULTS: dict = {}
