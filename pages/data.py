"""Data page: pick a built-in data set or upload a table, choose the target (and h5ad layer), the columns
to leave out and what to do with missing values, optionally preprocess expression data, see what was
read (a per-column summary) and preview it.

Layout only: uploads are read in ``app_support/uploads.py``, dataset keys are built in
``app_support/state.py``, the views come from ``seqattn.plots.data``.
"""
from __future__ import annotations

import streamlit as st

from app_support.messages import data_page_message
from app_support.shell import require_app_shell
from app_support.state import (
    DATASET_ID_KEY,
    DEFAULT_BUILTIN,
    builtin_key,
    builtin_of,
    current_dataset,
    load_builtin_cached,
    load_failure,
    load_server_cached,
    note_load_failure,
    preprocess_cached,
    preprocessed_key,
    server_key,
    set_dataset,
    use_default_dataset,
)
from app_support.uploads import (
    IMPUTE_OPTIONS,
    TASKS,
    UPLOAD_WIDGET_KEY,
    AttachedUpload,
    UploadChoices,
    attached_upload,
    default_choices,
    failure_message,
    forget_upload,
    load_upload,
    record_outcome,
    stash_upload,
    upload_columns,
    upload_key,
)
from seqattn.data import DataError
from seqattn.data.builtins import BUILTIN_DATASETS
from seqattn.data.guards import id_like_columns
from seqattn.data.tables import guess_target, list_columns
from seqattn.genomics import is_expression_data
from seqattn.plots.data import class_balance_figure, column_table, mean_image, styled_preview
from seqattn.safe_text import escape_markdown
from seqattn.server_files import allowed_folder, list_server_files, resolve_server_path

DEFAULT_TOP_GENES = 2000
SOURCE_OF_FAILURE = {"Upload": "upload", "File on the server": "server"}  # radio choice -> load_failure source

require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
st.title("Data")


def preprocessing_controls(base, base_key: str):
    """log1p / top-N variable genes / per-gene scaling for expression data; returns (dataset, key)."""
    if st.session_state.get("pp_top_genes", base.n_features + 1) > base.n_features:
        # first visit, or a value chosen for a larger data set
        st.session_state["pp_top_genes"] = min(DEFAULT_TOP_GENES, base.n_features)
    with st.expander("Preprocessing (gene expression)", expanded=False):
        st.caption("Applied in this order: log1p → keep the most variable genes → per-gene standardisation. "
                   "The choice is recorded in the Sequential Attention trace.")
        if base.extra.get("log_normalised"):
            st.caption(f"**{escape_markdown(base.name)}** is already log-normalised: leave log1p off, or it is "
                       "applied twice.")
        c1, c2, c3 = st.columns(3)
        log1p = c1.checkbox("log1p", key="pp_log1p", help="log(1 + x): for raw counts. Needs non-negative values.")
        hvg = c2.checkbox("Keep the most variable genes only", key="pp_hvg",
                          help="Variance after log1p (if on); a smaller gene set trains faster.")
        top_genes = c2.number_input("number of genes", min_value=1, max_value=base.n_features,
                                    step=100, key="pp_top_genes",
                                    disabled=not hvg)
        standardize = c3.checkbox("Standardise each gene", key="pp_standardize",
                                  help="Mean 0, variance 1 per gene (large sparse data: scaled, not centred).")
    top = int(top_genes) if hvg else None
    if not (log1p or top or standardize):
        return base, base_key
    try:
        dataset = preprocess_cached(base_key, bool(log1p), top, bool(standardize), base)
    except DataError as exc:
        st.error(escape_markdown(f"Preprocessing failed: {exc}"))
        return base, base_key
    return dataset, preprocessed_key(base_key, bool(log1p), top, bool(standardize))


if st.session_state.get(DATASET_ID_KEY) is None:
    use_default_dataset()  # a good first data set, so the SA page works right away

