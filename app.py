"""Streamlit entry point: navigation, the sidebar (menu, device override), and what runs before each page.

Run with ``streamlit run app.py``. Pages live in ``pages/`` and only lay out
what ``seqattn`` computes; choices travel between pages in ``st.session_state``
(keys documented in ``app_support/state.py``). Before each page runs, this script
restores a run or data set named in the URL (``?run=`` / ``?data=``, see
``app_support/runs.py``) and loads an upload attached just before the user
left the Data page (``app_support/uploads.py``); ``app_support/shell.py`` holds
the menu and these hooks, so a page Streamlit starts without this script
draws the same frame.
"""
from __future__ import annotations

import streamlit as st

from app_support.page_config import configure_page

configure_page()  # first, before the slow imports below: the tab's title and icon from the first paint
with st.spinner("Starting the app (loading PyTorch: a few seconds on the first visit after a restart)…"):
    from app_support.shell import PAGES, before_page, draw_frame
    from seqattn.device import fix_process_threads

    # Once per process (later runs change nothing): sessions' jobs never change process-wide thread settings.
    fix_process_threads()

pages = [st.Page(path, title=title, icon=icon, default=(path == "pages/home.py")) for path, title, icon in PAGES]
# Streamlit's own menu is off (.streamlit/config.toml: client.showSidebarNavigation = false), because
# before this script's first run it would list the pages/ folder's file names; the app draws its menu.
navigation = st.navigation(pages, position="hidden")
draw_frame()
before_page(next(path for (path, _, _), page in zip(PAGES, pages) if page is navigation))
navigation.run()
