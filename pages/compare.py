"""Compare page: Sequential Attention vs OMP vs SHAP vs greedy vs filters on the current data set.

Layout only: ``seqattn.evaluation.compare.compare_methods`` does the work in a background
job (progress bar, Stop keeps what finished; finished runs are kept per
settings in this session), ``seqattn.plots.compare`` draws it; the form's
defaults, reading and caption live in ``app_support/compare.py``.
"""
from __future__ import annotations

import streamlit as st

from app_support import compare as settings
from app_support.caches import step_scores, text_digest
from app_support.jobs import BackgroundJob, job_progress_panel, show_job_error, take_finished_job
from app_support.runs import keep_run, show_run_link, take_restored
from app_support.shell import require_app_shell
from app_support.state import (MAX_TRAINING_SECONDS, SA_TRACE_KEY, current_device, finished_runs, page_dataset,
                               remember_finished_run)
from seqattn.evaluation.compare import ALL_METHODS, Comparison, compare_methods
from seqattn.plots.compare import (
    accuracy_vs_k_figure,
    matrix_heatmap,
    pixel_masks_figure,
    ranking_frame,
    recovery_figure,
    shap_bar_figure,
    shap_beeswarm_figure,
    step_scores_figure,
    timing_figure,
)
from seqattn.plots.data import mean_image
from seqattn.reproduce import comparison_notebook
from seqattn.safe_text import escape_markdown, file_stem
from seqattn.selectors import METHOD_LABELS
from seqattn.trace import SelectionTrace

RESULT_KEY = "cmp_result"  # the Comparison shown on this page
RUN_ID_KEY = "cmp_run_id"  # its id in the run store (None: not kept)
RUN_IDS_KEY = "cmp_run_ids"  # settings key -> run id of this session's finished runs
JOB_KEY = "cmp_job"  # the BackgroundJob of a running comparison
ERROR_KEY = "cmp_error"  # why the last comparison failed
FINISHED_KEY = "cmp_finished"  # settings key -> Comparison: finished runs of this session

require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
st.title("Compare methods")
dataset, dataset_key = page_dataset()
device = current_device()
sa_trace: SelectionTrace | None = st.session_state.get(SA_TRACE_KEY)
if sa_trace is not None and (sa_trace.n_features != dataset.n_groups or sa_trace.k == 0):
    sa_trace = None  # from other data, or stopped before its first pick: nothing to reuse

st.caption(f"**{escape_markdown(dataset.name)}**: {dataset.n_samples} samples × {dataset.n_features} features, {dataset.task}. "
           f"Device: `{device}`. Every method returns the same kind of trace; each is judged by retraining a "
           f"fresh model on its first k picks.")

# ------------------------------------------------------------------ settings
if settings.default_settings(dataset, dataset_key):
    st.session_state.pop(RESULT_KEY, None)
settings.offer_reuse(sa_trace)
restored = take_restored("compare")  # a run opened from its link (?run=...)
if restored is not None:
    st.session_state[RESULT_KEY], st.session_state[RUN_ID_KEY] = restored

# Plain widgets, not a form: a form's values reach the script only when it is submitted, so the caption below
# would describe the last submitted values while the form shows new ones (issue 23 item 7).
with st.container(border=True, key="cmp_settings"):
    st.multiselect("Methods", list(ALL_METHODS), key="cmp_methods", format_func=METHOD_LABELS.get)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.number_input("k (features per method)", min_value=1, max_value=dataset.n_groups, step=1, key="cmp_k")
    c2.text_input("k values to evaluate", key="cmp_ks", help="Comma-separated, each between 1 and k.")
    c3.number_input("seeds", min_value=1, max_value=10, step=1, key="cmp_seeds",
                    help="Each seed: its own train/test split and model initialisation (the spread band).")
    c4.radio("evaluation model", ["mlp", "logistic"], key="cmp_eval_model", horizontal=True,
             help="mlp: the SA paper's network, retrained per (method, k, seed). logistic: much faster.")
    c5.number_input("evaluation epochs", min_value=1, max_value=500, step=1, key="cmp_eval_epochs")
    d1, d2, d3, d4, d5 = st.columns(5)
    d1.checkbox("Reuse SA run", key="cmp_reuse_sa", disabled=sa_trace is None,
                help="Use the Sequential Attention run already on its page instead of training again."
                     + ("" if sa_trace is not None else " There is none on this data set yet."))
    d2.number_input("SA epochs (if run here; 0 = automatic)", min_value=0, max_value=1000, step=1,
                    key="cmp_sa_epochs", help="0: SA trains until converged (the library's default budget).")
    d3.number_input("SHAP background rows", min_value=1, max_value=1000, step=1, key="cmp_shap_background")
    d4.number_input("SHAP explained rows", min_value=1, max_value=2000, step=1, key="cmp_shap_explain")
    d5.number_input("selection seed", min_value=0, max_value=2**31 - 1, step=1, key="cmp_seed")
    submitted = st.button("Run comparison", type="primary", key="cmp_run")