if "data_source" not in st.session_state:
    # Streamlit forgets this radio on other pages; without this, coming back after an upload (loaded or
    # not) would show "Built-in" and replace the uploaded data (and its results) with a built-in.
    current_key = str(st.session_state.get(DATASET_ID_KEY, ""))
    st.session_state["data_source"] = ("Upload" if current_key.startswith("upload:") or attached_upload() else
                                       "File on the server" if current_key.startswith("server:") else "Built-in")


def server_folder():
    """The admin-configured folder for 'File on the server' (env var or secret), else None."""
    try:
        secrets = dict(st.secrets)
    except Exception:  # no secrets file: the feature stays off unless the env var is set
        secrets = {}
    try:
        return allowed_folder(secrets)
    except DataError as exc:
        st.error(escape_markdown(str(exc)))
        return None


def server_file_source(folder):
    """'File on the server': pick a file and its target; returns (dataset, key) or (None, "")."""
    files = list_server_files(folder)
    st.caption("Files in the server folder set by the administrator. Large .h5ad files open backed "
               "(rows stay on disk; Sequential Attention streams them).")
    relative = st.selectbox("File", files, index=None, placeholder="choose a file", key="server_file")
    if not relative:
        return None, ""
    try:
        resolved = resolve_server_path(relative, folder)
        columns = [str(c) for c in list_columns(str(resolved))["columns"]]
        left, middle = st.columns(2)
        target = left.selectbox("Target", columns, index=guess_target(columns), key=f"server_target:{relative}")
        task = middle.selectbox("Task", TASKS, key=f"server_task:{relative}")
        stat = resolved.stat()
        dataset = load_server_cached(relative, (stat.st_mtime_ns, stat.st_size), target, task, str(folder))
    except DataError as exc:
        note_load_failure(relative, data_page_message(str(exc), table_controls=False), source="server")
        return None, ""
    return dataset, server_key(relative, stat.st_mtime_ns, target, task)


def drop_column(widget_key: str, column: str) -> None:
    """A warning's "Drop" button: add ``column`` to the 'Drop columns' choice."""
    chosen = list(st.session_state.get(widget_key, []))
    st.session_state[widget_key] = chosen + ([column] if column not in chosen else [])


def upload_controls(upload: AttachedUpload, info: dict) -> UploadChoices:
    """Target, task and (h5ad) matrix or (tables) dropped columns and missing values, for a checked file.
    Row-ID columns start in 'Drop columns' (the page says so); the user may keep them."""
    columns = [str(c) for c in info["columns"]]
    default = default_choices(upload, info)
    digest = upload.digest
    label = "Target (an obs column of the h5ad)" if info["format"] == "h5ad" else "Target column"
    layers = list(info.get("layers") or [])
    left, middle, right = st.columns(3) if info["format"] == "h5ad" else (*st.columns(2), None)
    target_key, drop_key = f"target:{digest}", f"drop:{digest}"
    first = {} if target_key in st.session_state else {"index": columns.index(default.target)}  # else: kept choice
    target = left.selectbox(label, columns, key=target_key, **first)
    task = middle.selectbox("Task", TASKS, key=f"task:{digest}")
    if right is not None:
        layer_key, matrices = f"layer:{digest}", ["X", *layers]
        first = {} if layer_key in st.session_state else {"index": matrices.index(default.layer or "X")}
        choice = right.selectbox("Matrix", matrices, key=layer_key, disabled=not layers, **first,
                                 help="X, one of the file's layers (e.g. raw counts), or raw (adata.raw; the "
                                      "default when the file has it, as in scanpy's marker tools).")
        return UploadChoices(target, task, layer=None if choice == "X" else choice)
    if drop_key not in st.session_state:
        st.session_state[drop_key] = list(default.dropped)
    st.session_state[drop_key] = [c for c in st.session_state[drop_key] if c != target]  # a new target stays
    d1, d2 = st.columns(2)
    dropped = tuple(d1.multiselect(
        "Drop columns", [c for c in columns if c != target], key=drop_key,
        help="Leave out IDs, copies of the target (a 'likely leak' warning names them) or anything "
             "you do not want selected."))
    impute_label = d2.selectbox(
        "Missing values", list(IMPUTE_OPTIONS), key=f"impute:{digest}",
        help="Missing values are an error unless you choose: fill a feature's gaps with its median (numbers) "
             "or most frequent value, adding a '<column> (missing)' indicator to its group; or drop every row "
             "with a missing value (the target's included).")
    kept_ids = [c for c in default.id_columns if c in dropped]
    if kept_ids:
        d1.caption("Left out by default: " + escape_markdown(", ".join(kept_ids)) + " — a different whole number "
                   "in every row, i.e. a row number or ID. Kept, Sequential Attention would pick the file's row "
                   "order (which can follow the target). Remove it above to keep it.")
    return UploadChoices(target, task, impute=IMPUTE_OPTIONS[impute_label], dropped=dropped,
                         id_columns=default.id_columns)


