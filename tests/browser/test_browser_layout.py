"""Chart layouts in real chromium, checked by element bounding boxes: no axis title, tick label,
legend, button or slider may sit on another, and the slider's first step must be clickable.

Each figure is rendered at several widths as a standalone page (plotly.js inline, no server), so the
checks are fast and cover the widths a laptop and a wide monitor give the app."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from seqattn.data.builtins import load_builtin
from seqattn.data import Dataset
from seqattn.selectors import run_method
from seqattn.plots.data import class_balance_figure, mean_image
from seqattn.plots.selection import selection_animation

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (760, 1100, 1500)
# every visible piece of text or control that must not overlap a piece of another kind
PARTS = {
    "axis titles": "g.infolayer text[class$='title']:not(.gtitle), g.infolayer text[class*='title ']",
    "y tick labels": "g[class$='ytick'] text",
    "x tick labels": "g[class$='xtick'] text",
    "subplot titles": "g.annotation",
    "main title": "text.gtitle",
    "legend": "g.legend",
    "buttons": "g.updatemenu-button",
    "slider": "g.slider-container",
}

BOXES_JS = """(parts) => {
  const out = {};
  for (const [name, selector] of Object.entries(parts)) {
    out[name] = [...document.querySelectorAll(selector)].map(e => {
      const r = e.getBoundingClientRect();
      return {text: (e.textContent || '').trim().slice(0, 40), box: [r.left, r.top, r.right, r.bottom]};
    }).filter(p => p.box[2] - p.box[0] > 0 && p.box[3] - p.box[1] > 0);
  }
  return out;
}"""


def _overlaps(a: list[float], b: list[float], slack: float = 1.0) -> bool:
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def _collisions(parts: dict[str, list[dict]]) -> list[str]:
    """Pairs of elements of different kinds whose boxes intersect (same-kind pairs are the chart's own)."""
    found = []
    names = list(parts)
    for i, kind_a in enumerate(names):
        for kind_b in names[i + 1:]:
            for a in parts[kind_a]:
                for b in parts[kind_b]:
                    if _overlaps(a["box"], b["box"]):
                        found.append(f"{kind_a} {a['text']!r} × {kind_b} {b['text']!r}")
    # axis titles among themselves (the gains panel's two y titles vs its neighbours)
    titles = parts["axis titles"]
    for i, a in enumerate(titles):
        for b in titles[i + 1:]:
            if _overlaps(a["box"], b["box"]):
                found.append(f"axis title {a['text']!r} × axis title {b['text']!r}")
    return found


def _render(page, fig: go.Figure, width: int, path: Path) -> dict[str, list[dict]]:
    fig = go.Figure(fig)
    fig.update_layout(width=width)
    path.write_text(pio.to_html(fig, include_plotlyjs=True, full_html=True, auto_play=False), encoding="utf-8")
    page.set_viewport_size({"width": width + 40, "height": 1000})
    page.goto(path.as_uri())
    page.wait_for_selector("g.main-svg, svg.main-svg")
    page.wait_for_timeout(300)
    return page.evaluate(BOXES_JS, PARTS)


@pytest.fixture(scope="module")
def digits_trace():
    ds = load_builtin("digits")
    return ds, run_method(ds, "omp", 5)


@pytest.mark.parametrize("width", WIDTHS)
def test_animation_parts_do_not_overlap_and_step_one_is_clickable(page, tmp_path, artifacts_dir, digits_trace,
                                                                   width):
    ds, trace = digits_trace
    fig = selection_animation(trace, image_shape=ds.image_shape, mean_image=mean_image(ds))
    parts = _render(page, fig, width, tmp_path / "anim.html")
    page.screenshot(path=str(artifacts_dir / f"layout-animation-{width}.png"))
    assert parts["buttons"] and parts["slider"] and parts["axis titles"], parts
    assert _collisions(parts) == []
    # the slider's steps respond: jump to the last step, then back to step 1
    label = page.locator("g.slider-container text.slider-label")
    steps = page.locator("g.slider-container g.slider-step-label-group text, g.slider-container text.slider-label-group")
    rail = page.locator("g.slider-container rect.slider-rail-rect, g.slider-container rect").first
    box = rail.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => document.querySelector('text.slider-label').textContent.trim() === 'step 5'")
    page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => document.querySelector('text.slider-label').textContent.trim() === 'step 1'")
    assert label.first.text_content().strip() == "step 1"
    assert steps is not None


@pytest.mark.parametrize("width", WIDTHS[:2])
def test_sa_bars_animation_on_a_small_table_does_not_overlap(page, tmp_path, width):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 12))
    ds = Dataset(X=X, y=(X[:, 0] + X[:, 3] > 0).astype(int), task="classification",
                 feature_names=[f"a_rather_long_feature_name_{j}" for j in range(12)])
    trace = run_method(ds, "sa", 3, epochs=8)
    parts = _render(page, selection_animation(trace), width, tmp_path / "bars.html")
    assert _collisions(parts) == []


def test_class_balance_with_long_labels_is_horizontal_and_readable(page, tmp_path, artifacts_dir):
    ds = load_builtin("pbmc68k_reduced")
    fig = class_balance_figure(ds)
    assert fig.data[0].orientation == "h"
    parts = _render(page, fig, 520, tmp_path / "balance.html")
    page.screenshot(path=str(artifacts_dir / "layout-class-balance.png"))
    labels = parts["y tick labels"]
    assert len(labels) == ds.n_classes and _collisions(parts) == []
    heights = [p["box"][3] - p["box"][1] for p in labels]
    gaps = np.diff(sorted(p["box"][1] for p in labels))
    assert min(gaps) >= max(heights) - 1  # one label per row, none squashed onto another


@pytest.mark.parametrize("width", WIDTHS[:2])
def test_sa_plus_plus_animation_controls_do_not_overlap(page, tmp_path, artifacts_dir, width):
    from seqattn.plots.sparsity import block_mask_animation
    from seqattn.sparsity.block_pruning import sa_plus_plus

    result = sa_plus_plus(load_builtin("digits"), sparsity=0.8, block_size=8, hidden=(32,), epochs=9, n_cycles=1,
                          device="cpu")
    parts = _render(page, block_mask_animation(result), width, tmp_path / "sapp.html")
    page.screenshot(path=str(artifacts_dir / f"layout-sapp-{width}.png"))
    assert parts["buttons"] and parts["slider"] and _collisions(parts) == []
    rail = page.locator("g.slider-container rect").first.bounding_box()
    page.mouse.click(rail["x"] + rail["width"] - 2, rail["y"] + rail["height"] / 2)
    page.mouse.click(rail["x"] + 2, rail["y"] + rail["height"] / 2)
    page.wait_for_function("() => document.querySelector('text.slider-label').textContent.trim() === 'snapshot 1'")


@pytest.mark.parametrize("n_layer", [1, 4])
def test_structured_unit_mask_animation_controls_do_not_overlap(page, tmp_path, artifacts_dir, n_layer):
    from seqattn.plots.structured import unit_mask_animation
    from tests.support.structured_fakes import heads_only_result

    parts = _render(page, unit_mask_animation(heads_only_result(n_layer), 0.5), WIDTHS[0], tmp_path / "units.html")
    page.screenshot(path=str(artifacts_dir / f"layout-units-{n_layer}.png"))
    assert parts["buttons"] and parts["slider"] and parts["x tick labels"] and _collisions(parts) == []
