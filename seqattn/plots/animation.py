"""Play / Pause buttons and a frame slider for every plotly animation (SA's picks, SA++ block masks,
structured unit masks): one layout, placed in pixels.

The buttons sit on their own row ``below_px`` under the plot area, past what
the figure draws there (tick labels, the x-axis title), and the full-width
slider on a row beneath, so the buttons never cover the axis title nor the
slider's first steps. Positions are in pixels, converted to paper
coordinates (fractions of the plot area's height) from a plot area of fixed
height: paper offsets alone move the rows with the plot's height, into the
tick labels of a short plot.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The button row (the buttons and the gap beneath them) and the slider row (slider, its labels, a margin).
BUTTON_ROW_PX, SLIDER_ROW_PX = 50, 80


def play_controls(frame_names: Sequence[str], *, plot_px: int, top_px: int, below_px: int,
                  prefix: str = "snapshot ", frame_ms: int = 700) -> dict[str, Any]:
    """``height``, ``margin`` (t, b), ``updatemenus`` and ``sliders`` for ``fig.update_layout``.

    ``plot_px`` is the plot area's height (all subplots), ``top_px`` the top margin, ``below_px`` the
    room the figure's own labels take under the plot area; the figure's height follows. Slider step
    ``i`` shows frame ``frame_names[i]`` and is labelled ``i + 1``.
    """
    bottom_px = below_px + BUTTON_ROW_PX + SLIDER_ROW_PX
    still = {"frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}, "mode": "immediate"}
    return {
        "height": top_px + plot_px + bottom_px,
        "margin": {"t": top_px, "b": bottom_px},
        "updatemenus": [{
            "type": "buttons", "showactive": False, "direction": "left", "x": 0.0, "xanchor": "left",
            "y": -below_px / plot_px, "yanchor": "top", "pad": {"t": 0, "r": 10},
            "buttons": [
                {"label": "▶ Play", "method": "animate",
                 "args": [None, {**still, "frame": {"duration": frame_ms, "redraw": True}, "fromcurrent": True}]},
                {"label": "❚❚ Pause", "method": "animate",
                 "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]},
            ],
        }],
        "sliders": [{
            "active": 0, "x": 0.0, "len": 1.0, "xanchor": "left", "y": -(below_px + BUTTON_ROW_PX) / plot_px,
            "yanchor": "top", "pad": {"t": 0}, "currentvalue": {"prefix": prefix},
            "steps": [{"label": str(i + 1), "method": "animate", "args": [[name], still]}
                      for i, name in enumerate(frame_names)],
        }],
    }
