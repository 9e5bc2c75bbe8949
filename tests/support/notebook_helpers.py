"""Execute a notebook in a fresh Jupyter kernel (nbclient), read its outputs back, export it with nbconvert."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The data script of a light figure (nbconvert may reorder its attributes).
LIGHT_FIGURE_DATA = re.compile(r'<script[^>]*\sid="(seqattn-fig-[0-9a-f]+)-data"[^>]*>(.*?)</script>', re.DOTALL)


class _RecordingClient(NotebookClient):
    """Keeps every display message (display_data and the in-place ``update_display_data``) in ``displays``."""

    def __init__(self, *args: Any, displays: list[dict], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.displays = displays

    def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] in ("display_data", "update_display_data"):
            transient = msg["content"].get("transient") or {}
            self.displays.append({"type": msg["msg_type"], "display_id": transient.get("display_id"),
                                  "data": msg["content"].get("data", {})})
        return super().process_message(msg, cell, cell_index)


def execute_notebook(notebook: str | Path, *, cwd: Path, timeout_s: int = 240,
                     displays: list[dict] | None = None) -> nbformat.NotebookNode:
    """Run every cell (a failing cell raises ``CellExecutionError`` with its traceback).

    ``notebook`` is a path or the notebook's JSON text. The kernel is the
    running Python's own (``python3``); the repository is put on its
    ``PYTHONPATH`` so an uninstalled checkout works too, and torch's threads are
    capped at 2 like the machines the suite is sized for. ``displays``, when
    given, receives every display message in order (live updates included).
    """
    text = Path(notebook).read_text(encoding="utf-8") if isinstance(notebook, Path) else notebook
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    env_before = {k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env_before["PYTHONPATH"]]))
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    options: dict[str, Any] = {"timeout": timeout_s, "kernel_name": "python3",
                               "resources": {"metadata": {"path": str(cwd)}}}
    try:
        if displays is None:
            NotebookClient(nb, **options).execute()
        else:
            _RecordingClient(nb, displays=displays, **options).execute()
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    """All stream and text/plain outputs of the executed notebook, joined."""
    parts: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output:
                parts.append(str(output["data"].get("text/plain", "")))
    return "\n".join(parts)


def jupyter_command() -> Path:
    """The ``jupyter`` launcher of the running environment (what the ``[notebook]`` extra installs)."""
    return Path(sys.executable).with_name("jupyter")


def export_html(notebook: Path, out_dir: Path, timeout_s: int = 120) -> str:
    """``jupyter nbconvert --to html`` as a user runs it; returns the page."""
    subprocess.run([str(jupyter_command()), "nbconvert", "--to", "html", "--output-dir", str(out_dir), str(notebook)],
                   check=True, capture_output=True, text=True, timeout=timeout_s)
    return (out_dir / (notebook.stem + ".html")).read_text(encoding="utf-8")


def light_figures(page: str) -> dict[str, dict]:
    """The light figures (``seqattn.plots.export``) in an HTML page: element id -> figure spec."""
    return {element: json.loads(payload) for element, payload in LIGHT_FIGURE_DATA.findall(page)}


#: What a light figure drew (seqattn/plots/light_figure.js gives its elements classes): per trace (by its index in
#: the figure's data) the x centres of its bars, its heatmap cells and their fills, markers, error bars, lines, point
#: texts (x centre, text), hover texts and the box around its cells, bars and markers (page pixels); then the
#: figure's axes with their tick labels, axis titles, annotations, line shapes, colour bars, legend entries and title.
_CENSUS_JS = """(element) => {
  const root = document.getElementById(element), svg = root.querySelector("svg");
  const all = (node, selector) => [...node.querySelectorAll(selector)];
  const centre = (node) => { const r = node.getBoundingClientRect(); return (r.left + r.right) / 2; };
  const box = (nodes) => {
    if (!nodes.length) return null;
    const r = nodes.map((n) => n.getBoundingClientRect());
    return {left: Math.min(...r.map((b) => b.left)), right: Math.max(...r.map((b) => b.right)),
            top: Math.min(...r.map((b) => b.top)), bottom: Math.max(...r.map((b) => b.bottom))};
  };
  const traces = {};
  for (const g of all(svg, "g.trace")) {
    traces[g.dataset.trace] = {type: g.dataset.type, bars: all(g, "rect.bar").map(centre),
      cells: all(g, "rect.cell").length, fills: all(g, "rect.cell").map((c) => c.getAttribute("fill")),
      points: all(g, ".point").length, errors: all(g, "path.error-bar").length,
      lines: all(g, "path.line").length, texts: all(g, "text.point-text").map((t) => [centre(t), t.textContent]),
      hover: all(g, "title").map((t) => t.textContent), box: box(all(g, "rect.cell, rect.bar, .point"))};
  }
  const texts = (selector) => all(svg, selector).map((t) => t.textContent);
  const ticks = Object.fromEntries(all(svg, "g.axis").map((a) => [a.dataset.axis,
    all(a, "text:not(.axis-title)").map((t) => t.textContent)]));
  return {traces: traces, axes: all(svg, "g.axis").map((a) => a.dataset.axis), ticks: ticks,
          axisTitles: texts("text.axis-title"),
          annotations: texts("text.annotation"), shapes: all(svg, "line.shape").length,
          colourBars: all(svg, "rect.colour-bar").length, legend: all(root, ".legend-item").map((i) => i.textContent),
          title: texts("text.figure-title")[0] || ""};
}"""


def light_figure_census(page: Any, element: str) -> dict:
    """What the light figure ``element`` on a Playwright page drew (see ``_CENSUS_JS``); trace keys are strings."""
    return page.evaluate(_CENSUS_JS, element)
