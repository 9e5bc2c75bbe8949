"""Gene panel page: the SA panel per cell type (heatmap, dot plot), its held-out accuracy, how it
compares with the classic per-cell-type t-test marker ranking, the field's panel metrics (spapros's
kinds) for SA beside t-test markers and HVG; downloads.

Layout only: the read-outs come from ``seqattn.genomics`` and ``seqattn.evaluation.panels`` through the
caches in ``app_support/caches.py``.
"""
from __future__ import annotations

import streamlit as st

from app_support.caches import (confusion_table, field_metrics, held_out_accuracy, hvg_baseline, per_type_tables,
                                stability_key, stability_run, ttest_panel)
from app_support.runs import SA_RUN_ID_KEY, show_run_link
from app_support.shell import require_app_shell
from app_support.state import SA_TRACE_KEY, page_dataset
from seqattn.data import DataError
from seqattn.evaluation.narrative import (coverage_caption, stability_summary, unstable_genes_warning,
                                          unstable_rule)
from seqattn.evaluation.panels import PANEL_METRICS
from seqattn.genomics import genes_by_marked_type, is_expression_data, panel_overlap, panel_stability
from seqattn.plots.genomics import (
    confusion_figure,
    dot_plot,
    expression_heatmap,
    expression_long_frame,
    panel_frame,
    panel_genes,
    panel_metrics_frame,
    panels_side_by_side,
    per_type_recall_figure,
    stability_figure,
)
from seqattn.selectors.defaults import PER_TYPE_RULES, panel_runs
from seqattn.selectors.stability import selection_matrix
from seqattn.safe_text import escape_markdown, file_stem, to_csv
from seqattn.trace import SelectionTrace

require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
st.title("Gene panel")
dataset, dataset_key = page_dataset()
if dataset.task != "classification":
    st.info("The gene panel view needs cell types: choose a classification target (an obs column such as "
            "`cell_type`) on the **Data** page.")
    st.page_link("pages/data.py", label="Go to the Data page", icon=":material/folder_open:")
    st.stop()

if dataset.groups is not None:  # the panel's read-outs are per column (gene); SA picked whole groups here
    st.info(f"The gene panel view reads single columns (genes), and **{escape_markdown(dataset.name)}** is selected "
            "in feature groups of several columns: " + escape_markdown(dataset.groups.describe()) + ". Its picks are on "
            "the **Sequential Attention** and **Compare** pages.")
    st.page_link("pages/sequential_attention.py", label="Go to Sequential Attention", icon=":material/target:")
    st.stop()

trace: SelectionTrace | None = st.session_state.get(SA_TRACE_KEY)
if trace is None or trace.feature_names != list(dataset.feature_names):
    st.info("No Sequential Attention panel for this data set yet: run **Sequential Attention** first "
            "(pin known markers or ban MT- / ribosomal genes there), then come back here.")
    st.page_link("pages/sequential_attention.py", label="Go to Sequential Attention", icon=":material/target:")
    st.stop()
genes = panel_genes(trace)
if not genes:
    st.info("The last run picked no genes (stopped before the first pick). Run Sequential Attention again.")
    st.stop()

if not is_expression_data(dataset):
    st.info("This page is built for gene expression (cells × genes, e.g. an `.h5ad` or `pbmc68k_reduced`). "
            f"**{escape_markdown(dataset.name)}** is not expression data, so read *genes* as features and *cell types* as classes.")
described = f"**{len(genes)}-gene panel** from Sequential Attention on **{escape_markdown(dataset.name)}** " \
            f"({dataset.n_samples} cells × {dataset.n_features} genes, {dataset.n_classes} cell types)"
details = []
if trace.pinned:
    details.append(f"{len(trace.pinned)} pinned")
if trace.banned:
    details.append(f"{len(trace.banned)} banned")
if trace.stopped_early:
    details.append("stopped early")