def upload_source():
    """'Upload': the attached file is checked before any control is offered, then loaded with the
    controls' choices; returns (dataset, key) or (None, "") (a failure is recorded for the page)."""
    # any file type is accepted here: a wrong one gets a visible message below, not a silent refusal
    st.file_uploader(
        "CSV, TSV, Excel (.xlsx), parquet or h5ad (AnnData)", key=UPLOAD_WIDGET_KEY, on_change=stash_upload,
        help="Tables: one row per sample, one column per feature plus a target column; text columns are "
             "one-hot encoded and selected as one group each. h5ad: cells × genes, the target is an obs column "
             "(e.g. cell type).",
    )
    upload = attached_upload()
    current_key = str(st.session_state.get(DATASET_ID_KEY, ""))
    if upload is None:
        if current_key.startswith("upload:"):
            st.caption("The data set below was uploaded earlier (kept on the server); attach a file to use "
                       "another one.")
        return None, ""
    if st.session_state.get(UPLOAD_WIDGET_KEY) is None:  # attached before the user visited another page
        c1, c2 = st.columns([4, 1])
        c1.caption(f"Attached: **{escape_markdown(upload.name)}** ({len(upload.data) / 1024:,.0f} KiB), kept while "
                   "you use other pages. Attach another file to replace it.")
        c2.button("Remove", key="data_forget_upload", on_click=forget_upload)
    fmt, choices, dataset, error = "", None, None, None
    try:
        info = upload_columns(upload)  # checked first (type, binary content, header): no controls for junk
        fmt = str(info["format"])
        choices = upload_controls(upload, info)
        dataset = load_upload(upload, choices)
    except Exception as exc:  # DataError in the page's words; anything else as its type and text
        error = failure_message(upload, exc, fmt)
    record_outcome(upload, dataset, error)
    return (None, "") if dataset is None or choices is None else (dataset, upload_key(upload, choices))


folder = server_folder()
sources = ["Built-in", "Upload"] + (["File on the server"] if folder is not None else [])
if st.session_state.get("data_source") not in sources:
    st.session_state["data_source"] = "Built-in"
source = st.radio("Source", sources, horizontal=True, key="data_source")
base, base_key = None, ""

if source == "Built-in":
    names = list(BUILTIN_DATASETS)
    current = builtin_of(str(st.session_state.get(DATASET_ID_KEY, "")))
    if "builtin_name" not in st.session_state:
        st.session_state["builtin_name"] = current if current in names else DEFAULT_BUILTIN
    name = st.selectbox("Built-in data set", names, key="builtin_name",
                        format_func=lambda n: f"{n} — {BUILTIN_DATASETS[n][1]}")
    base, base_key = load_builtin_cached(name), builtin_key(name)
elif source == "File on the server":
    base, base_key = server_file_source(folder)
else:
    base, base_key = upload_source()