st.caption(escape_markdown(settings.settings_caption(dataset, sa_trace)))
if sa_trace is not None:
    st.caption(f"A Sequential Attention trace with {sa_trace.k} picks is available from its page.")

if submitted:
    try:
        chosen = settings.form_settings(sa_trace)
    except ValueError as exc:
        st.error(escape_markdown(str(exc)))
        st.stop()
    key = chosen.key(dataset_key, device, sa_trace)
    finished = finished_runs(FINISHED_KEY)
    if st.session_state.get(JOB_KEY) is not None:
        st.warning("A comparison is still running: wait for it or press Stop first.")
    elif key in finished:  # same settings, same data: show the finished run again
        st.session_state[RESULT_KEY] = finished[key]
        st.session_state[RUN_ID_KEY] = st.session_state.get(RUN_IDS_KEY, {}).get(key)
    else:
        st.session_state[JOB_KEY] = BackgroundJob(
            compare_methods, dataset, list(chosen.methods), chosen.k, ks=list(chosen.ks), seeds=list(chosen.seeds),
            eval_model=chosen.eval_model, eval_epochs=chosen.eval_epochs, random_state=chosen.seed, device=device,
            sa_trace=sa_trace if chosen.reuse_sa else None, method_options=chosen.options,
            max_seconds=MAX_TRAINING_SECONDS, partial_kwarg="on_partial",
            meta={"settings_key": key, "dataset_key": dataset_key})


def show_partial(running_job: BackgroundJob) -> None:
    """While the comparison runs: every finished method's test metric and picks so far."""
    partial: Comparison | None = running_job.partial
    if partial is None or not partial.traces:
        st.caption("Results appear here method by method as each one finishes.")
        return
    st.markdown(f"**Finished so far ({len(partial.traces)} of {len(partial.settings['methods'])} methods)**")
    st.dataframe(partial.accuracy_table(), hide_index=True, key="cmp_partial_summary")
    st.dataframe(partial.rankings(), key="cmp_partial_rankings")


done = take_finished_job(JOB_KEY, error_key=ERROR_KEY, what="The comparison", dataset_key=dataset_key,
                         plain_errors=(ValueError, RuntimeError))
if done is not None:
    result = done.result
    run_id = keep_run("compare", result.to_dict(), result.shap_arrays())  # a link that outlives a restart
    if not result.settings.get("stopped"):  # a stopped run is not reused
        remember_finished_run(FINISHED_KEY, done.meta["settings_key"], result)
        st.session_state.setdefault(RUN_IDS_KEY, {})[done.meta["settings_key"]] = run_id
    st.session_state[RESULT_KEY], st.session_state[RUN_ID_KEY] = result, run_id
elif st.session_state.get(JOB_KEY) is not None:
    job_progress_panel(JOB_KEY, stop_key="cmp_stop", text=lambda j: j.message, details=show_partial,
                       stopping="Stopping inside the current method or after its retraining batch; what finished "
                                "is kept…",
                       stop_help="Stop and show the methods and fits that finished.")
    st.stop()  # old results stay hidden while a run is going
show_job_error(ERROR_KEY)

result: Comparison | None = st.session_state.get(RESULT_KEY)
if result is None:
    st.info("Choose methods and settings, then press **Run comparison**.")
    st.stop()

show_run_link(st.session_state.get(RUN_ID_KEY))
if result.settings.get("stopped") == "stopped":
    st.info("Stopped: showing the methods and retraining fits that finished before Stop.")
if result.settings.get("stopped") == "time limit":
    st.warning(f"Stopped at the time limit ({MAX_TRAINING_SECONDS / 60:.0f} min): showing the methods and "
               "retraining fits that finished. Use fewer methods, seeds or k values, or the logistic evaluation model.")
for method, message in result.errors.items():
    st.warning(escape_markdown(f"{METHOD_LABELS.get(method, method)} was skipped: {message}"))
if not result.traces:
    st.stop()

# ------------------------------------------------------------------ the key chart
st.subheader(f"{result.metric[0].upper() + result.metric[1:]} vs k")  # "Accuracy vs k", "R² vs k"
st.plotly_chart(accuracy_vs_k_figure(result.accuracy), key="cmp_accuracy_chart")
accuracy_table = result.accuracy_table()
if len(accuracy_table):
    st.dataframe(accuracy_table, hide_index=True, key="cmp_summary_table")
