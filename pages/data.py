"""Data page: pick a built-in data set or upload a table, choose the target, preview it."""
from __future__ import annotations

import streamlit as st

from pages._state import (
    DATASET_ID_KEY,
    content_digest,
    current_dataset,
    keep_widget_state,
    load_builtin_cached,
    load_upload_cached,
    set_dataset,
    upload_columns_cached,
)
from seqattn.builtins import BUILTIN_DATASETS
from seqattn.data import DataError
from seqattn.plots.data import class_balance_figure, mean_image, preview_frame

DEFAULT_BUILTIN = "digits"
# Likely target columns, tried in this order before falling back to the last column.
TARGET_HINTS = ("target", "label", "labels", "class", "y", "cell_type", "celltype", "bulk_labels", "louvain")

st.title("Data")
keep_widget_state("data_source", "builtin_name")


def use_builtin(name: str) -> None:
    set_dataset(load_builtin_cached(name), f"builtin:{name}")


def on_builtin_change() -> None:
    use_builtin(st.session_state["builtin_name"])


if st.session_state.get(DATASET_ID_KEY) is None:
    use_builtin(DEFAULT_BUILTIN)  # a good first data set, so the SA page works right away

source = st.radio("Source", ["Built-in", "Upload"], horizontal=True, key="data_source")

if source == "Built-in":
    names = list(BUILTIN_DATASETS)
    current = str(st.session_state.get(DATASET_ID_KEY, "")).removeprefix("builtin:")
    if "builtin_name" not in st.session_state:
        st.session_state["builtin_name"] = current if current in names else DEFAULT_BUILTIN
    st.selectbox("Built-in data set", names, key="builtin_name", on_change=on_builtin_change,
                 format_func=lambda n: f"{n} — {BUILTIN_DATASETS[n][1]}")
else:
    upload = st.file_uploader(
        "CSV, TSV, parquet or h5ad (AnnData)", type=["csv", "tsv", "txt", "tab", "gz", "parquet", "pq", "h5ad"],
        help="Tables: one row per sample, one column per feature plus a target column. "
             "h5ad: cells × genes, the target is an obs column (e.g. cell type).",
    )
    if upload is not None:
        data = upload.getvalue()
        digest = content_digest(data)
        try:
            info = upload_columns_cached(digest, upload.name, data)
            columns = [str(c) for c in info["columns"]]
            if not columns:
                raise DataError(f"{upload.name!r} has no columns to use as a target.")
            lowered = [c.lower() for c in columns]
            default = next((lowered.index(h) for h in TARGET_HINTS if h in lowered), len(columns) - 1)
            label = "Target (an obs column of the h5ad)" if info["format"] == "h5ad" else "Target column"
            left, right = st.columns(2)
            target = left.selectbox(label, columns, index=default, key=f"target:{digest}")
            task = right.selectbox("Task", ["auto", "classification", "regression"], key=f"task:{digest}")
            dataset = load_upload_cached(digest, upload.name, target, task, data)
        except DataError as exc:
            st.error(f"Could not use {upload.name}: {exc}")
        except Exception as exc:  # an unreadable upload must never end in a traceback
            st.error(f"Could not read {upload.name} ({type(exc).__name__}): {exc}")
        else:
            set_dataset(dataset, f"upload:{digest}:{upload.name}:{target}:{task}")

dataset = current_dataset()
if dataset is None:
    st.stop()

st.subheader(f"Current data set: {dataset.name}")
builtin_name = str(st.session_state.get(DATASET_ID_KEY, "")).removeprefix("builtin:")
description = BUILTIN_DATASETS[builtin_name][1] if builtin_name in BUILTIN_DATASETS else dataset.description
if description:
    st.caption(description)
for note in dataset.extra.get("notes", []):
    st.info(note)
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
