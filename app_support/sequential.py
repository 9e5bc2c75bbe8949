"""The Sequential Attention page's settings: their widgets, their defaults per data set, and which of them
changed since the run on screen (its results are then marked out of date)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from seqattn.data import Dataset
from seqattn.trace import SelectionTrace

#: Widget key -> what the page calls the setting (in "changed since this run: k 5 → 6").
SETTINGS = {"sa_k": "k", "sa_epochs": "epochs", "sa_hidden": "hidden units", "sa_lr": "learning rate",
            "sa_seed": "seed", "sa_model": "model", "sa_pinned": "pinned", "sa_banned": "banned"}
WIDGETS = tuple(SETTINGS)
SETTINGS_FOR_KEY = "sa_settings_for"  # dataset_key the settings widgets were last defaulted for
RUN_SETTINGS_KEY = "sa_run_settings"  # {"trace": the trace on screen, "settings": what it ran with}


def default_settings(dataset: Dataset, dataset_key: str) -> None:
    """The library's quick-start settings in the widgets, once per data set."""
    from seqattn.selectors.sequential_attention import quick_start_settings

    if st.session_state.get(SETTINGS_FOR_KEY) == dataset_key:
        return
    quick = quick_start_settings(dataset)
    st.session_state.update({"sa_k": quick["k"], "sa_epochs": quick["epochs"] or 0,  # 0: automatic budget
                             "sa_hidden": quick["hidden"], "sa_lr": quick["learning_rate"],
                             "sa_seed": quick["random_state"], "sa_model": quick["model"],
                             "sa_pinned": [], "sa_banned": []})
    st.session_state[SETTINGS_FOR_KEY] = dataset_key


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
    return f"{value:g}" if isinstance(value, float) else str(value)