st.caption(f"Evaluation: {result.settings.get('eval_model')} retrained per (method, k, seed); "
           f"{result.settings.get('split')}. The methods selected on all rows, so filters and SHAP saw the test "
           f"rows' labels once; `benchmarks/bench_compare.py` uses a clean hold-out.")

tab_rank, tab_agree, tab_step, tab_shap, tab_time, tab_dl = st.tabs(
    ["Rankings", "Agreement", "Step by step", "SHAP summary", "Timing", "Downloads"])

with tab_rank:
    truth = result.informative
    st.dataframe(ranking_frame(result.traces, result.k, truth), key="cmp_rankings")
    if truth is not None:
        st.caption("✓ = a planted informative feature.")
        recovery_table = result.recovery()
        st.plotly_chart(recovery_figure(recovery_table), key="cmp_recovery_chart")
        st.dataframe(recovery_table, hide_index=True, key="cmp_recovery_table")
    if dataset.image_shape is not None:
        st.plotly_chart(pixel_masks_figure(result.traces, dataset.image_shape, result.k, mean_image(dataset)),
                        key="cmp_pixel_masks")

with tab_agree:
    a1, a2 = st.columns(2)
    a1.plotly_chart(matrix_heatmap(result.overlap(), f"Jaccard overlap of the top-{result.k} sets"),
                    key="cmp_overlap")
    a2.plotly_chart(matrix_heatmap(result.rank_correlation(), "Spearman ρ of the full rankings", -1.0, 1.0,
                                   "RdBu"), key="cmp_rankcorr")
    st.caption("Full ranking = the picks in order, then the remaining features by the method's last scores.")

with tab_step:
    sa_result = result.traces.get("sa")
    if sa_result is None or sa_result.k == 0:
        st.info("Include Sequential Attention in the comparison to see its scores next to OMP's and greedy's.")
    elif dataset.groups is not None:
        st.info("This step-by-step view refits single columns; it is not offered for data with feature groups.")
    elif sa_result.is_consensus:
        st.info(f"SA here is the Sequential Attention page's gene panel, the consensus of {sa_result.n_runs} runs: "
                "its step scores are shares of runs, not attention. Untick **Reuse SA run** (Compare then trains "
                "one plain SA run) to see SA's attention next to OMP's and greedy's.")
    else:
        step = st.slider("SA step", 1, sa_result.k, 1, key="cmp_step") - 1
        frame = step_scores(dataset_key, text_digest(sa_result.to_json()), step, dataset, sa_result)
        st.plotly_chart(step_scores_figure(frame), key="cmp_step_chart")
        if frame.attrs.get("note"):
            st.caption(escape_markdown(frame.attrs["note"]))
        st.caption("Given the same already-selected features (SA's picks before this step): SA's attention "
                   "weight, OMP's residual correlation |Xᵢᵀr|, and the true drop in validation loss when a cheap "
                   "model is refitted with each candidate added.")

with tab_shap:
    if result.shap is None:
        st.info("Include SHAP in the comparison to see its summary.")
    else:
        st.caption(f"Explainer: **{result.shap.explainer}**"
                   + (f" (fallback: {escape_markdown(result.shap.fallback_reason)})"
                      if result.shap.fallback_reason else ""))
        s1, s2 = st.columns(2)
        s1.plotly_chart(shap_bar_figure(result.shap), key="cmp_shap_bar")
        s2.plotly_chart(shap_beeswarm_figure(result.shap), key="cmp_shap_beeswarm")

with tab_time:
    st.plotly_chart(timing_figure(result.timings()), key="cmp_timing")
    st.caption("Measured on this machine while other work may be running; treat small differences as noise.")

with tab_dl:
    stem = file_stem(dataset.name)
    st.download_button("Summary (CSV)", result.summary_csv(), file_name=f"{stem}-compare-summary.csv",
                       mime="text/csv", key="cmp_dl_summary")
    st.download_button("All accuracy rows (CSV)", result.accuracy_csv(),
                       file_name=f"{stem}-compare-accuracy.csv", mime="text/csv", key="cmp_dl_rows")
    st.download_button("Rankings (CSV)", result.rankings_csv(), file_name=f"{stem}-compare-rankings.csv",
                       mime="text/csv", key="cmp_dl_rankings")
    st.download_button("Everything (JSON: traces, accuracy, settings)", result.to_json(),
                       file_name=f"{stem}-compare.json", mime="application/json", key="cmp_dl_json")
    st.download_button("Notebook (.ipynb)", lambda: comparison_notebook(result, dataset),
                       file_name=f"{stem}-compare.ipynb", mime="application/x-ipynb+json",
                       on_click="ignore", key="cmp_dl_ipynb",
                       help="Reruns this comparison in Jupyter with the same data, settings and seeds.")
