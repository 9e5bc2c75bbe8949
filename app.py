"""Streamlit entry point: navigation and the sidebar device override.

Run with ``streamlit run app.py``. Pages live in ``pages/`` and only lay out
what ``seqattn`` computes; choices travel between pages in ``st.session_state``
(keys documented in ``app_support/state.py``).
"""
from __future__ import annotations

import streamlit as st

from app_support.state import DEVICE_KEY
from seqattn.device import available_devices, fix_process_threads

st.set_page_config(page_title="seqattn: Sequential Attention", page_icon=":material/target:", layout="wide")
# Once per process (later runs change nothing): sessions' jobs never change process-wide thread settings.
fix_process_threads()

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

pages = [st.Page(path, title=title, icon=icon, default=(path == "pages/home.py")) for path, title, icon in PAGES]
# Streamlit's own menu is off (.streamlit/config.toml: client.showSidebarNavigation = false), because
# before this script's first run it would list the pages/ folder's file names; the app draws its menu.
navigation = st.navigation(pages, position="hidden")

with st.sidebar:
    with st.container(key="app_nav"):
        for page in pages:
            st.page_link(page)
    st.selectbox(
        "Device",
        ["auto", *available_devices()],
        key=DEVICE_KEY,
        help="Where models train. 'auto' picks CUDA, then Apple MPS, then the CPU.",
    )

navigation.run()
