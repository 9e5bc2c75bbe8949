"""Play / Pause buttons and a frame slider for plotly animations (SA++ block masks, structured unit masks).

Buttons sit on their own row and the full-width slider below them, so the
buttons never cover the slider's first steps; frames are named ``"0"``, ``"1"``, …
"""
from __future__ import annotations

from typing import Any


def play_controls(n_frames: int, buttons_y: float, slider_y: float, prefix: str = "snapshot ",
                  frame_ms: int = 700) -> dict[str, Any]:
    """``updatemenus`` and ``sliders`` for ``fig.update_layout`` (paper coordinates, below the plot)."""
    return dict(
        updatemenus=[dict(type="buttons", showactive=False, direction="left", x=0.0, y=buttons_y, xanchor="left",
                          yanchor="top", buttons=[
            dict(label="▶ Play", method="animate",
                 args=[None, dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=True)]),
            dict(label="❚❚ Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")]),
        ])],
        sliders=[dict(active=0, x=0.0, len=1.0, y=slider_y, yanchor="top", currentvalue=dict(prefix=prefix),
                      steps=[dict(label=str(i + 1), method="animate",
                                  args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
                             for i in range(n_frames)])],
    )
