"""The app's frame (menu, device selector) and what runs before every page, for ``app.py`` and for a page
that Streamlit started without ``app.py``.

Streamlit treats ``pages/`` next to ``app.py`` as a legacy multipage app until
``app.py`` has called ``st.navigation`` once in the server process. On a fresh
server a first visit to ``/data`` therefore ran ``pages/data.py`` alone: no
menu, no device selector, no restore from the URL, until someone opened
``/``. Every page's first call, :func:`require_app_shell`, notices that case,
draws the same frame and runs the same hooks as ``app.py`` (:func:`draw_frame`,
:func:`before_page`), and switches the process to ``app.py``'s navigation for
the runs that follow (what ``st.navigation``'s first call does). It does not
rerun: a rerun would drop the click that started this run.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_support.state import DEVICE_KEY
from seqattn.device import available_devices

#: The app's pages, in menu order: (file, title, icon). Helpers live in ``app_support/``,
#: so every file in ``pages/`` is one of these.
PAGES = [
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/data.py", "Data", ":material/folder_open:"),
    ("pages/sequential_attention.py", "Sequential Attention", ":material/target:"),
    ("pages/gene_panel.py", "Gene panel", ":material/genetics:"),
    ("pages/compare.py", "Compare", ":material/balance:"),
    ("pages/sparsity.py", "Sparsity", ":material/grid_view:"),
    ("pages/structured_pruning.py", "Structured pruning", ":material/content_cut:"),
]
DATA_PAGE = "pages/data.py"


def draw_frame() -> None:
    """The sidebar: the app's menu and the device selector."""
    with st.sidebar:
        with st.container(key="app_nav"):
            for path, title, icon in PAGES:
                st.page_link(path, label=title, icon=icon)
        st.selectbox(
            "Device",
            ["auto", *available_devices()],
            key=DEVICE_KEY,
            help="Where models train. 'auto' picks CUDA, then Apple MPS, then the CPU.",
        )


def before_page(page_path: str) -> None:
    """Before a page runs: the other pages' settings are kept, a link's run or data set comes back (once per
    session), an upload attached just before the user left the Data page is kept (even one no uploader
    claimed) and loaded now, the URL names the current data set."""
    from app_support import compare, sequential, sparsity, structured
    from app_support.runs import restore_from_url, show_restore_notice, sync_url
    from app_support.state import DATA_WIDGETS, GENE_PANEL_WIDGETS, keep_widget_state
    from app_support.uploads import adopt_unclaimed_upload, load_pending_upload, upload_choice_keys

    # Streamlit drops a widget's value at the end of every run that does not draw it: without this, a visit
    # to another page emptied Compare's methods (then "Choose at least one method") and reset SA's k to 1.
    keep_widget_state(*DATA_WIDGETS, *sequential.WIDGETS, *compare.WIDGETS, *GENE_PANEL_WIDGETS, *sparsity.WIDGETS,
                      *structured.WIDGETS,
                      *upload_choice_keys())
    restore_from_url()
    show_restore_notice()
    adopt_unclaimed_upload()
    if page_path != DATA_PAGE:
        load_pending_upload()
    sync_url()


def require_app_shell(page_file: str) -> None:
    """First call of every page (``require_app_shell(__file__)``): the frame and hooks when Streamlit ran
    this page without ``app.py`` (see the module docstring); nothing otherwise."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if not PagesManager.uses_pages_directory:
        return  # app.py ran first and did all this
    PagesManager.uses_pages_directory = False  # as st.navigation's first call does: later runs go through app.py
    from app_support.page_config import configure_page

    configure_page()
    ctx = get_script_run_ctx()
    with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):  # the same widget ids as in app.py
        draw_frame()
        before_page(f"pages/{Path(page_file).name}")
