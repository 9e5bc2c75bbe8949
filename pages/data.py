"""Data page: pick a built-in data set or upload a table, choose the target (and h5ad layer),
optionally preprocess expression data, preview it."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_support.messages import data_page_message
from app_support.shell import require_app_shell
from app_support.state import (
    DATASET_ID_KEY,
    current_dataset,
    keep_widget_state,
    load_builtin_cached,
    load_failure,
    note_load_failure,
    preprocess_cached,
    set_dataset,
)
from app_support.uploads import (
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
from seqattn.data.builtins import BUILTIN_DATASETS
from seqattn.data import DataError
from seqattn.data.tables import guess_target, list_columns
from seqattn.genomics import is_expression_data
from seqattn.plots.data import class_balance_figure, mean_image, preview_frame
from seqattn.safe_text import escape_markdown
from seqattn.server_files import allowed_folder, list_server_files, load_server_file, resolve_server_path

DEFAULT_BUILTIN = "digits"

PREPROCESS_WIDGETS = ("pp_log1p", "pp_hvg", "pp_top_genes", "pp_standardize")
IMPUTE_OPTIONS = {"stop with an error": None, "fill with the median": "median",
                  "fill with the most frequent value": "most_frequent"}
DEFAULT_TOP_GENES = 2000
SOURCE_OF_FAILURE = {"Upload": "upload", "File on the server": "server"}  # radio choice -> load_failure source

require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
st.title("Data")
keep_widget_state("data_source", "builtin_name", *PREPROCESS_WIDGETS)


def builtin_of(key: str) -> str:
    """The built-in name in a dataset key such as ``builtin:pbmc68k_reduced|pp=...`` ('' for uploads)."""
    return key.removeprefix("builtin:").split("|")[0] if key.startswith("builtin:") else ""


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
    return dataset, f"{base_key}|pp=log1p:{int(bool(log1p))},top:{top},std:{int(bool(standardize))}"


if st.session_state.get(DATASET_ID_KEY) is None:
    # a good first data set, so the SA page works right away
    set_dataset(load_builtin_cached(DEFAULT_BUILTIN), f"builtin:{DEFAULT_BUILTIN}")

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


@st.cache_resource(show_spinner="Opening the file…", max_entries=4)
def load_server_cached(relative: str, stamp: tuple, target: str, task: str, folder: str):
    """One load per (file, modification time and size, target, task); large h5ad files open backed."""
    return load_server_file(relative, Path(folder), target, task=task)


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
    return dataset, f"server:{relative}:{stat.st_mtime_ns}:{target}:{task}"


def upload_controls(upload: AttachedUpload, info: dict) -> UploadChoices:
    """Target, task and (h5ad) matrix or (tables) dropped columns and missing values, for a checked file."""
    columns = [str(c) for c in info["columns"]]
    default = default_choices(info)
    digest = upload.digest
    label = "Target (an obs column of the h5ad)" if info["format"] == "h5ad" else "Target column"
    layers = list(info.get("layers") or [])
    left, middle, right = st.columns(3) if info["format"] == "h5ad" else (*st.columns(2), None)
    target_key = f"target:{digest}"
    first = {} if target_key in st.session_state else {"index": columns.index(default.target)}  # else: kept choice
    target = left.selectbox(label, columns, key=target_key, **first)
    task = middle.selectbox("Task", TASKS, key=f"task:{digest}")
    if right is not None:
        choice = right.selectbox("Matrix", ["X", *layers], key=f"layer:{digest}",
                                 help="X, one of the file's layers (e.g. raw counts), or raw (adata.raw).",
                                 disabled=not layers)
        return UploadChoices(target, task, layer=None if choice == "X" else choice)
    d1, d2 = st.columns(2)
    dropped = tuple(d1.multiselect(
        "Drop columns", [c for c in columns if c != target], key=f"drop:{digest}",
        help="Leave out IDs, copies of the target (a 'likely leak' warning names them) or anything "
             "you do not want selected."))
    impute_label = d2.selectbox(
        "Missing values", list(IMPUTE_OPTIONS), key=f"impute:{digest}",
        help="Missing feature values are an error unless filled: the median (numbers) or the most "
             "frequent value; a '<column> (missing)' indicator joins the column's group.")
    return UploadChoices(target, task, impute=IMPUTE_OPTIONS[impute_label], dropped=dropped)


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
    keep_widget_state(*(f"{w}:{upload.digest}" for w in ("target", "task", "layer", "drop", "impute")))
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
    base, base_key = load_builtin_cached(name), f"builtin:{name}"
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
for warning in dataset.extra.get("warnings", []):
    st.warning(escape_markdown(warning), icon=":material/warning:")
for note in dataset.extra.get("notes", []):
    st.info(escape_markdown(note))
if dataset.groups is not None:
    multi = [(n, len(c)) for n, c in zip(dataset.groups.names, dataset.groups.columns) if len(c) > 1]
    st.caption(f"**{dataset.n_groups} feature groups** over {dataset.n_features} columns; every method picks "
               "whole groups: " + escape_markdown(", ".join(f"{n} ({c} columns)" for n, c in multi[:12])
                                                  + (" …" if len(multi) > 12 else "")))
summary = {key: value for key, value in dataset.summary().items() if key != "name"}
if not summary.get("sparse"):
    summary.pop("sparse", None)
PER_ROW = 4  # wider rows truncate values such as "classification"
items = list(summary.items())
for start in range(0, len(items), PER_ROW):
    for column, (key, value) in zip(st.columns(PER_ROW), items[start:start + PER_ROW]):
        column.metric(key, str(value))

left, right = st.columns([3, 2])
with left:
    st.markdown("**First rows** (target and up to 12 features)")
    st.dataframe(preview_frame(dataset), hide_index=True)
with right:
    st.markdown("**Class balance**" if dataset.task == "classification" else "**Target distribution**")
    st.plotly_chart(class_balance_figure(dataset), key="balance")
image = mean_image(dataset, scale_to_unit=True)
if image is not None:
    st.markdown("**Average image**")
    st.image(image, width=160, clamp=True)

st.page_link("pages/sequential_attention.py", label="Next: run Sequential Attention", icon=":material/target:")
