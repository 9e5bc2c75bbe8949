"""Defaults and option values every entry point shares (library, CLI, pages), declared once.

Torch-free on purpose: the CLI's parser lists these choices without importing the selectors.
"""
from __future__ import annotations

from typing import Any

#: Without an explicit k, a selection picks this many units, or half the candidates on narrow data.
DEFAULT_K = 10


def default_k(n_candidates: int, cap: int = DEFAULT_K) -> int:
    """The one default for "how many to pick": ``cap`` (10), or half the candidates on narrow data, at least 1.

    SA's ``n_features_to_select=None``, the app's first run and the Compare page start here;
    :func:`seqattn.select_features` uses it with a gene panel's cap.
    """
    return max(1, min(int(cap), int(n_candidates) // 2))


#: SA's networks: the MLP (default) or the linear model (whose picks match OMP's on least squares).
SA_MODELS = ("mlp", "linear")
#: SA's loss weights: ``None`` (every cell counts once) or ``"balanced"`` (every class weighs the same;
#: :mod:`seqattn.objectives`). The CLI spells ``None`` as ``"none"``.
CLASS_WEIGHTS = (None, "balanced")
#: SA's pick rules: "none" (plain SA, the largest attention), "turns", "worst" (:mod:`seqattn.selectors.coverage`).
COVERAGE_RULES = ("none", "turns", "worst")
#: The coverage rules that pick for one cell type at a time (every rule but "none").
PER_TYPE_RULES = tuple(rule for rule in COVERAGE_RULES if rule != "none")
#: How the coverage rule measures served-ness per type on the validation rows: recall (the fraction of the
#: type's cells called that type), F1 (recall and precision: a type other types' cells are called as is served
#: badly too), or the mean probability of the true type (smooth where a type has one or two validation cells).
COVERAGE_SCORES = ("recall", "f1", "probability")


#: SA's settings where a gene panel is the product (``select_features``, the CLI on expression data,
#: ``benchmarks/bench_panels.py``), chosen on held-out numbers (benchmarks/README.md, *Gene panels*):
#: candidates from every type's t-test markers (3·k: 3 per type and pick — a 4·k pool won on the tuning
#: splits but broke the three-seed stability criterion and lost the rare type at k = 200), a loss in which every
#: type weighs the same, each pick made
#: for the worst-served cell type (:mod:`seqattn.selectors.coverage`, the largest attention among that
#: type's markers), and the consensus of several runs so each pick says in how many of them it was made.
PANEL_DEFAULTS: dict = {"marker_pool": 3, "class_weight": "balanced", "coverage": "worst", "n_runs": 8,
                        "combine": "runs"}


#: How many runs a panel of k genes combines: PANEL_DEFAULTS["n_runs"] (8), or SMALL_PANEL_RUNS (16) for
#: k ≤ SMALL_PANEL_MAX_K. Why k decides: on pbmc68k_reduced (k = 20) two seeds' 8-run panels share 14.7 of 20
#: genes on average and ≥ 15 only 56 % of the time; with 16 runs 16.0 and 88 % (benchmarks/README.md,
#: *Stability*), for ~1.6× the CPU of a ~7 s (CPU) selection. At k = 200 on 20,000 genes × 10,000 cells 8 runs
#: already take most of the 5-minute budget (benchmarks/bench_large_panel.py), so large panels keep 8.
SMALL_PANEL_RUNS = 16
SMALL_PANEL_MAX_K = 50


def panel_runs(k: int | None) -> int:
    """The default number of runs for a panel of ``k`` genes (see SMALL_PANEL_RUNS; ``None``: large-panel)."""
    return SMALL_PANEL_RUNS if k is not None and int(k) <= SMALL_PANEL_MAX_K else int(PANEL_DEFAULTS["n_runs"])


#: The first gene panel the app's Sequential Attention page offers on expression data with cell types (the
#: panel defaults on): 20 genes, where :func:`seqattn.select_features` makes 50 (``PANEL_DEFAULT_K``). Why
#: smaller: the page's default run must finish well inside a minute on 2 cores with room for the Gene panel
#: page's read-outs after it — 16 runs of 20 genes take ~11 s of CPU on pbmc68k_reduced, of 50 genes ~34 s
#: (benchmarks/README.md, *The Sequential Attention page's gene panel*). Not because SA wins there: on held-out
#: cells SA's 20-gene panel is close to spapros's (0.625 vs 0.627 balanced accuracy, 5 reporting splits) but
#: trails the t-test panel's on 8 of 10 splits (0.625 vs 0.635 reporting, 0.566 vs 0.624 tuning; *Gene panels*),
#: which the Gene panel page shows side by side. The user can set any k on the page.
QUICK_PANEL_K = 20


def panel_defaults(dataset: Any, overrides: dict[str, Any] | None = None, k: int | None = None) -> dict[str, Any]:
    """The PANEL_DEFAULTS that apply to ``dataset``, with the user's ``overrides`` on top: cell types
    (classification) for the balanced loss, the marker pool and the coverage rule, single genes in memory for
    the pool (not backed rows, not feature groups). The coverage rule picks from the pool, so it goes where
    the pool goes — also when the user turns the pool off (``marker_pool=0``) without naming a rule — and
    needs three or more types: with two, every gene that tells one from the other serves both, and taking
    turns would only force picks from the weaker side's markers. ``k``: the panel size, which sets the
    number of runs (:func:`panel_runs`; ``None``: PANEL_DEFAULTS["n_runs"])."""
    overrides = dict(overrides or {})
    options = {**PANEL_DEFAULTS, "n_runs": panel_runs(k)}
    if dataset.task != "classification":
        options.pop("class_weight", None)
        options.pop("marker_pool", None)
    if getattr(dataset, "backed", False) or dataset.groups is not None:
        options.pop("marker_pool", None)
    options.update(overrides)
    few_types = dataset.task == "classification" and dataset.n_classes < 3
    if (not options.get("marker_pool") or few_types) and "coverage" not in overrides:
        options.pop("coverage", None)
    return options
