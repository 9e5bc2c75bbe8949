"""Streamlit entry point: navigation and the sidebar device override.

Run with ``streamlit run app.py``. Pages live in ``pages/`` and only lay out
what ``seqattn`` computes; choices travel between pages in ``st.session_state``
(keys documented in ``pages/_state.py``).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_support.state import DEVICE_KEY
from seqattn.device import available_devices

st.set_page_config(page_title="seqattn: Sequential Attention", page_icon=":material/target:", layout="wide")

ROOT = Path(__file__).resolve().parent
PAGES = [
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/data.py", "Data", ":material/folder_open:"),
    ("pages/sequential_attention.py", "Sequential Attention", ":material/target:"),
    ("pages/gene_panel.py", "Gene panel", ":material/genetics:"),
    ("pages/compare.py", "Compare", ":material/balance:"),
    ("pages/sparsity.py", "Sparsity", ":material/grid_view:"),
]

# A page whose file is not there yet (built by another issue) is left out
# instead of breaking the whole app.
navigation = st.navigation(
    [
        st.Page(path, title=title, icon=icon, default=(path == "pages/home.py"))
        for path, title, icon in PAGES
        if (ROOT / path).exists()
    ]
)

with st.sidebar:
    st.selectbox(
        "Device",
        ["auto", *available_devices()],
        key=DEVICE_KEY,
        help="Where models train. 'auto' picks CUDA, then Apple MPS, then the CPU.",
    )

navigation.run()
