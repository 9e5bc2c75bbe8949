"""Sparsity page: SA++ block masks, PSA and related attention patterns, live dense-vs-sparse latency.

Layout only: everything is computed by ``seqattn.sparsity``; long runs go to a
``BackgroundJob`` (progress bar + Stop), finished SA++ runs are kept per
settings in this session, pattern scoring is cached (``app_support/caches.py``),
presets and sizes live in ``app_support/sparsity.py``.
"""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_support.caches import attention_patterns
from app_support.jobs import BackgroundJob, job_progress_panel, show_job_error, take_finished_job
from app_support.shell import require_app_shell
from app_support.sparsity import (LATENCY_PRESETS, PATTERN_BLOCKS, PATTERN_HEAD_DIM, PATTERN_HEADS, PATTERN_LAYERS,
                                  PATTERN_TOKENS, RATIO_COLUMNS, SAPP_DATASETS, default_settings)
from app_support.state import current_device, finished_runs, load_builtin_cached, remember_finished_run
from seqattn.data.builtins import BUILTIN_DATASETS
from seqattn.plots import sparsity as figs
from seqattn.safe_text import to_csv
from seqattn.sparsity.attention_patterns import PSA_LABEL
from seqattn.sparsity.block_pruning import sa_plus_plus
from seqattn.sparsity.latency import reports_to_rows, run_latency_suite

SAPP_JOB, LAT_JOB = "sparsity_sapp_job", "sparsity_latency_job"
SAPP_RESULT, LAT_RESULT = "sparsity_sapp_result", "sparsity_latency_result"
SAPP_FINISHED = "sapp_finished"  # settings -> finished SA++ run of this session (latency is always measured afresh)


def job_panel(job_key: str, what: str) -> None:
    """Progress + Stop for a background job; a full rerun collects the result when it is done."""
    job_progress_panel(job_key, stop_key=f"{job_key}_stop", text=lambda j: f"{what} — {j.message}",
                       stopping="Stopping after the current step; what finished is kept…", run_every=0.5)


require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
default_settings()
st.title("Sparsity: SA++ and sparse attention")
st.markdown(
    "Sequential Attention learns *which inputs matter* with a softmax over candidates. The same idea scales to "
    "**structured sparsity**: **SA++** puts attention over *blocks of weights* and prunes a network to a "
    "block-sparse one; **PSA** (Progressive Sparse Attention) keeps, for each query block, just enough key "
    "blocks to cover a share τ of the attention mass. Latency is measured live on this machine."
)
device = current_device()
tab_sapp, tab_attn, tab_lat = st.tabs(["SA++ block pruning", "Attention patterns (PSA)", "Latency"])

