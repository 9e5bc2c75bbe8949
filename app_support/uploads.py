"""An attached upload, kept in session state from the moment it is attached until it loads or fails.

Streamlit keeps an uploaded file only while its ``file_uploader`` is drawn:
switching page right after attaching (before the Data page's run that reads
it has finished) used to drop the file, and the other page then ran on the
previous data set without a word. Now the uploader's ``on_change`` callback,
which Streamlit runs at the start of the next script run whatever page that
run draws, copies the bytes into ``st.session_state[ATTACHED_KEY]`` at once,
and :func:`load_pending_upload` (called by ``app.py`` on every page but Data)
loads a file the Data page has not seen yet with the Data page's default
choices. One more case: the browser had sent the file's bytes, but the user
switched page before the uploader could tell the server about them (its
widget was gone): :func:`adopt_unclaimed_upload` keeps such a file too. Only a
file whose bytes never left the browser is beyond the server's reach. The
data set key format is the one contract with the pages (``app_support/state.py``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app_support.messages import data_page_message
from app_support.state import content_digest, note_load_failure, set_dataset
from seqattn.data import DataError, Dataset

UPLOAD_WIDGET_KEY = "data_upload"  # the Data page's file_uploader
#: The Data page's controls for one upload, keyed "<name>:<the file's digest>".
UPLOAD_CHOICE_WIDGETS = ("target", "task", "layer", "drop", "impute")
ATTACHED_KEY = "attached_upload"  # the AttachedUpload kept from it
SEEN_KEY = "upload_ids_seen"  # ids of the files this session's uploads already accounted for
TASKS = ("auto", "classification", "regression")
#: The Data page's 'Missing values' choices: label -> the loader's ``impute``.
IMPUTE_OPTIONS = {"stop with an error": None, "fill with the median": "median",
                  "fill with the most frequent value": "most_frequent",
                  "drop rows with a missing value": "drop_rows"}


@dataclass
class AttachedUpload:
    """The attached file's bytes and what became of it: ``pending`` (not read yet), ``loaded`` or ``failed``."""

    name: str
    data: bytes
    digest: str
    file_id: str = ""
    status: str = "pending"


@dataclass(frozen=True)
class UploadChoices:
    """What the Data page's controls pick for an upload (defaults: the guessed target, row-ID columns
    dropped). ``id_columns``: the columns dropped because they look like row IDs (the page says so)."""

    target: str
    task: str = "auto"
    layer: str | None = None
    impute: str | None = None
    dropped: tuple[str, ...] = ()
    id_columns: tuple[str, ...] = ()


def stash_upload() -> None:
    """``on_change`` of the uploader: keep the new file (a new file also clears the old file's messages);
    removing the file from the uploader forgets it."""
    from app_support.state import LOAD_FAILURE_KEY

    file = st.session_state.get(UPLOAD_WIDGET_KEY)
    st.session_state.pop(LOAD_FAILURE_KEY, None)
    if file is None:
        st.session_state.pop(ATTACHED_KEY, None)
        return
    data = file.getvalue()
    st.session_state[ATTACHED_KEY] = AttachedUpload(file.name, data, content_digest(data),
                                                    str(getattr(file, "file_id", "")))


def attached_upload() -> AttachedUpload | None:
    """The kept upload; also picks up a file the uploader holds that the callback did not keep."""
    file = st.session_state.get(UPLOAD_WIDGET_KEY)
    kept: AttachedUpload | None = st.session_state.get(ATTACHED_KEY)
    if file is not None and (kept is None or kept.file_id != str(getattr(file, "file_id", ""))):
        stash_upload()
    return st.session_state.get(ATTACHED_KEY)


def _session_uploads() -> dict[str, Any]:
    """This session's uploaded files (file id -> record) as Streamlit holds them; {} where that is not
    visible (only the in-memory upload manager, Streamlit's default, exposes them)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    storage = getattr(getattr(ctx, "uploaded_file_mgr", None), "file_storage", None)
    if ctx is None or not isinstance(storage, dict):
        return {}
    try:
        return dict(storage.get(ctx.session_id) or {})
    except RuntimeError:  # changed by the upload thread while copying: next run
        return {}


def adopt_unclaimed_upload() -> None:
    """Keep a file whose bytes reached this session although no uploader claimed it (the user changed page
    while it was sent); the newest such file becomes the attached, pending upload."""
    files = _session_uploads()
    seen: set[str] = st.session_state.setdefault(SEEN_KEY, set())
    kept: AttachedUpload | None = st.session_state.get(ATTACHED_KEY)
    widget = st.session_state.get(UPLOAD_WIDGET_KEY)
    claimed = seen | {kept.file_id if kept else "", str(getattr(widget, "file_id", ""))}
    unclaimed = [record for file_id, record in files.items() if file_id not in claimed]
    seen.update(files)
    if unclaimed:
        from app_support.state import LOAD_FAILURE_KEY

        record = unclaimed[-1]
        data = bytes(record.data)
        st.session_state[ATTACHED_KEY] = AttachedUpload(record.name, data, content_digest(data), record.file_id)
        st.session_state.pop(LOAD_FAILURE_KEY, None)


def forget_upload() -> None:
    """The page's Remove button: drop the kept file and its message (the current data set stays)."""
    from app_support.state import LOAD_FAILURE_KEY

    st.session_state.pop(ATTACHED_KEY, None)
    st.session_state.pop(LOAD_FAILURE_KEY, None)