st.markdown(described + (f" — {', '.join(details)}" if details else "") + ".")
show_run_link(st.session_state.get(SA_RUN_ID_KEY))  # the panel comes back with its SA run
record = trace.settings.get("preprocessing") or dataset.extra.get("preprocessing")
if record:
    steps = [s for s, on in (("log1p", record.get("log1p")), (f"top {record.get('top_genes')} variable genes",
                                                                record.get("top_genes")),
                             ("per-gene standardisation", record.get("standardize"))) if on]
    st.caption("Preprocessing: " + (" → ".join(steps) if steps else "none") + ". Expression below is on the "
               "preprocessed values.")

# ------------------------------------------------------------------ the panel and its stability
CHECK_RUNS = panel_runs(trace.k)
stable: SelectionTrace | None = trace if trace.n_runs is not None else None
run_key = stability_key(trace)
if stable is None and st.session_state.get("gp_stability_for") == run_key:
    try:
        with st.spinner(f"Sequential Attention {CHECK_RUNS} times with other seeds, trained side by side…"):
            stable = stability_run(dataset_key, run_key, CHECK_RUNS, trace, dataset)
    except (DataError, ValueError) as exc:
        st.error(escape_markdown(f"Could not run the stability check: {exc}"))
stability = None if stable is None or stable is trace else panel_stability(genes, stable)

st.subheader("Panel")
panel = panel_frame(trace, stability)
KEPT_HELP = ("Share of the consensus panels rebuilt from the runs resampled (with replacement) that keep this gene: "
             "how often another seed's panel would.")
UNSTABLE_HELP = unstable_rule(stable.n_runs if stable else CHECK_RUNS).capitalize() + ": another seed may well swap it."
st.dataframe(panel, hide_index=True, key="gp_panel",
             column_config={"score": st.column_config.NumberColumn(format="%.4g"),
                            "marginal_gain": st.column_config.NumberColumn(format="%.4g"),
                            "kept": st.column_config.NumberColumn(format="percent", help=KEPT_HELP),
                            "unstable": st.column_config.CheckboxColumn(help=escape_markdown(UNSTABLE_HELP))})
if trace.settings.get("coverage") in PER_TYPE_RULES:
    st.caption(escape_markdown(coverage_caption(trace)))
if stable is None:
    st.caption("One run: these picks have not been checked against other seeds. On pbmc68k_reduced two seeds "
               "share only about half of a 20-gene panel.")
    if st.button(f"Check stability over {CHECK_RUNS} runs", key="gp_check_stability",
                 help=f"Runs SA again with the same k, pins, bans and settings and {CHECK_RUNS} other seeds, and "
                      "shows in how many of them each panel gene is picked and how often a panel rebuilt from them "
                      "resampled keeps it (about a minute on pbmc68k_reduced)."):
        st.session_state["gp_stability_for"] = run_key
        st.rerun()
else:
    flagged = int(panel["unstable"].sum())
    if stable is trace:
        st.caption(escape_markdown(stability_summary(trace)))
    else:
        st.caption(f"Stability check: {stable.n_runs} further runs with the same settings and other seeds; "
                   "\"picked in\" counts the runs that picked each gene of this panel, \"kept\" the share of "
                   "consensus panels rebuilt from those runs resampled that hold it.")
    if flagged:
        unstable_rows = panel[panel["unstable"]]
        st.warning(escape_markdown(unstable_genes_warning(
            list(unstable_rows["gene"]), list(unstable_rows["picked in"]), list(unstable_rows["kept"]), len(genes),
            stable.n_runs)))
    with st.expander("Stability view: which runs picked which genes"):
        names, matrix = selection_matrix(stable, [trace.feature_names.index(g) for g in genes[len(trace.pinned):]]
                                         if stable is not trace else None)
        st.plotly_chart(stability_figure(names, matrix, len(genes) - len(trace.pinned)), key="gp_stability")

# ------------------------------------------------------------ per cell type
st.subheader("Per cell type")
try:
    mean_table, fraction_table = per_type_tables(dataset_key, tuple(genes), dataset)
