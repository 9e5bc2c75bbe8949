"""Sequential Attention page: settings, a background run with progress and Stop, the animation,
the step-by-step teaching view, a held-out check, pin/ban, downloads.

On expression data with cell types a run is, by default, the gene panel ``select_features`` makes (marker
pool, balanced loss, worst-served type, several runs combined); every view then speaks of runs, not
attention. The "Gene panel defaults" toggle turns it off for one plain run (the teaching mode).

Layout only: settings and their defaults live in ``app_support/sequential.py``,
job collection in ``app_support/jobs.py``, caches in ``app_support/caches.py``.
"""
from __future__ import annotations

import streamlit as st

from app_support import state
from app_support.caches import selection_held_out
from app_support.jobs import BackgroundJob, job_progress_panel, show_job_error, take_finished_job
from app_support.runs import SA_RUN_ID_KEY, keep_run, show_run_link
from app_support.sequential import (ban, changed_since_run, current_settings, default_settings, panel_caption,
                                    panel_help, remember_run_settings, run_options)
from app_support.shell import require_app_shell
from app_support.state import SA_TRACE_KEY, current_device, page_dataset
from seqattn.data import DataError, attach_preprocessing
from seqattn.data.groups import groups_of
from seqattn.evaluation.narrative import (attention_vs_greedy, budget_summary, coverage_caption, explain_trace,
                                         feature_unit, pick_warnings, picks_table_caption, stability_summary,
                                         stop_note)
from seqattn.genomics import gene_panel_applies, is_expression_data, mitochondrial_genes, ribosomal_genes
from seqattn.plots.genomics import confusion_figure
from seqattn.plots.selection import attention_vs_gain_figure, picks_table, true_gain_label
from seqattn.reproduce import reproduction_notebook
from seqattn.safe_text import escape_markdown, file_stem
from seqattn.scoring import candidate_gains
from seqattn.selectors import run_method
from seqattn.selectors.defaults import SA_MODELS
from seqattn.trace import SelectionTrace

JOB_KEY = "sa_job"  # the running BackgroundJob (not shared with other pages)
ERROR_KEY = "sa_error"  # why the last run failed
GAINS_KEY = "sa_gains"  # (trace id, step, table, rho, note) of the last teaching-view refit

require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
st.title("Sequential Attention")
dataset, dataset_key = page_dataset()
device = current_device()

# ------------------------------------------------------------------ settings
default_settings(dataset, dataset_key)

st.caption(f"**{escape_markdown(dataset.name)}**: {dataset.n_samples} samples × {dataset.n_features} features, {dataset.task}. "
           f"Device: `{device}` (change it in the sidebar).")
job: BackgroundJob | None = st.session_state.get(JOB_KEY)
running = job is not None and not job.done
unit_names = list(groups_of(dataset).names)  # features, or feature groups (picked whole)
mito_names = [unit_names[i] for i in mitochondrial_genes(unit_names)]
ribo_names = [unit_names[i] for i in ribosomal_genes(unit_names)]
panel_data = gene_panel_applies(dataset)  # cells × genes with cell types: a gene panel is the product


