"""The Compare page's settings: defaults per data set, reading the form, the settings key of a finished run,
and the caption that says what the next run will do (built from the form's own values)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from app_support.caches import text_digest
from seqattn.data import Dataset
from seqattn.evaluation.compare import (DEFAULT_METHODS, GREEDY_REFITS_PER_STEP, TYPICAL_WARMUP_STEPS, default_ks,
                                        duration_text, estimate_comparison_seconds)
from seqattn.evaluation.retrain import EVALUATION_EPOCHS, MLP_BATCH
from seqattn.selectors import METHOD_LABELS
from seqattn.selectors.defaults import default_k
from seqattn.trace import SelectionTrace

#: The form's defaults (besides methods, k and the k values, which follow the data set).
DEFAULTS = {"cmp_seeds": 3, "cmp_eval_model": "mlp", "cmp_eval_epochs": EVALUATION_EPOCHS, "cmp_sa_epochs": 0,
            "cmp_shap_background": 50, "cmp_shap_explain": 100, "cmp_seed": 0}
WIDGETS = ("cmp_methods", "cmp_k", "cmp_ks", "cmp_seeds", "cmp_eval_model", "cmp_eval_epochs", "cmp_reuse_sa",
           "cmp_sa_epochs", "cmp_shap_background", "cmp_shap_explain", "cmp_seed")
SETTINGS_FOR_KEY = "cmp_settings_for"  # dataset_key the widgets were last defaulted for
REUSE_OFFERED_KEY = "cmp_reuse_offered"  # the SA trace "Reuse SA run" was last ticked for


def parse_ks(text: str, k: int) -> list[int]:
    """"1, 2, 5" -> [1, 2, 5] (commas or semicolons; sorted, repeats dropped); each must lie in 1..k."""
    values = set()
    for part in text.replace(";", ",").split(","):
        if part.strip():
            try:
                values.add(int(part))
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not a whole number.") from None
    bad = sorted(v for v in values if not 1 <= v <= k)
    if bad:
        raise ValueError(f"k values must lie between 1 and k={k}; got {bad}.")
    return sorted(values)


def default_settings(dataset: Dataset, dataset_key: str) -> bool:
    """Fill the form with the defaults for a new data set (k: :func:`default_k`); True when it did."""
    if st.session_state.get(SETTINGS_FOR_KEY) == dataset_key:
        return False
    k = default_k(dataset.n_groups)
    st.session_state.update({"cmp_methods": list(DEFAULT_METHODS), "cmp_k": k,
                             "cmp_ks": ", ".join(map(str, default_ks(k))), **DEFAULTS})
    st.session_state[SETTINGS_FOR_KEY] = dataset_key
    return True


def offer_reuse(sa_trace: SelectionTrace | None) -> None:
    """"Reuse SA run" is ticked once for each new SA run and unticked (and disabled) while there is none,
    so it never shows ticked but unusable."""
    if sa_trace is None:
        st.session_state["cmp_reuse_sa"] = False
        st.session_state.pop(REUSE_OFFERED_KEY, None)
    elif st.session_state.get(REUSE_OFFERED_KEY) is not sa_trace:
        st.session_state["cmp_reuse_sa"] = True
        st.session_state[REUSE_OFFERED_KEY] = sa_trace


@dataclass(frozen=True)
class CompareSettings:
    """One comparison's settings as the form gives them (what :func:`compare_methods` is called with)."""

    methods: tuple[str, ...]
    k: int
    ks: tuple[int, ...]
    seeds: tuple[int, ...]
    eval_model: str
    eval_epochs: int
    seed: int
    options: dict[str, dict[str, Any]]
    reuse_sa: bool

    def key(self, dataset_key: str, device: str, sa_trace: SelectionTrace | None) -> tuple:
        """Same key, same data, same settings: a finished run can be shown again instead of rerun."""
        sa_digest = text_digest(sa_trace.to_json()) if self.reuse_sa and sa_trace is not None else ""
        return (dataset_key, self.methods, self.k, self.ks, self.seeds, self.eval_model, self.eval_epochs, device,
                self.seed, sa_digest, repr(sorted((m, sorted(o.items())) for m, o in self.options.items())))