except DataError as exc:
    st.error(escape_markdown(f"Could not summarise the panel per cell type: {exc}"))
    st.stop()
markers = genes_by_marked_type(mean_table)
t1, t2 = st.columns(2)
scale = t1.toggle("Scale each gene to 0–1 across cell types", key="gp_scale",
                  help="Genes differ a lot in overall level; scaling shows where each gene is highest.")
by_type = t2.toggle("Order genes by the cell type they mark", key="gp_order", value=True,
                    help="Each gene is placed under the cell type with its highest mean expression, most specific "
                         "first, so markers form a diagonal; off: panel (pick) order.")
gene_order = markers["gene"].tolist() if by_type else None
centered = bool(record and record.get("standardize") and record.get("centered"))
tab_dots, tab_heat, tab_table = st.tabs(["Dot plot", "Heatmap", "Table"])
with tab_dots:
    st.caption("Dot size: share of the cell type's cells with expression above zero"
               + (" (after centring: above the gene's mean)" if centered else "")
               + ". Colour: mean expression.")
    st.plotly_chart(dot_plot(mean_table, fraction_table, scale_per_gene=scale, gene_order=gene_order),
                    key="gp_dotplot")
with tab_heat:
    st.caption("Mean expression of each panel gene (columns, in panel order) per cell type (rows).")
    st.plotly_chart(expression_heatmap(mean_table, scale_per_gene=scale), key="gp_heatmap")
with tab_table:
    st.markdown("**Which cell type each gene marks** (highest mean; specificity = lead over the next type, in "
                "units of the gene's spread across types)")
    st.dataframe(markers, hide_index=True, key="gp_markers",
                 column_config={"specificity": st.column_config.NumberColumn(format="%.2f")})
    st.dataframe(mean_table, key="gp_mean_table")

# -------------------------------------------------- accuracy and t-test markers
st.subheader("Held-out accuracy, and SA versus t-test markers")
try:
    with st.spinner("Per-cell-type t-tests and held-out classifiers…"):
        ttest = ttest_panel(dataset_key, trace.k, tuple(trace.pinned), tuple(trace.banned), dataset)
        sa_accuracy = held_out_accuracy(dataset_key, tuple(genes), True, dataset)
        ttest_accuracy = held_out_accuracy(dataset_key, tuple(panel_genes(ttest)), False, dataset)
except (DataError, ValueError) as exc:
    st.error(escape_markdown(f"Could not compute the accuracies / t-test markers: {exc}"))
    st.stop()

all_accuracy = sa_accuracy["all_genes_accuracy"]
a1, a2, a3 = st.columns(3)
a1.metric(f"SA panel ({sa_accuracy['n_panel']} genes)", f"{sa_accuracy['panel_accuracy']:.3f}",
          f"{sa_accuracy['panel_accuracy'] - all_accuracy:+.3f} vs all genes")
a2.metric(f"t-test panel ({ttest_accuracy['n_panel']} genes)", f"{ttest_accuracy['panel_accuracy']:.3f}",
          f"{ttest_accuracy['panel_accuracy'] - all_accuracy:+.3f} vs all genes")
a3.metric(f"All genes ({sa_accuracy['n_all']})", f"{all_accuracy:.3f}")
st.caption(f"Held-out accuracy of logistic regression (genes standardised on the training part), trained on "
           f"{sa_accuracy['n_train']} cells and tested on {sa_accuracy['n_test']} other cells; the same stratified "
           "split for every panel. The t-test panel: per-cell-type Welch t-test (type vs rest), cell types take "
           "turns, same k, pins and bans as the SA run.")

st.markdown("**Per cell type: which types the SA panel tells apart** (held-out cells, same split and model)")
try:
    confusion = confusion_table(dataset_key, tuple(genes), dataset)
except (DataError, ValueError) as exc:
    st.error(escape_markdown(f"Could not compute the per-cell-type accuracy: {exc}"))