# Always drawn with the same arguments: an expander whose `expanded` changes between runs is drawn afresh, and
# folded shut on the first edit after a run. The user may fold it; it then stays folded.
with st.expander("Settings", expanded=True):
    if panel_data:
        st.toggle("Gene panel defaults", key="sa_panel", help=panel_help(dataset))
        if st.session_state.get("sa_panel"):
            st.caption(panel_caption(dataset, int(st.session_state["sa_k"])))
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    c1.number_input("k (feature groups to pick)" if dataset.groups is not None else "k (features to pick)",
                    min_value=1, max_value=dataset.n_groups, step=1, key="sa_k",
                    help="How many features SA selects, in addition to pinned ones.")
    c2.number_input("epochs (0 = automatic)", min_value=0, max_value=1000, step=1, key="sa_epochs",
                    help="0: train until converged — the warm-up until the validation loss stops improving, "
                         "each phase until the attention clearly separates (one pick per phase), "
                         "the phases within a shared step budget. N: exactly N epochs "
                         "(10% warm-up, then k equal phases; lengthened, with a note, when too short for k).")
    c3.number_input("hidden units", min_value=1, max_value=4096, step=1, key="sa_hidden")
    c4.number_input("learning rate", min_value=1e-5, max_value=1.0, format="%.4f", key="sa_lr")
    c5.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="sa_seed")
    c6.radio("model", list(SA_MODELS), key="sa_model",
             help="mlp: BatchNorm → Linear(hidden) → ReLU → Linear. linear: ℓ2-regularised linear model "
                  "(its picks match OMP's on least squares).")
    p1, p2 = st.columns(2)
    p1.multiselect("Pin (always selected)", unit_names, key="sa_pinned",
                   help="Pinned features start selected; SA picks k more around them.")
    p2.multiselect("Ban (never selected)", unit_names, key="sa_banned",
                   help="Banned features are never candidates, e.g. known confounders.")
    if mito_names:  # expression data with mitochondrial genes: usually quality signals, not markers
        p2.button(f"Ban mitochondrial (MT-) genes ({len(mito_names)})", key="sa_ban_mt", on_click=ban,
                  args=(mito_names,), disabled=set(mito_names) <= set(st.session_state.get("sa_banned", [])),
                  help="MT- gene counts mostly track cell stress and quality, not cell type.")
    if ribo_names:
        p2.button(f"Ban ribosomal (RPS/RPL) genes ({len(ribo_names)})", key="sa_ban_ribo", on_click=ban,
                  args=(ribo_names,), disabled=set(ribo_names) <= set(st.session_state.get("sa_banned", [])),
                  help="Ribosomal protein genes are highly expressed everywhere and track cell size and "
                       "sequencing depth more than cell type.")

run_clicked = st.button("Run Sequential Attention", type="primary", disabled=running, key="sa_run")
if run_clicked:
    k, options = run_options(dataset, device, state.MAX_TRAINING_SECONDS)
    st.session_state[JOB_KEY] = job = BackgroundJob(
        run_method, dataset, "sa", k, **options,
        meta={"dataset_key": dataset_key, "settings": current_settings()})
    running = True


def picks_so_far(job: BackgroundJob) -> None:
    picks = [m for m in list(job.messages) if m.startswith("pick")]
    if picks:
        st.caption("Picked so far: " + escape_markdown(" · ".join(picks)))


finished = take_finished_job(JOB_KEY, error_key=ERROR_KEY, what="Sequential Attention", dataset_key=dataset_key)
if finished is not None:
    attach_preprocessing(finished.result.settings, dataset)  # so the panel can be reproduced from the trace
    st.session_state[SA_TRACE_KEY] = finished.result
    st.session_state[SA_RUN_ID_KEY] = keep_run("sa", finished.result.to_dict())  # a link that outlives a restart
    remember_run_settings(finished.result, finished.meta["settings"])
elif running and job.meta["settings"].get("sa_panel") and panel_data:  # several runs side by side
    job_progress_panel(JOB_KEY, stop_key="sa_stop", text=lambda j: f"{j.message} — step {j.steps_text}",
                       stopping="Stopping after the current step; the panel is then the consensus of the picks the "
                                "runs have made so far, with the picks few runs reached flagged unstable…",
                       stop_help="Stop training: every run keeps its picks so far and the panel is their consensus.")
elif running:
    job_progress_panel(JOB_KEY, stop_key="sa_stop", details=picks_so_far,
                       text=lambda j: f"{j.message} — step {j.steps_text}",
                       stopping="Stopping after the current step; the picks so far are kept…",
                       stop_help="Stop training and keep the features picked so far.")
show_job_error(ERROR_KEY)

# ------------------------------------------------------------------ results
trace: SelectionTrace | None = st.session_state.get(SA_TRACE_KEY)
if running:
    # Old results stay hidden while a run is going: they are about to be replaced, and
    # redrawing big charts beside the live progress costs the training run CPU time.
    st.stop()
if trace is None:
    st.info("Choose settings and press **Run Sequential Attention**.")
    st.stop()

changed = changed_since_run(trace)
if changed:
    st.warning("**Out of date:** the settings changed since this run (" + escape_markdown(", ".join(changed))
               + "). The results below are from the earlier settings; press **Run Sequential Attention** to update "
               "them.", icon=":material/update:")