def form_settings(sa_trace: SelectionTrace | None) -> CompareSettings:
    """The form's values; ``ValueError`` (in the page's words) for unreadable k values or no method."""
    k = int(st.session_state["cmp_k"])
    methods = tuple(st.session_state["cmp_methods"])
    try:
        ks = tuple(parse_ks(st.session_state["cmp_ks"], k)) or (k,)
    except ValueError as exc:
        raise ValueError(f"Could not read the k values: {exc}") from None
    if not methods:
        raise ValueError("Choose at least one method.")
    options = {"sa": {"epochs": int(st.session_state["cmp_sa_epochs"]) or None},
               "shap": {"n_background": int(st.session_state["cmp_shap_background"]),
                        "n_explain": int(st.session_state["cmp_shap_explain"])}}
    return CompareSettings(methods=methods, k=k, ks=ks, seeds=tuple(range(int(st.session_state["cmp_seeds"]))),
                           eval_model=st.session_state["cmp_eval_model"],
                           eval_epochs=int(st.session_state["cmp_eval_epochs"]), seed=int(st.session_state["cmp_seed"]),
                           options=options,
                           reuse_sa=bool(st.session_state["cmp_reuse_sa"]) and sa_trace is not None and "sa" in methods)


def settings_caption(dataset: Dataset, sa_trace: SelectionTrace | None) -> str:
    """What pressing Run will do, from the form's values (the ones it shows), with the library's time estimate."""
    try:
        chosen = form_settings(sa_trace)
    except ValueError as exc:
        return f"{exc} Fix the form to see what a run will do."
    names = ", ".join(METHOD_LABELS.get(m, m) for m in chosen.methods)
    mlp = chosen.eval_model == "mlp"
    evaluation = (f"the evaluation MLP retrained {chosen.eval_epochs} epochs per (method, k, seed), up to {MLP_BATCH} "
                  "of a method's networks side by side in one batched run (same numbers as one at a time)" if mlp
                  else "logistic regression refitted per (method, k, seed)")
    sa_epochs = chosen.options["sa"]["epochs"]
    sa = ("" if "sa" not in chosen.methods else _reused_sa(sa_trace, chosen.k) if chosen.reuse_sa else
          f" SA trains {sa_epochs} epochs." if sa_epochs else " SA trains until converged (its automatic budget).")
    greedy = (f" Greedy refits the {GREEDY_REFITS_PER_STEP} candidates with the largest score-test statistic per "
              "step, each warm-started from the previous fit." if "greedy" in chosen.methods else "")
    seconds = estimate_comparison_seconds(dataset, chosen.methods, chosen.k, ks=chosen.ks, seeds=chosen.seeds,
                                          eval_model=chosen.eval_model, eval_epochs=chosen.eval_epochs,
                                          method_options=chosen.options, reuse_sa=chosen.reuse_sa)
    seeds = len(chosen.seeds)
    return (f"A run: {names}; k = {chosen.k}, test metric at k = {', '.join(map(str, chosen.ks))}; {seeds} seed"
            f"{'s' if seeds != 1 else ''} (each its own split and initialisation: the ± spread); {evaluation}."
            f"{greedy}{sa} Time: about {duration_text(seconds)} of computation on an idle CPU, estimated from step "
            "costs measured on this machine; a busy CPU takes longer, and so can SA's automatic budget (the estimate "
            f"assumes its median warm-up on the built-ins, {TYPICAL_WARMUP_STEPS} steps; some took 2,270). Results "
            "appear method by method and the progress bar corrects its estimate as they finish.")


def _reused_sa(sa_trace: SelectionTrace, k: int) -> str:
    """The caption's words for a reused SA run, saying when it has fewer picks than k (its test metric then
    stops at its own length: ``accuracy_vs_k`` skips k values beyond a trace)."""
    run = (f"its page's gene panel (the consensus of {sa_trace.n_runs} runs; untick 'Reuse SA run' for one plain "
           "run like the other methods)" if sa_trace.is_consensus else "its page's run")
    if sa_trace.k >= k:
        return f" SA reuses {run}."
    return (f" SA reuses {run}: its {sa_trace.k} pick{'s' if sa_trace.k != 1 else ''}, fewer than k = {k}, "
            f"so SA is tested only at k ≤ {sa_trace.k} (untick 'Reuse SA run' to train SA for k = {k}).")
