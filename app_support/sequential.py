"""The Sequential Attention page's settings: their widgets, their defaults per data set, the options a run
gets from them (on expression data with cell types, the gene-panel defaults ``select_features`` uses), and
which of them changed since the run on screen (its results are then marked out of date)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from seqattn.data import Dataset
from seqattn.trace import SelectionTrace

#: Widget key -> what the page calls the setting (in "changed since this run: k 5 → 6").
SETTINGS = {"sa_k": "k", "sa_epochs": "epochs", "sa_hidden": "hidden units", "sa_lr": "learning rate",
            "sa_seed": "seed", "sa_model": "model", "sa_pinned": "pinned", "sa_banned": "banned",
            "sa_panel": "gene panel defaults"}
WIDGETS = tuple(SETTINGS)
SETTINGS_FOR_KEY = "sa_settings_for"  # dataset_key the settings widgets were last defaulted for
RUN_SETTINGS_KEY = "sa_run_settings"  # {"trace": the trace on screen, "settings": what it ran with}


def default_settings(dataset: Dataset, dataset_key: str) -> None:
    """The library's quick-start settings in the widgets, once per data set; the gene-panel defaults on where
    a panel is the product (:func:`seqattn.genomics.gene_panel_applies`)."""
    from seqattn.genomics import gene_panel_applies
    from seqattn.selectors.defaults import QUICK_PANEL_K, default_k
    from seqattn.selectors.sequential_attention import quick_start_settings

    if st.session_state.get(SETTINGS_FOR_KEY) == dataset_key:
        return
    quick = quick_start_settings(dataset)
    panel = gene_panel_applies(dataset)
    k = default_k(dataset.n_groups, cap=QUICK_PANEL_K) if panel else quick["k"]
    st.session_state.update({"sa_k": k, "sa_epochs": quick["epochs"] or 0,  # 0: automatic budget
                             "sa_hidden": quick["hidden"], "sa_lr": quick["learning_rate"],
                             "sa_seed": quick["random_state"], "sa_model": quick["model"],
                             "sa_pinned": [], "sa_banned": [], "sa_panel": panel})
    st.session_state[SETTINGS_FOR_KEY] = dataset_key


#: The measured cost quoted in the toggle's help (benchmarks/bench_sa_page_panel.py; benchmarks/README.md,
#: *The Sequential Attention page's gene panel*: pbmc68k_reduced, CPU seconds, SA's one thread).
PANEL_CPU_TEXT = ("about 11 s of CPU for 20 genes of pbmc68k_reduced (700 cells; 50 genes: about 34 s), against "
                  "about 2.5 s for one plain run")


def _panel_parts(options: dict[str, Any]) -> list[str]:
    """What the gene-panel options do, in words: one phrase per option that applies."""
    parts = []
    if options.get("marker_pool"):
        parts.append(f"candidates from every cell type's t-test markers ({options['marker_pool']}·k genes)")
    if options.get("class_weight") == "balanced":
        parts.append("a loss in which every cell type weighs the same")
    if options.get("coverage") == "worst":
        parts.append("each pick made for the cell type the picks so far serve worst")
    elif options.get("coverage") == "turns":
        parts.append("the cell types taking turns at the picks")
    return parts


def panel_help(dataset: Dataset) -> str:
    """The "Gene panel defaults" toggle's help: what it turns on for ``dataset`` (from
    :func:`~seqattn.selectors.defaults.panel_defaults` itself) and what it costs."""
    from seqattn.selectors.defaults import SMALL_PANEL_MAX_K, SMALL_PANEL_RUNS, panel_defaults

    options = panel_defaults(dataset, {}, None)
    runs = (f"{SMALL_PANEL_RUNS} runs with different seeds combined (up to k = {SMALL_PANEL_MAX_K}, else "
            f"{options['n_runs']}), each gene saying in how many runs it was picked, flagged unstable where they "
            "disagree")
    return (f"What `select_features` does for a gene panel: {'; '.join(_panel_parts(options) + [runs])}. Costs "
            f"{PANEL_CPU_TEXT}. Off: one plain run, with its attention at every step (the animation and the "
            "step-by-step comparison with true gains).")


def panel_caption(dataset: Dataset, k: int) -> str:
    """What Run does with the gene-panel defaults on, for ``k`` picks (under the toggle)."""
    from seqattn.selectors.defaults import panel_defaults

    options = panel_defaults(dataset, {}, k)
    return (f"Run makes a gene panel as `select_features` does: {options['n_runs']} runs combined, "
            f"{', '.join(_panel_parts(options))}. Turn it off for one plain run with its attention at every step.")


def run_options(dataset: Dataset, device: str, max_seconds: float) -> tuple[int, dict[str, Any]]:
    """``(k, options)`` for ``run_method(dataset, "sa", k, **options)`` from the widgets: the options the user
    set, on top of the gene-panel defaults when the toggle is on
    (:func:`seqattn.selectors.defaults.panel_defaults`, where ``select_features`` takes them from)."""
    from seqattn.data.groups import groups_of
    from seqattn.genomics import gene_panel_applies
    from seqattn.selectors.defaults import panel_defaults

    index_of = {name: i for i, name in enumerate(groups_of(dataset).names)}
    get = st.session_state.get
    k = int(get("sa_k"))
    options: dict[str, Any] = {
        "device": device, "random_state": int(get("sa_seed")), "epochs": int(get("sa_epochs")) or None,
        "hidden": int(get("sa_hidden")), "learning_rate": float(get("sa_lr")), "model": get("sa_model"),
        "max_seconds": max_seconds, "pinned": [index_of[n] for n in get("sa_pinned", [])],
        "banned": [index_of[n] for n in get("sa_banned", [])]}
    if get("sa_panel") and gene_panel_applies(dataset):
        options = panel_defaults(dataset, options, k)
    return k, options


def ban(names: list[str]) -> None:
    """The ban buttons' callback: add ``names`` to the ban list and drop them from the pins (not both)."""
    banned = list(st.session_state.get("sa_banned", []))
    st.session_state["sa_banned"] = banned + [g for g in names if g not in banned]
    st.session_state["sa_pinned"] = [g for g in st.session_state.get("sa_pinned", []) if g not in names]


def current_settings() -> dict[str, Any]:
    """The widgets' values, comparable between runs (lists as tuples, numbers as numbers)."""
    values = {key: st.session_state.get(key) for key in WIDGETS}
    return {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}


def remember_run_settings(trace: SelectionTrace, settings: dict[str, Any]) -> None:
    st.session_state[RUN_SETTINGS_KEY] = {"trace": trace, "settings": dict(settings)}


def changed_since_run(trace: SelectionTrace) -> list[str]:
    """What differs between the widgets and the settings ``trace`` ran with ("k 5 → 6", "pinned");
    [] when nothing did or when the page does not know (a run opened from a link)."""
    record = st.session_state.get(RUN_SETTINGS_KEY)
    if record is None or record["trace"] is not trace:
        return []
    before, now = record["settings"], current_settings()
    changed = []
    for key, label in SETTINGS.items():
        if before.get(key) == now.get(key):
            continue
        if isinstance(now.get(key), tuple):
            changed.append(label)
        else:
            changed.append(f"{label} {_shown(key, before.get(key))} → {_shown(key, now.get(key))}")
    return changed


def _shown(key: str, value: Any) -> str:
    if key == "sa_epochs" and not value:
        return "automatic"
    if key == "sa_panel":
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)
