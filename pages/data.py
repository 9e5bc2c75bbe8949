"""Data page: pick a built-in data set or upload a table, choose the target (and h5ad layer),
optionally preprocess expression data, preview it."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_support.state import (
    DATASET_ID_KEY,
    content_digest,
    current_dataset,
    keep_widget_state,
    load_builtin_cached,
    load_upload_cached,
    preprocess_cached,
    set_dataset,
    upload_columns_cached,
)
from seqattn.data.builtins import BUILTIN_DATASETS
from seqattn.data import DataError
from seqattn.data.tables import guess_target, list_columns
from seqattn.genomics import is_expression_data
from seqattn.plots.data import class_balance_figure, mean_image, preview_frame
from seqattn.server_files import allowed_folder, list_server_files, load_server_file, resolve_server_path

DEFAULT_BUILTIN = "digits"

PREPROCESS_WIDGETS = ("pp_log1p", "pp_hvg", "pp_top_genes", "pp_standardize")
IMPUTE_OPTIONS = {"stop with an error": None, "fill with the median": "median",
                  "fill with the most frequent value": "most_frequent"}
DEFAULT_TOP_GENES = 2000

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
            st.caption(f"**{base.name}** is already log-normalised: leave log1p off, or it is applied twice.")
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
        st.error(f"Preprocessing failed: {exc}")
        return base, base_key
    return dataset, f"{base_key}|pp=log1p:{int(bool(log1p))},top:{top},std:{int(bool(standardize))}"


if st.session_state.get(DATASET_ID_KEY) is None:
    # a good first data set, so the SA page works right away
    set_dataset(load_builtin_cached(DEFAULT_BUILTIN), f"builtin:{DEFAULT_BUILTIN}")

if "data_source" not in st.session_state:
    # Streamlit forgets this radio on other pages; without this, coming back after an upload
    # would show "Built-in" and replace the uploaded data (and its results) with a built-in.
    current_key = str(st.session_state.get(DATASET_ID_KEY, ""))
    st.session_state["data_source"] = ("Upload" if current_key.startswith("upload:") else
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
        st.error(str(exc))
        return None


@st.cache_resource(show_spinner="Opening the file…", max_entries=4)
def load_server_cached(relative: str, stamp: tuple, target: str, task: str, folder: str):
    """One load per (file, modification time and size, target, task); large h5ad files open backed."""
    return load_server_file(relative, Path(folder), target, task=task)


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
    files = list_server_files(folder)
    st.caption("Files in the server folder set by the administrator. Large .h5ad files open backed "
               "(rows stay on disk; Sequential Attention streams them).")
    relative = st.selectbox("File", files, index=None, placeholder="choose a file", key="server_file")
    if relative:
        try:
            resolved = resolve_server_path(relative, folder)
            columns = [str(c) for c in list_columns(str(resolved))["columns"]]
            default = guess_target(columns)
            left, middle = st.columns(2)
            target = left.selectbox("Target", columns, index=default, key=f"server_target:{relative}")
            task = middle.selectbox("Task", ["auto", "classification", "regression"], key=f"server_task:{relative}")
            stat = resolved.stat()
            dataset = load_server_cached(relative, (stat.st_mtime_ns, stat.st_size), target, task, str(folder))
        except DataError as exc:
            st.error(f"Could not use {relative}: {exc}")
        else:
            base, base_key = dataset, f"server:{relative}:{stat.st_mtime_ns}:{target}:{task}"
else:
    # any file type is accepted here: a wrong one gets a visible message below, not a silent refusal
    upload = st.file_uploader(
        "CSV, TSV, Excel (.xlsx), parquet or h5ad (AnnData)",
        help="Tables: one row per sample, one column per feature plus a target column; text columns are "
             "one-hot encoded and selected as one group each. h5ad: cells × genes, the target is an obs column "
             "(e.g. cell type).",
    )
    if upload is not None:
        data = upload.getvalue()
        digest = content_digest(data)
        try:
            info = upload_columns_cached(digest, upload.name, data)
            columns = [str(c) for c in info["columns"]]
            if not columns:
                raise DataError(f"{upload.name!r} has no columns to use as a target.")
            default = guess_target(columns)
            label = "Target (an obs column of the h5ad)" if info["format"] == "h5ad" else "Target column"
            layers = list(info.get("layers") or [])
            left, middle, right = st.columns(3) if info["format"] == "h5ad" else (*st.columns(2), None)
            target = left.selectbox(label, columns, index=default, key=f"target:{digest}")
            task = middle.selectbox("Task", ["auto", "classification", "regression"], key=f"task:{digest}")
            layer, impute, dropped = None, None, ()
            if right is not None:
                choice = right.selectbox("Matrix", ["X", *layers], key=f"layer:{digest}",
                                         help="X, one of the file's layers (e.g. raw counts), or raw (adata.raw).",
                                         disabled=not layers)
                layer = None if choice == "X" else choice
            else:  # tables: leave columns out, fill missing values
                d1, d2 = st.columns(2)
                dropped = tuple(d1.multiselect(
                    "Drop columns", [c for c in columns if c != target], key=f"drop:{digest}",
                    help="Leave out IDs, copies of the target (a 'likely leak' warning names them) or anything "
                         "you do not want selected."))
                impute_label = d2.selectbox(
                    "Missing values", list(IMPUTE_OPTIONS), key=f"impute:{digest}",
                    help="Missing feature values are an error unless filled: the median (numbers) or the most "
                         "frequent value; a '<column> (missing)' indicator joins the column's group.")
                impute = IMPUTE_OPTIONS[impute_label]
            dataset = load_upload_cached(digest, upload.name, target, task, data, layer, impute, dropped)
        except DataError as exc:
            st.error(f"Could not use {upload.name}: {exc}")
        except Exception as exc:  # an unreadable upload must never end in a traceback
            st.error(f"Could not read {upload.name} ({type(exc).__name__}): {exc}")
        else:
            base, base_key = dataset, (f"upload:{digest}:{upload.name}:{target}:{task}" + (f":{layer}" if layer else "")
                                       + (f":impute={impute}" if impute else "")
                                       + (f":drop={','.join(dropped)}" if dropped else ""))

if base is not None:
    chosen, chosen_key = base, base_key
    if is_expression_data(base):  # cells × genes
        chosen, chosen_key = preprocessing_controls(base, base_key)
    set_dataset(chosen, chosen_key)

dataset = current_dataset()
if dataset is None:
    st.stop()

st.subheader(f"Current data set: {dataset.name}")
builtin_name = builtin_of(str(st.session_state.get(DATASET_ID_KEY, "")))
description = BUILTIN_DATASETS[builtin_name][1] if builtin_name in BUILTIN_DATASETS else dataset.description
if description:
    st.caption(description)
for warning in dataset.extra.get("warnings", []):
    st.warning(warning, icon=":material/warning:")
for note in dataset.extra.get("notes", []):
    st.info(note)
if dataset.groups is not None:
    multi = [(n, len(c)) for n, c in zip(dataset.groups.names, dataset.groups.columns) if len(c) > 1]
    st.caption(f"**{dataset.n_groups} feature groups** over {dataset.n_features} columns; every method picks "
               "whole groups: " + ", ".join(f"{n} ({c} columns)" for n, c in multi[:12])
               + (" …" if len(multi) > 12 else ""))
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