final = trace.steps[-1].val_metric if trace.steps else None
unit = feature_unit(dataset.n_features, dataset.image_shape, is_genes=is_expression_data(dataset))
summary = f"Selected **{trace.k}** features" + (f" (+{len(trace.pinned)} pinned)" if trace.pinned else "")
if trace.is_consensus:
    summary = f"Panel of **{trace.k}** {unit}" + (f" (+{len(trace.pinned)} pinned)" if trace.pinned else "") + \
        f", the consensus of {trace.n_runs} runs,"
if trace.steps:
    summary += f" in {trace.steps[-1].seconds:.1f} s on {trace.device}"
if final is not None:
    summary += f"; validation {trace.metric_name} {final:.3f}"
    if trace.base_metric is not None:
        summary += f" (before the first pick: {trace.base_metric:.3f})"
st.markdown(summary + ".")
show_run_link(st.session_state.get(SA_RUN_ID_KEY))
if budget_summary(trace):
    st.caption(budget_summary(trace))
if trace.is_consensus:
    st.caption(escape_markdown(" ".join(filter(None, (stability_summary(trace), coverage_caption(trace))))))
if trace.settings.get("budget_note"):  # a fixed budget too short for k phases was lengthened (warned, not refused)
    st.warning(escape_markdown(trace.settings["budget_note"]), icon=":material/schedule:")
if trace.stopped_early:  # Stop or the time limit: why, and what was kept
    st.warning(escape_markdown(stop_note(trace, unit)))
flagged = pick_warnings(trace)  # one run: its near-ties; several: the picks the runs disagree on
if flagged:
    st.warning("\n".join(f"- {escape_markdown(line)}" for line in flagged), icon=":material/balance:")
if trace.k == 0:
    st.stop()
if panel_data:  # cells × genes with cell types
    st.page_link("pages/gene_panel.py", label="Next: the gene panel per cell type, vs t-test markers",
                 icon=":material/genetics:")

figure = trace.plot(dataset)  # built once per trace (cached on it); the same figure as in a notebook

tab_anim, tab_steps, tab_table, tab_check, tab_download = st.tabs(
    ["Animation", "Step by step", "Selected features", "Held-out check", "Downloads"])

with tab_anim:
    if trace.is_consensus:
        left = (f"Left: the share of the {trace.n_runs} runs that picked each candidate — not attention, which each "
                "run has its own of (red: the panel's pick at this step; the panel's order is in the caption "
                "above). Middle: what each pick added to a small model refitted on the panel. ")
    else:
        left = ("Left: every candidate's attention score when the pick was made (red: the pick). Middle: what each "
                "pick added. ")
    st.caption("Press ▶ Play (below the chart) or drag the slider. " + left
               + ("Right: the selected pixels, numbered in pick order." if dataset.image_shape else ""))
    st.plotly_chart(figure, key="sa_animation")

with tab_table:
    st.caption(escape_markdown(picks_table_caption(trace)))
    st.dataframe(picks_table(trace), hide_index=True, key="sa_table")

