"""Structured pruning page: SA++ chooses a small transformer's heads and MLP blocks; the pruned model is timed.

Layout only: the study is ``seqattn.sparsity.structured_study``; the job,
settings and tables are in ``app_support/structured.py``.
"""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_support.shell import require_app_shell
from app_support import structured as app
from app_support.jobs import job_progress_panel, show_job_error
from app_support.state import current_device
from seqattn.plots import structured as figs
from seqattn.sparsity.structured import METHODS
from seqattn.sparsity.transformer import PRESETS, bits_per_byte

require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
app.default_settings()
st.title("Structured pruning: SA++ on a transformer")
st.markdown(
    "A small byte-level language model (nanoGPT's shape) trained on the Python standard library's own source. "
    "**SA++** gives every attention head and every block of MLP units one logit; a softmax over them (mean 1) "
    "scales each unit's output while training, and the exponential schedule removes the units with the least "
    "attention, phase by phase. The baselines remove units by weight **magnitude**, by the **gradient** "
    "importance `|∂loss/∂gate|` of *Are Sixteen Heads Really Better than One?*, or at **random**; every method "
    "gets the same steps and the same fine-tune. The pruned models are then **physically smaller** and timed "
    "against the dense one on this device."
)
device = current_device()

with st.form("structured_form"):
    c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 3, 1])
    preset = c1.selectbox("model", list(PRESETS), key="struct_preset",
                          format_func=lambda p: f"{p}: {PRESETS[p].description.split(';')[0]}",
                          help="The model trains once (a few minutes for 'standard') and is cached on disk.")
    kinds = c2.multiselect("units to prune", list(app.KIND_LABELS), key="struct_kinds",
                           format_func=app.KIND_LABELS.get,
                           help="MLP blocks: 32 hidden units (16 on 'tiny'); embedding blocks: 16 residual "
                                "dimensions (8 on 'tiny').")
    fractions = c3.multiselect("fractions removed", [0.25, 0.5, 0.75], key="struct_fractions",
                               format_func=lambda f: f"{f:.0%}")
    methods = c4.multiselect("methods", list(METHODS), key="struct_methods")
    seed = c5.number_input("seed", 0, 10_000, key="struct_seed")
    steps = st.slider("optimizer steps per method", 14, 560, step=7, key="struct_steps",
                      help="SA++'s phases (warm-up, sparsify, sparse, dense, final sparsify, fine-tune) share these "
                           "steps; each baseline trains as many. The benchmark uses 280.")
    submitted = st.form_submit_button("Prune and time", type="primary")

if submitted and app.JOB_KEY not in st.session_state:
    if not kinds or not fractions or not methods:
        st.error("Pick at least one kind of unit, one fraction and one method.")
    else:
        app.start_or_reuse(app.run_settings(preset, kinds, fractions, methods, steps, seed, device))
if app.JOB_KEY in st.session_state:
    job = st.session_state[app.JOB_KEY]
    if job.done:
        app.collect()
    else:
        job_progress_panel(app.JOB_KEY, stop_key="struct_stop", text=lambda j: j.message, run_every=0.5,
                           stopping="Stopping after the current step; the methods that finished are kept…")
show_job_error(app.ERROR_KEY)

result = st.session_state.get(app.RESULT_KEY)
if result is None:
    st.info("Press **Prune and time**. With the cached 'standard' model the default run needs 60–70 "
            "CPU-seconds on one thread: in this app it took 2–2½ minutes in our runs on a busy 2-core machine "
            "(load 4–9; 66 s when called from a script at load 3). The first run trains the model first "
            "(250 CPU-seconds, with progress), then it is cached.")
    st.stop()

m, train = result.model, result.model["training"]
st.caption(
    f"Model: {m['description'].split(';')[0]} ({m['n_parameters']:,} parameters), "
    + ("loaded from the cache" if m["from_cache"] else f"trained now in {train['train_seconds']:.0f} s")
    + f". Corpus: {m['corpus']['train_bytes']:,} train / {m['corpus']['val_bytes']:,} validation bytes of "
    f"{m['corpus']['files']} standard-library files. Dense validation loss {result.dense_val_loss:.3f} nats/byte "
    f"({bits_per_byte(result.dense_val_loss):.2f} bits/byte). {result.settings['steps']} steps per method, "
    f"device {result.settings['device']}.")
if result.stopped_early:
    st.warning("Stopped early: only the runs that finished are shown" + ("" if result.latency else
                                                                         ", and nothing was timed") + ".")
if not result.runs:
    st.stop()
summary = pd.DataFrame(result.summary())
st.dataframe(summary, hide_index=True)
if len(result.settings["seeds"]) == 1:
    st.caption("One seed. On the standard model with the benchmark's 280 steps, the seed-to-seed sd of the "
               "validation loss was 0.002–0.016 nats/byte for SA++, magnitude and gradient importance and 0.035 "
               "for random (three seeds, benchmarks/README.md): differences smaller than that are noise.")

fractions_done = result.fractions
tab_anim, tab_front, tab_lat = st.tabs(["SA++ masks and survivors", "Quality vs latency", "Latency and memory"])
with tab_anim:
    fraction = st.selectbox("fraction removed", fractions_done, format_func=lambda f: f"{f:.0%}",
                            key="struct_anim_fraction")
    if any(r.method == "SA++" and r.fraction == fraction and r.snapshots for r in result.runs):
        st.plotly_chart(figs.unit_mask_animation(result, fraction), key="struct_anim")
    kind = st.radio("survivors of", list(result.grid), format_func=app.KIND_LABELS.get, horizontal=True,
                    key="struct_surv_kind")
    st.plotly_chart(figs.survivors_figure(result, fraction, kind), key="struct_surv")
with tab_front:
    left, right = st.columns(2)
    left.plotly_chart(figs.loss_vs_fraction_figure(result), key="struct_loss")
    if result.latency:
        right.plotly_chart(figs.frontier_figure(result), key="struct_frontier")
with tab_lat:
    if result.latency:
        env = result.latency[-1].env
        clock = result.settings.get("latency_clock", "wall")
        st.caption(f"Paired, interleaved rounds on {env['device']}; torch threads {env['torch_threads']}; "
                   + ("the thread's CPU time (on a busy shared machine the wall clock mostly measures waiting for "
                      "a core)" if clock == "thread_cpu" else "wall clock")
                   + f"; load "
                   f"average (1/5/15 min) {env['load_average_1_5_15min']}. Unstructured: the dense model with the "
                   f"same share ({result.settings['unstructured_fraction']:.0%}) of each block matrix zeroed by "
                   "magnitude, run with dense kernels or as CSR.")
        for kind_name in ("prefill", "decode"):
            st.plotly_chart(figs.structured_latency_figure(result, kind_name), key=f"struct_lat_{kind_name}")
        st.dataframe(app.latency_table(result), hide_index=True)
        st.markdown("**Memory** (counted from the tensors)")
        st.dataframe(app.memory_table(result), hide_index=True)
d1, d2 = st.columns(2)
d1.download_button("Download run (JSON)", json.dumps(result.to_dict(), default=str), "structured_pruning.json",
                   "application/json", key="struct_dl_json")
d2.download_button("Download table (CSV)", pd.DataFrame(result.table()).to_csv(index=False),
                   "structured_pruning.csv", "text/csv", key="struct_dl_csv")
