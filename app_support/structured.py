"""App-only helpers for the Structured pruning page: the run's settings, its background job, its tables.

The study itself is :func:`seqattn.sparsity.structured_study.structured_pruning_study`;
this module only turns widget values into its arguments, keeps this
session's finished runs, and shapes results into the page's tables.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app_support.jobs import BackgroundJob, take_finished_job
from app_support.state import finished_runs, remember_finished_run
from seqattn.sparsity.structured import METHODS, PruningSettings
from seqattn.sparsity.structured_study import StructuredPruningResult, structured_pruning_study

JOB_KEY = "structured_job"
RESULT_KEY = "structured_result"
ERROR_KEY = "structured_error"
FINISHED_KEY = "structured_finished"  # settings -> finished result of this session
KIND_LABELS = {"heads": "attention heads", "mlp": "MLP blocks", "embed": "embedding-dimension blocks",
               "layers": "whole transformer blocks"}
#: The page's default budget (``PruningSettings.quick``): 51–70 CPU-seconds for every method, both fractions and
#: the timing once the model is cached (benchmarks/README.md); the benchmark uses the library's 5× longer default.
PAGE_STEPS = PruningSettings.quick().steps
#: The page's input widgets with a first value (kept across visits to other pages by
#: :func:`app_support.shell.before_page`; first values go into the session, not into widget defaults).
SETTING_DEFAULTS: dict[str, Any] = {"struct_kinds": ("heads", "mlp"), "struct_fractions": (0.5, 0.75),
                                    "struct_methods": tuple(METHODS), "struct_seed": 0, "struct_steps": PAGE_STEPS}
WIDGETS = (*SETTING_DEFAULTS, "struct_preset")


def default_settings() -> None:
    """First values for the page's inputs, once per session (later visits keep the user's); each session
    gets its own lists (a shared list changed in one session would change the others')."""
    for key, value in SETTING_DEFAULTS.items():
        st.session_state.setdefault(key, list(value) if isinstance(value, tuple) else value)


def run_settings(preset: str, kinds: list[str], fractions: list[float], methods: list[str], steps: int,
                 seed: int, device: str) -> tuple:
    """Hashable key of one run's settings (the finished-run store and the job's meta)."""
    return (preset, tuple(kinds), tuple(sorted(fractions)), tuple(methods), int(steps), int(seed), device)


def start_or_reuse(settings: tuple) -> None:
    """Show this session's finished run with these settings, or start the study in a background job."""
    if settings in finished_runs(FINISHED_KEY):
        st.session_state[RESULT_KEY] = finished_runs(FINISHED_KEY)[settings]
        return
    preset, kinds, fractions, methods, steps, seed, device = settings
    pruning = PruningSettings.quick(kinds=kinds, steps=steps, mlp_block=32 if preset == "standard" else 16,
                                    embed_block=16 if preset == "standard" else 8)
    st.session_state.pop(ERROR_KEY, None)
    st.session_state[JOB_KEY] = BackgroundJob(structured_pruning_study, preset, fractions=fractions,
                                              methods=methods, seeds=(seed,), settings=pruning, device=device,
                                              latency_repeats=10, meta={"settings": settings})


def collect() -> None:
    """Move a finished job's result (or its error) into session state; keep complete runs for reuse."""
    job: BackgroundJob | None = st.session_state.get(JOB_KEY)
    if job is not None and job.done and job.error is not None and job.stop_requested:
        st.session_state.pop(JOB_KEY)
        st.session_state[ERROR_KEY] = ("Stopped while the dense model was training; nothing was pruned. "
                                       "Press the button to start again.")
        return
    job = take_finished_job(JOB_KEY, error_key=ERROR_KEY, what="Structured pruning", plain_errors=())
    if job is None:
        return
    st.session_state[RESULT_KEY] = job.result
    if not job.result.stopped_early:
        remember_finished_run(FINISHED_KEY, job.meta["settings"], job.result)


def memory_table(result: StructuredPruningResult) -> pd.DataFrame:
    """Weights and KV cache per timed model (from the prefill report)."""
    reports = [r for r in result.latency if r.kind == "prefill"]
    if not reports:
        return pd.DataFrame()
    quality = reports[0].quality
    return pd.DataFrame([{"model": name, **{k: round(v, 4) for k, v in row.items()}} for name, row in quality.items()])


def latency_table(result: StructuredPruningResult) -> pd.DataFrame:
    """Median ms, spread and paired ratio per model and case."""
    rows: list[dict[str, Any]] = []
    for report in result.latency:
        size = report.config.get("seq_len", report.config.get("context_len"))
        for t in report.timings:
            rows.append({"case": f"{report.kind} {size} tokens", "model": t.name, "median ms": round(1e3 * t.median, 3),
                         "p25 ms": round(1e3 * t.quantile(0.25), 3), "p75 ms": round(1e3 * t.quantile(0.75), 3),
                         "ratio to dense": t.ratio_label(), "load": str(report.env["load_average_1_5_15min"])})
    return pd.DataFrame(rows)
