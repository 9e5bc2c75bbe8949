"""Figures that survive export: a plotly figure with a light, offline HTML rendering beside its JSON.

In a Jupyter kernel plotly displays a figure as ``application/vnd.plotly.v1+json`` only, which
JupyterLab draws with plotly.js but ``jupyter nbconvert --to html`` cannot represent: the figure
vanishes from the exported page. Embedding plotly.js (4.8 MB) would make every saved notebook
megabytes; loading it from a CDN breaks offline. :class:`ExportableFigure` adds a ``text/html``
alternative instead: the figure's data (layout template dropped) and a small self-contained renderer
(``light_figure.js``, no network, no require.js) that draws bar, scatter and heatmap traces on subplot
grids (grouped bars, error bars, shared colour axes, line shapes, subplot titles) and plays the frames
with Play/Pause and a slider. Front ends that render plotly's JSON (JupyterLab, VS Code)
still show the full interactive figure; nbconvert and plain HTML viewers pick the light one.
"""
from __future__ import annotations

import base64
import json
import math
import uuid
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np
import plotly.graph_objects as go

PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: The trace types the light renderer draws; a figure with others gets no light rendering (plotly's JSON only).
LIGHT_TRACE_TYPES = frozenset({"bar", "scatter", "heatmap"})
#: Axis types the light renderer draws (plotly's "-" is its automatic choice among them).
LIGHT_AXIS_TYPES = frozenset({"-", "linear", "log", "category"})


@lru_cache(maxsize=1)
def _renderer_js() -> str:
    """light_figure.js as every figure embeds it: comment lines and indentation dropped (a fifth smaller, the
    same code; the file has no multi-line strings)."""
    source = files("seqattn.plots").joinpath("light_figure.js").read_text(encoding="utf-8")
    return "\n".join(line.strip() for line in source.splitlines() if line.strip() and not line.strip().startswith("//"))


def _plain(value: Any) -> Any:
    """JSON-ready: numpy arrays (and plotly's base64 ``bdata`` arrays) as lists, NaN/inf as null."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            if shape:
                array = array.reshape([int(s) for s in str(shape).split(",")] if isinstance(shape, str) else shape)
            return _plain(array)
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def light_figure_spec(fig: go.Figure) -> dict[str, Any]:
    """What the light renderer needs: data, layout without plotly's template, frames; JSON-ready."""
    spec = fig.to_plotly_json()
    spec.get("layout", {}).pop("template", None)
    return _plain({"data": spec.get("data", []), "layout": spec.get("layout", {}), "frames": spec.get("frames", [])})


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>``, no ``<!--`` (user text may hold either)."""
    return (json.dumps(value, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _error_bars_drawable(error: dict[str, Any] | None) -> bool:
    """Error bars of type ``data`` (plotly's default when an array is given); percent/constant/sqrt are not drawn."""
    return error is None or error.get("visible") is False or \
        error.get("type", "data" if "array" in error else "percent") == "data"


def _trace_drawable(trace: dict[str, Any]) -> bool:
    kind = trace.get("type", "scatter")
    if kind not in LIGHT_TRACE_TYPES or trace.get("orientation") == "h" or "texttemplate" in trace:
        return False
    if not (_error_bars_drawable(trace.get("error_x")) and _error_bars_drawable(trace.get("error_y"))):
        return False
    # a heatmap's x/y: names of its columns and rows (category axes), never numeric coordinates
    return kind != "heatmap" or all(isinstance(v, str) for axis in ("x", "y") for v in trace.get(axis, []))


def _layout_drawable(layout: dict[str, Any]) -> bool:
    axes = [v for k, v in layout.items() if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)]
    return (layout.get("barmode") not in ("stack", "relative")
            and all(axis.get("type", "-") in LIGHT_AXIS_TYPES for axis in axes)
            and all(shape.get("type") == "line" for shape in layout.get("shapes", []))
            and all(note.get("showarrow") is False and "textangle" not in note
                    for note in layout.get("annotations", [])))


def _drawable(spec: dict[str, Any]) -> bool:
    """Whether the light renderer draws every part of the figure as plotly would; a figure it would draw
    wrongly (horizontal or stacked bars, percent error bars, numbers written in heatmap cells, date axes, shapes
    other than lines, arrows) keeps plotly's JSON only."""
    traces = spec["data"] + [trace for frame in spec["frames"] for trace in frame.get("data", [])]
    layouts = [spec["layout"]] + [frame.get("layout", {}) for frame in spec["frames"]]
    return bool(spec["data"]) and all(map(_trace_drawable, traces)) and all(map(_layout_drawable, layouts))


def light_html(fig: go.Figure) -> str | None:
    """A self-contained HTML rendering of ``fig`` (frames, Play/Pause, slider), or ``None`` when the figure
    uses what the light renderer does not draw (see :func:`_drawable`)."""
    spec = light_figure_spec(fig)
    if not _drawable(spec):
        return None
    element = "seqattn-fig-" + uuid.uuid4().hex[:12]
    return (
        f'<div class="seqattn-light-figure" id="{element}" style="max-width: 1600px"></div>\n'
        f'<script type="application/json" id="{element}-data">{_script_json(spec)}</script>\n'
        f"<script>\n{_renderer_js()}\n"
        f'window.seqattnLightFigure.render(document.getElementById("{element}"), '
        f'JSON.parse(document.getElementById("{element}-data").textContent));\n</script>\n'
        '<p style="font: 11px sans-serif; color: #666">Light rendering for exported notebooks; '
        "JupyterLab shows the interactive plotly figure.</p>"
    )


class ExportableFigure(go.Figure):
    """A ``go.Figure`` whose notebook display carries a light HTML rendering beside plotly's JSON.

    Everything else is plotly's: the app draws it with ``st.plotly_chart``, ``go.Figure(fig)`` copies it.
    """

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, validate: bool = True,
                          **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(include, exclude, validate, **kwargs)
        if PLOTLY_MIME in bundle and "text/html" not in bundle:
            html = light_html(self)
            if html is not None:
                bundle["text/html"] = html
        return bundle

    def _ipython_display_(self) -> None:
        """IPython calls this instead of ``_repr_mimebundle_``; plotly's own version would drop the light
        rendering. Renderers that are not mime types (a browser tab) still go through plotly."""
        import plotly.io as pio
        from IPython.display import display

        bundle = self._repr_mimebundle_() if pio.renderers.render_on_display and pio.renderers.default else {}
        if PLOTLY_MIME not in bundle:
            super()._ipython_display_()
            return
        display(bundle, raw=True)


def exportable(fig: go.Figure) -> ExportableFigure:
    """``fig`` as an :class:`ExportableFigure` (the same object when it already is one)."""
    if isinstance(fig, ExportableFigure):
        return fig
    return ExportableFigure(fig)