failure = load_failure()
if base is None and failure is not None and failure.get("source") == SOURCE_OF_FAILURE.get(source):
    # The failed file is not the data set: say so plainly, and show nothing of the data set still in use
    # (its preview, notes and warnings would read as if they were about the file just chosen).
    st.error(escape_markdown(f"Could not use {failure['name']}: {failure['message']}"))
    in_use = st.session_state.get("dataset")
    st.info(f"**{escape_markdown(failure['name'])} was not loaded.** "
            + (f"The data set in use is still **{escape_markdown(in_use.name)}**: the other pages work on it "
               "until a file loads." if in_use is not None else "No data set is in use yet."),
            icon=":material/info:")
    st.stop()

if base is not None:
    chosen, chosen_key = base, base_key
    if is_expression_data(base):  # cells × genes
        chosen, chosen_key = preprocessing_controls(base, base_key)
    set_dataset(chosen, chosen_key)

dataset = current_dataset(say_failed_load=False)
if dataset is None:
    st.stop()

st.subheader(f"Current data set: {escape_markdown(dataset.name)}")
builtin_name = builtin_of(str(st.session_state.get(DATASET_ID_KEY, "")))
description = BUILTIN_DATASETS[builtin_name][1] if builtin_name in BUILTIN_DATASETS else dataset.description
if description:
    st.caption(escape_markdown(description))
upload = attached_upload() if source == "Upload" else None
drop_key = f"drop:{upload.digest}" if upload is not None else ""
row_ids = set(id_like_columns(dataset)) if drop_key and drop_key in st.session_state else set()
for warning in dataset.extra.get("warnings", []):
    st.warning(escape_markdown(warning), icon=":material/warning:")
    named = next((c for c in row_ids if warning.startswith(f"looks like a row ID: {c} — ")), None)
    if named is not None:  # the Drop control, one click away
        st.button(f"Drop {named}", key=f"data_drop_id:{named}", on_click=drop_column, args=(drop_key, named),
                  help="Adds it to 'Drop columns' above.")
for note in dataset.extra.get("notes", []):
    st.info(escape_markdown(note))
if dataset.groups is not None:
    st.caption(f"**{dataset.n_groups} feature groups** over {dataset.n_features} columns; every method picks "
               "whole groups: " + escape_markdown(dataset.groups.describe()))
summary = {key: value for key, value in dataset.summary().items() if key != "name"}
if not summary.get("sparse"):
    summary.pop("sparse", None)
PER_ROW = 4  # wider rows truncate values such as "classification"
items = list(summary.items())
for start in range(0, len(items), PER_ROW):
    for column, (key, value) in zip(st.columns(PER_ROW), items[start:start + PER_ROW]):
        column.metric(key, str(value))

columns_read = column_table(dataset)
if columns_read is not None:
    with st.expander(f"Columns as read, before encoding ({len(columns_read)})", expanded=len(columns_read) <= 40):
        st.dataframe(columns_read, hide_index=True, key="data_columns")
        st.caption("type: as read from the file; missing: empty cells; distinct: different values (empty cells "
                   "not counted); role: what the data set does with the column. A text column becomes one "
                   "feature group of 0/1 columns, one per value.")

left, right = st.columns([3, 2])
with left:
    st.markdown("**Preview** (row number in the data set, target and up to 12 features)")
    st.dataframe(styled_preview(dataset), hide_index=True, key="data_preview")
    if dataset.extra.get("impute") in ("median", "most_frequent"):
        st.caption("Shaded cells were empty in the file and filled in ('Missing values'); the preview shows "
                   "some of those rows first.")
with right:
    st.markdown("**Class balance**" if dataset.task == "classification" else "**Target distribution**")
    st.plotly_chart(class_balance_figure(dataset), key="balance")
image = mean_image(dataset, scale_to_unit=True)
if image is not None:
    st.markdown("**Average image**")
    st.image(image, width=160, clamp=True)

st.page_link("pages/sequential_attention.py", label="Next: run Sequential Attention", icon=":material/target:")