@st.cache_data(show_spinner=False, max_entries=8)
def _columns_cached(digest: str, file_name: str, _data: bytes) -> dict[str, Any]:
    from seqattn.data.tables import list_columns

    return list_columns(io.BytesIO(_data), file_name=file_name)


@st.cache_resource(show_spinner="Reading the upload…", max_entries=4)
def _load_cached(digest: str, file_name: str, target: str, task: str, layer: str | None, impute: str | None,
                 dropped: tuple[str, ...], _data: bytes) -> Dataset:
    from seqattn.data.tables import load_table

    return load_table(io.BytesIO(_data), target=target, file_name=file_name, task=task, layer=layer,
                      impute=impute, drop_columns=dropped)


def upload_choice_keys() -> list[str]:
    """The session's upload-control keys (every attached file's), for :func:`app_support.shell.before_page`."""
    prefixes = tuple(f"{name}:" for name in UPLOAD_CHOICE_WIDGETS)
    return [key for key in st.session_state if str(key).startswith(prefixes)]


def upload_columns(upload: AttachedUpload) -> dict[str, Any]:
    """Columns (tables) or obs columns (h5ad) of the upload, its format and layers; ``DataError`` when the
    file cannot be used at all (checked before the page offers any control for it)."""
    info = _columns_cached(upload.digest, upload.name, upload.data)
    if not info["columns"]:
        raise DataError(f"{upload.name!r} has no columns to use as a target.")
    return info


def default_choices(upload: AttachedUpload, info: dict[str, Any]) -> UploadChoices:
    """The guessed target, and (tables) the feature columns that look like row IDs left out: kept, SA would
    pick the file's row order (wine is sorted by class). Found by loading with the guessed target: as it is,
    else with gaps filled, else without incomplete rows (a table with gaps, such as Palmer penguins, fails
    the first load but has its row IDs all the same); when every load fails, nothing is dropped and the
    failure shows with the page's controls. Worked out once per file: a load that fails is not cached, so
    the page would otherwise parse a table with gaps again on every rerun."""
    return _default_choices_cached(upload.digest, upload.name, upload, info)


@st.cache_data(show_spinner=False, max_entries=8)
def _default_choices_cached(digest: str, file_name: str, _upload: AttachedUpload, _info: dict[str, Any]
                            ) -> UploadChoices:
    from seqattn.data.guards import id_like_columns
    from seqattn.data.tables import guess_target

    upload, info = _upload, _info
    columns = [str(c) for c in info["columns"]]
    target = columns[guess_target(columns)]
    if info["format"] == "h5ad":
        from seqattn.data.h5ad import default_layer

        return UploadChoices(target=target, layer=default_layer(list(info.get("layers") or [])))
    ids: tuple[str, ...] = ()
    for impute in (None, "median", "drop_rows"):
        try:
            ids = tuple(id_like_columns(load_upload(upload, UploadChoices(target=target, impute=impute))))
            break
        except Exception:  # reported when the page loads with the user's choices
            continue
    return UploadChoices(target=target, dropped=ids, id_columns=ids)


def load_upload(upload: AttachedUpload, choices: UploadChoices) -> Dataset:
    """The upload parsed with ``choices`` (once per content and choices; shared read-only between sessions)."""
    return _load_cached(upload.digest, upload.name, choices.target, choices.task, choices.layer, choices.impute,
                        tuple(choices.dropped), upload.data)


def upload_key(upload: AttachedUpload, choices: UploadChoices) -> str:
    """The ``dataset_key`` of an upload loaded with ``choices``."""
    return (f"upload:{upload.digest}:{upload.name}:{choices.target}:{choices.task}"
            + (f":{choices.layer}" if choices.layer else "")
            + (f":impute={choices.impute}" if choices.impute else "")
            + (f":drop={','.join(choices.dropped)}" if choices.dropped else ""))


def failure_message(upload: AttachedUpload, exc: Exception, fmt: str) -> str:
    """Why the upload could not be used, in the Data page's words."""
    if isinstance(exc, DataError):
        return data_page_message(str(exc), table_controls=fmt not in ("", "h5ad"))
    return f"{type(exc).__name__}: {exc}"  # an unreadable upload must never end in a traceback


def record_outcome(upload: AttachedUpload, dataset: Dataset | None, error: str | None) -> None:
    """Note whether the upload loaded; when it did not, the current data set stays and every page says why.
    (Making a loaded upload current is the caller's: the Data page may preprocess it first.)"""
    if dataset is not None:
        upload.status = "loaded"
    else:
        note_load_failure(upload.name, error or "unknown error", source="upload")
        upload.status = "failed"


def load_pending_upload() -> None:
    """On a page other than Data: load an attached file the Data page has not read yet, with its default
    choices (the guessed target), so the page runs on it; or record why it could not be loaded."""
    upload: AttachedUpload | None = st.session_state.get(ATTACHED_KEY)
    if upload is None or upload.status != "pending":
        return
    fmt, choices, dataset, error = "", None, None, None
    try:
        info = upload_columns(upload)
        fmt = str(info["format"])
        choices = default_choices(upload, info)
        dataset = load_upload(upload, choices)
    except Exception as exc:  # reported on every page; never a traceback
        error = failure_message(upload, exc, fmt)
    record_outcome(upload, dataset, error)
    if dataset is not None and choices is not None:
        set_dataset(dataset, upload_key(upload, choices))
