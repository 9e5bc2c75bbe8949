"""The tab's title and icon, set before anything slow runs.

A server process's first run imports PyTorch and the data stack (3–7 s on a busy
2-core machine): until ``st.set_page_config`` runs the browser shows a blank white
page titled after the script ("app"). This module needs only numpy and PIL, so
``app.py`` (and a page Streamlit starts on its own, see ``app_support/shell.py``)
calls :func:`configure_page` first, then shows a spinner while the rest loads.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import streamlit as st

APP_TITLE = "seqattn: Sequential Attention"
ICON_RED = (214, 39, 40)  # the pick colour of the app's charts


@cache
def app_icon(size: int = 32):
    """The tab icon, a red target (rings and a centre dot) as a PIL image, drawn here and served by this
    server (a material-icon name made the browser fetch it from fonts.gstatic.com, which fails offline)."""
    from PIL import Image

    centre = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - centre, xx - centre) / (size / 2)
    ring = ((radius > 0.78) & (radius <= 1.0)) | ((radius > 0.42) & (radius <= 0.62)) | (radius <= 0.22)
    image = np.zeros((size, size, 4), dtype=np.uint8)
    image[ring] = (*ICON_RED, 255)
    return Image.fromarray(image, "RGBA")


def configure_page() -> None:
    """The app's tab title, icon and wide layout (the first Streamlit call of a run)."""
    st.set_page_config(page_title=APP_TITLE, page_icon=app_icon(), layout="wide")