# ------------------------------------------------------------------ SA++
with tab_sapp:
    names = [n for n in SAPP_DATASETS if n in BUILTIN_DATASETS]
    with st.form("sapp_form"):
        c1, c2, c3, c4, c5, c6 = st.columns(6)
        data_name = c1.selectbox("data set", names, key="sapp_data")
        sparsity = c2.slider("block sparsity", 0.5, 0.95, step=0.05, key="sapp_sparsity")
        block = c3.selectbox("block size", [4, 8, 16], key="sapp_block")
        hidden = c4.number_input("hidden width", 16, 1024, step=16, key="sapp_hidden")
        epochs = c5.number_input("epochs", 9, 300, step=1, key="sapp_epochs",
                                 help="Same step budget for SA++, magnitude pruning and dense.")
        cycles = c6.number_input("cycles N", 0, 5, step=1, key="sapp_cycles",
                                 help="(sparsify → sparse → dense) repetitions before the final sparsify.")
        submitted = st.form_submit_button("Train SA++ and baselines", type="primary")
    settings = (data_name, float(sparsity), int(block), int(hidden), int(epochs), int(cycles), device)
    if submitted and SAPP_JOB not in st.session_state:
        if settings in finished_runs(SAPP_FINISHED):
            st.session_state[SAPP_RESULT] = finished_runs(SAPP_FINISHED)[settings]
            st.session_state["lat_bsr"] = float(sparsity)
        else:
            job = BackgroundJob(sa_plus_plus, load_builtin_cached(data_name), sparsity=float(sparsity),
                                block_size=int(block), hidden=(int(hidden),), epochs=int(epochs),
                                n_cycles=int(cycles), device=device, meta={"settings": settings})
            st.session_state[SAPP_JOB] = job
    trained = take_finished_job(SAPP_JOB, error_key=SAPP_RESULT + "_error", what="SA++ training")
    if trained is not None:
        st.session_state[SAPP_RESULT] = trained.result
        if not trained.stop_requested:
            remember_finished_run(SAPP_FINISHED, trained.meta["settings"], trained.result)
        st.session_state["lat_bsr"] = float(trained.meta["settings"][1])  # the BSR timing follows the pruned sparsity
    elif SAPP_JOB in st.session_state:
        job_panel(SAPP_JOB, "Training")
    show_job_error(SAPP_RESULT + "_error")
    result = st.session_state.get(SAPP_RESULT)
    if result is None:
        st.info("Press **Train SA++ and baselines**. Digits with the defaults (1–4 CPU-seconds of training) took "
                "5–11 s (median 6 s) from the click to this table in our runs on a busy 2-core CPU (load 5–8); the "
                "first run after the app starts took 16–22 s (PyTorch loads more of itself). The progress bar shows "
                "how far it is.")
    else:
        s = result.settings
        st.caption(f"{s['dataset']}: hidden {s['hidden']}, block {s['block_size']}×{s['block_size']}, target "
                   f"{s['sparsity']:.0%} blocks pruned, {s['total_steps']} optimizer steps per method, "
                   f"device {s['device']}.")
        if result.stopped_early:
            st.warning("Stopped early: only the methods that finished are shown.")
        st.dataframe(pd.DataFrame(result.accuracy_table()), hide_index=True)
        if result.snapshots:
            left, right = st.columns([3, 2])
            layer = 0
            if len(result.layer_shapes) > 1:
                layer = left.selectbox("layer", range(len(result.layer_shapes)), key="sapp_layer")
            left.plotly_chart(figs.block_mask_animation(result, layer), key="sapp_anim")
            right.plotly_chart(figs.accuracy_figure(result), key="sapp_acc")
            st.plotly_chart(figs.schedule_figure(result), key="sapp_schedule")
        d1, d2 = st.columns(2)
        d1.download_button("Download SA++ run (JSON)", json.dumps(result.to_dict()), "sapp_run.json",
                           "application/json", key="sapp_dl_json")
        d2.download_button("Download accuracy table (CSV)", to_csv(pd.DataFrame(result.accuracy_table())),
                           "sapp_accuracy.csv", "text/csv", key="sapp_dl_csv")
        with st.expander("How SA++ works here"):
            st.markdown(
                "Each pruned layer has one logit per weight block; `A = n_blocks · softmax(L)` has mean 1 and the "
                "effective weight is `W ⊙ A ⊙ mask`. Phases: dense warm-up → (sparsify → sparse → dense) × N → "
                "final sparsify → sparse fine-tune. In a sparsify phase the pruned share follows "
                "`s(t) = s·(1−e^(−4t))/(1−e^(−4))` and the mask keeps the blocks with the largest `A`; dense "
                "phases let pruned blocks regrow from zero. Magnitude pruning uses the same ramp on block norms "
                "after dense training, with the same number of optimizer steps.")
            st.plotly_chart(figs.schedule_shape_figure(float(s["sparsity"])), key="sapp_shape")

# ------------------------------------------------------------------ attention patterns
with tab_attn:
    c1, c2, c3, c4, c5, c6, c7 = st.columns(7)
    seq_len = c1.selectbox("tokens", PATTERN_TOKENS, key="attn_seq")
    block_size = c2.selectbox("block size", PATTERN_BLOCKS, key="attn_block")
    tau = c3.slider("PSA τ", 0.5, 0.99, step=0.01, key="attn_tau")
    window = c4.number_input("window blocks", 1, 16, key="attn_window")
    topk = c5.number_input("top-k blocks", 1, 32, key="attn_topk")
    estimate = c6.radio("PSA scores", ["pooled", "exact"], key="attn_estimate",
                        help="pooled: mean-pooled q·k per block (what a kernel can afford); exact: true block mass "
                             "(oracle).")
    seed = c7.number_input("seed", 0, 10_000, key="attn_seed")
    suite = attention_patterns(int(seq_len), int(block_size), PATTERN_LAYERS, PATTERN_HEADS, PATTERN_HEAD_DIM,
                               float(tau), int(window), int(topk), estimate, int(seed))
    st.caption(f"q/k/v: structured random data ({seq_len} tokens, {PATTERN_LAYERS} layers × {PATTERN_HEADS} heads, "
               f"head dim {PATTERN_HEAD_DIM}): locality, an attention sink and content topics mixed differently per "
               f"head. **{PSA_LABEL}.** The table averages over every head and layer; the heatmaps' titles give "
               "the chosen head's own numbers.")
    table = pd.DataFrame(suite.table())
    st.dataframe(table, hide_index=True)
    head = st.selectbox("head", range(suite.inputs.n_heads), format_func=lambda h: suite.inputs.head_labels[h],
                        key="attn_head")
    st.plotly_chart(figs.pattern_heatmaps(suite, head), key="attn_heat")
    left, right = st.columns(2)
    left.plotly_chart(figs.psa_budget_figure(suite), key="attn_budget")
    qb = right.slider("query block for the τ curve", 0, suite.inputs.n_blocks - 1, suite.inputs.n_blocks - 1,
                      key="attn_qb")
    right.plotly_chart(figs.cumulative_mass_figure(suite, qb), key="attn_cum")
    st.plotly_chart(figs.progressive_figure(suite), key="attn_prog")
    st.download_button("Download pattern metrics (CSV)", to_csv(table), "attention_patterns.csv",
                       "text/csv", key="attn_dl")