with tab_steps:
    st.markdown("\n".join(f"- {escape_markdown(line)}" for line in explain_trace(trace, unit)))
    st.divider()
    if trace.is_consensus:
        st.caption("Comparing attention with the true greedy gain needs one run's attention: this panel combines "
                   f"{trace.n_runs} runs. Turn off **Gene panel defaults** in the settings for one plain run.")
    else:
        st.markdown("**Is attention a good stand-in for the true greedy gain?** Pick a step; every candidate at that "
                    "step is refitted with a small model on the features chosen before it plus the candidate.")
        s1, s2 = st.columns([3, 1])
        # keyed on k: a remembered step from a longer earlier run must not fall outside this one
        step_number = s1.slider("Step", 1, trace.k, 1, key=f"sa_teach_step_{trace.k}") if trace.k > 1 else 1
        max_candidates = s2.number_input("max candidates", 5, 500, 64, step=1, key="sa_teach_max",
                                         help="With more candidates, the best by a univariate score are refitted.")
        if dataset.groups is not None:
            st.caption("The true-gain comparison refits single columns; it is not offered for data with feature "
                       "groups.")
        elif st.button("Compute true marginal gains at this step", key="sa_teach_run"):
            t = step_number - 1
            before = list(trace.pinned) + trace.selected[:t]
            candidates = [i for i, s in enumerate(trace.steps[t].scores) if s == s]  # finite scores: the candidates
            with st.spinner(f"Refitting {min(len(candidates), int(max_candidates))} candidates…"):
                gains = candidate_gains(dataset, before, candidates, max_candidates=int(max_candidates),
                                        random_state=int(st.session_state["sa_seed"]))
            table, rho = attention_vs_greedy(trace, t, gains)
            st.session_state[GAINS_KEY] = (trace, step_number, table, rho, gains.attrs.get("note", ""))
        teaching = st.session_state.get(GAINS_KEY)
        if teaching is not None and teaching[0] is trace:
            _, shown_step, table, rho, note = teaching
            pick = trace.steps[shown_step - 1]
            st.metric(f"Spearman ρ (attention vs true gain) at step {shown_step}",
                      "undefined" if rho != rho else f"{rho:.2f}")
            if note:
                st.caption(escape_markdown(note))
            st.plotly_chart(attention_vs_gain_figure(table["name"], table["attention"], table["gain"],
                                                     picked=pick.name, gain_label=true_gain_label(dataset.task)),
                            key="sa_teach_figure")
            st.caption(f"Here the gain is the {true_gain_label(dataset.task).removeprefix('true gain ')[1:-1]} when "
                       f"the candidate is added (what greedy selection maximises); the animation's gain is the change "
                       f"in validation {trace.metric_name}.")
            st.dataframe(table, hide_index=True, key="sa_teach_table")

with tab_check:
    try:
        check = selection_held_out(dataset_key, tuple(trace.pinned) + tuple(trace.selected), dataset)
    except (DataError, ValueError) as exc:
        st.info(escape_markdown(f"No held-out check for this run: {exc}"))
    else:
        metric = check["metric"]
        h1, h2 = st.columns(2)
        h1.metric(f"Held-out {metric}, the {check['n_units']} picks" + (" (pins included)" if trace.pinned else ""),
                  f"{check['selected']:.3f}", f"{check['selected'] - check['all_features']:+.3f} vs all features")
        columns = "columns" if dataset.groups is not None else "features"  # groups: their columns, counted
        h2.metric(f"Held-out {metric}, all {check['n_all']} {columns}", f"{check['all_features']:.3f}")
        model = "logistic regression" if metric == "accuracy" else "ridge regression"
        st.caption(f"A plain {model} (features standardised on the training part) trained on {check['n_train']} "
                   f"rows and tested on {check['n_test']} other rows, the same split for both; the Gene panel page "
                   "uses the same model and split. SA chose its picks on all rows (its validation "
                   f"{trace.metric_name} above is on its own split), so this checks that the picks carry over to "
                   "a different model, not an unbiased estimate.")
        if check["confusion"] is not None:
            st.markdown("**Per class, on the held-out rows** (model on the picks)")
            st.plotly_chart(confusion_figure(check["confusion"], unit="class"), key="sa_confusion")
            st.caption("Rows: true class; columns: predicted. The diagonal is each class's recall.")

with tab_download:
    stem = f"sa_{file_stem(trace.dataset or dataset.name)}_k{trace.k}"
    st.download_button("Selected features (CSV)", trace.to_csv(), file_name=f"{stem}.csv", mime="text/csv",
                       on_click="ignore", key="sa_dl_csv")
    st.download_button("Full trace (JSON)", trace.to_json(indent=1), file_name=f"{stem}.json",
                       mime="application/json", on_click="ignore", key="sa_dl_json")
    st.download_button("Animation (HTML, works offline)",
                       lambda: figure.to_html(include_plotlyjs=True, auto_play=False),
                       file_name=f"{stem}.html", mime="text/html", on_click="ignore", key="sa_dl_html")
    st.download_button("Notebook (.ipynb)", lambda: reproduction_notebook(trace, dataset),
                       file_name=f"{stem}.ipynb", mime="application/x-ipynb+json", on_click="ignore",
                       key="sa_dl_ipynb", help="Reruns this selection in Jupyter: same data source, preprocessing, "
                                               "settings and seed (an upload's path is left to fill in).")