else:
    st.plotly_chart(confusion_figure(confusion), key="gp_confusion")
    st.caption("Rows: true cell type; columns: predicted. The diagonal is each type's accuracy (recall).")

overlap = panel_overlap(trace.selected_names, ttest.selected_names)  # pinned genes are in both by construction
o1, o2 = st.columns(2)
o1.metric("Genes in both panels (picks)", f"{len(overlap['shared'])} of {trace.k}")
o2.metric("Jaccard overlap", f"{overlap['jaccard']:.2f}")
st.markdown("**Shared:** " + (escape_markdown(", ".join(overlap["shared"])) or "none"))
st.dataframe(panels_side_by_side(trace.selected_names, ttest.selected_names), hide_index=True, key="gp_side")

# ------------------------------------------------- the field's panel metrics
st.subheader("Panel quality as the field measures it")
st.caption("The kinds of metric spapros's evaluator reports, on the held-out cells of the split above: "
           "classification (logistic regression and boosted trees), kNN-graph overlap and Leiden cluster "
           "similarity against all genes, redundancy among the panel's genes. All three panels have the same size "
           "(pinned genes included) and were chosen on all cells, so the held-out cells were seen during selection; "
           "`benchmarks/bench_panels.py` selects on training cells only.")
sa_panel = tuple(genes)
ttest_full = tuple(panel_genes(ttest))
hvg = tuple(hvg_baseline(dataset_key, len(genes), tuple(trace.pinned), tuple(trace.banned), dataset))
panel_names = ("SA", "t-test markers", "HVG")
try:
    with st.spinner("Held-out classifiers, kNN graphs and Leiden clusterings for three panels…"):
        quality = field_metrics(dataset_key, tuple(zip(panel_names, (sa_panel, ttest_full, hvg))), dataset)
except (DataError, ValueError) as exc:
    st.error(escape_markdown(f"Could not compute the panel metrics: {exc}"))
else:
    if quality.attrs.get("structure_skipped"):
        st.info(escape_markdown(quality.attrs["structure_skipped"] + " Only the classification and redundancy "
                                "metrics are shown; a data set with more cells per split gets all of them."))
    st.dataframe(panel_metrics_frame(quality, panel_names), hide_index=True, key="gp_quality",
                 column_config={name: st.column_config.NumberColumn(format="%.3f") for name in panel_names})
    st.markdown("**Held-out recall per cell type** (logistic regression; no visible bar: a recall of 0)")
    st.plotly_chart(per_type_recall_figure(quality, "recall_logreg", panel_names), key="gp_recall")
    st.caption(f"Trained on {quality.attrs['n_train']} cells, tested on {quality.attrs['n_test']}; rare types "
               "have only a few held-out cells, so their recall moves in large steps. HVG: the "
               f"{len(genes) - len(trace.pinned)} highest-variance genes (after the pinned ones). "
               + " ".join(f"*{label}*: {meaning}." for label, _, meaning in
                          (PANEL_METRICS[m] for m in ("knn_overlap", "cluster_nmi", "mean_abs_correlation"))))

# ------------------------------------------------------------------ downloads
st.subheader("Downloads")
stem = f"panel_{file_stem(trace.dataset or dataset.name)}_k{trace.k}"
d1, d2, d3 = st.columns(3)
d1.download_button("Panel (CSV)", to_csv(panel), file_name=f"{stem}.csv", mime="text/csv",
                   on_click="ignore", key="gp_dl_panel")
d2.download_button("Trace (JSON)", lambda: trace.to_json(indent=1), file_name=f"{stem}_trace.json",
                   mime="application/json", on_click="ignore", key="gp_dl_trace")
d3.download_button("Per-cell-type expression (CSV)", to_csv(expression_long_frame(mean_table, fraction_table)),
                   file_name=f"{stem}_by_type.csv", mime="text/csv",
                   on_click="ignore", key="gp_dl_types")