# ------------------------------------------------------------------ latency
with tab_lat:
    st.markdown("Paired, interleaved timing on **this** device: each round runs every candidate once in a rotating "
                "order. The charts show each candidate's time **divided by the baseline's time in the same round**: "
                "bar and label are the median of those per-round ratios, whiskers their p25–p75 (a load spike hits "
                "both sides of a ratio, so it is steadier than comparing two medians). The tables give the "
                "milliseconds. Other programs running at the same time make these numbers noisy — the load "
                "average is recorded.")
    with st.form("lat_form"):
        c1, c2, c3, c4, c5 = st.columns(5)
        preset = c1.selectbox("sizes", list(LATENCY_PRESETS), key="lat_preset")
        mask = c2.radio("prefill mask", ["sliding_window", "psa"], key="lat_mask",
                        help="sliding window of 10% of the tokens, or PSA-derived adaptive blocks (τ below).")
        repeats = c3.number_input("rounds", 1, 50, key="lat_repeats")
        bsr_sparsity = c4.slider("BSR block sparsity", 0.5, 0.99, step=0.01, key="lat_bsr",
                                 help="Defaults to the SA++ run's sparsity when there is one.")
        threads = c5.number_input("CPU threads", 1, 64, key="lat_threads",
                                  help="On a busy shared CPU, 1 thread often gives steadier numbers for small ops.")
        measure = st.form_submit_button("Measure latency", type="primary")
    if measure and LAT_JOB not in st.session_state:
        cfg = dict(LATENCY_PRESETS[preset], prefill_mask=mask, repeats=int(repeats),
                   linear_sparsities=(float(bsr_sparsity),), num_threads=int(threads), device=device)
        st.session_state[LAT_JOB] = BackgroundJob(run_latency_suite, **cfg)
    measured = take_finished_job(LAT_JOB, error_key=LAT_RESULT + "_error", what="Measuring latency")
    if measured is not None:
        st.session_state[LAT_RESULT] = measured.result
    elif LAT_JOB in st.session_state:
        job_panel(LAT_JOB, "Latency")
    show_job_error(LAT_RESULT + "_error")
    reports = st.session_state.get(LAT_RESULT)
    if not reports:
        st.info("Pick sizes and press **Measure latency**. The first prefill run compiles `flex_attention` "
                "(tens of seconds on a CPU); compile time is reported separately.")
    else:
        env = reports[-1].env
        st.caption(f"Device {env['device']}, torch threads {env['torch_threads']}, load average (1/5/15 min) "
                   f"{env['load_average_1_5_15min']}, torch {env['torch']}.")
        if any(r.cancelled for r in reports):
            st.warning("Cancelled: the last case has fewer rounds than requested.")
        rows = pd.DataFrame(reports_to_rows(reports))
        for kind in ("prefill", "decode", "linear"):
            if any(r.kind == kind for r in reports):
                st.plotly_chart(figs.latency_figure(reports, kind), key=f"lat_fig_{kind}")
                shown = rows[rows["kind"] == kind].dropna(axis=1, how="all")
                st.dataframe(shown.drop(columns=["kind", "load_average", "threads", "device"])
                             .rename(columns=RATIO_COLUMNS), hide_index=True)
        compile_rows = [{"seq_len": r.config["seq_len"], **{k: round(v, 2) for k, v in r.compile_seconds.items()}}
                        for r in reports if r.kind == "prefill"]
        if compile_rows:
            st.markdown("**One-off costs (seconds, not in the ratios)**")
            st.dataframe(pd.DataFrame(compile_rows), hide_index=True)
        for r in reports:
            for note in r.notes:
                st.caption(f"{r.kind} {r.config.get('seq_len', r.config.get('context_len', ''))}: {note}")
        st.caption("The ratio columns are medians of per-round ratios, as in the charts; under load they can differ "
                   "from one median in milliseconds divided by another, because a slow round slows both sides of "
                   "its own ratio.")
        d1, d2 = st.columns(2)
        d1.download_button("Download latency (CSV)", to_csv(rows), "latency.csv", "text/csv",
                           key="lat_dl_csv")
        d2.download_button("Download latency (JSON)", json.dumps([r.to_dict() for r in reports], default=str),
                           "latency.json", "application/json", key="lat_dl_json")
