"""End to end in real chromium: Data → Sequential Attention on digits, play the animation, download the CSV.

Screenshots land in ``test-artifacts/`` (``browser-*.png``) for a person to look at.
"""
from __future__ import annotations

import csv
import io
import re

import pytest

from seqattn.trace import SelectionTrace
from tests.support.browser_helpers import APP_NAV, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)
    assert box.input_value() == str(value)


def test_data_to_sequential_attention_play_and_download(streamlit_server, page, artifacts_dir):
    page.goto(streamlit_server)
    page.get_by_role("heading", name="Sequential Attention for feature selection").wait_for()

    nav = page.locator(APP_NAV)
    nav.get_by_text("Data", exact=True).click()
    page.get_by_text("Current data set: digits").wait_for()
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()  # class balance drawn
    page.screenshot(path=str(artifacts_dir / "browser-1-data.png"), full_page=True)

    nav.get_by_text("Sequential Attention", exact=True).click()
    page.get_by_role("button", name="Run Sequential Attention").wait_for()
    wait_idle(page)
    set_number(page, "k (features to pick)", 3)
    set_number(page, "epochs (0 = automatic)", 4)
    page.get_by_role("button", name="Run Sequential Attention").click()
    page.get_by_text(re.compile(r"Selected 3 features in")).wait_for(timeout=120_000)
    wait_idle(page)

    # the animation: press play and let it run to the last step
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.scroll_into_view_if_needed()
    chart.locator("g.updatemenu-button", has_text="Play").click()
    current = chart.locator("g.slider-container text.slider-label")
    page.wait_for_function(
        "() => [...document.querySelectorAll('g.slider-container text.slider-label')]"
        ".some(t => t.textContent.trim() === 'step 3')", timeout=20_000)
    assert current.first.text_content().strip() == "step 3"
    page.wait_for_timeout(1200)  # let the last frame draw before the screenshot
    page.screenshot(path=str(artifacts_dir / "browser-2-animation.png"), full_page=True)
    title = chart.locator("text.gtitle").first.text_content()
    assert title.startswith("Step 3/3: picked pixel")

    # the selected-feature table
    page.get_by_role("tab", name="Selected features").click()
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    page.screenshot(path=str(artifacts_dir / "browser-3-table.png"), full_page=True)

    # download the CSV and check it against the picks named in the animation
    page.get_by_role("tab", name="Downloads").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Selected features (CSV)").click()
    download = info.value
    assert download.suggested_filename == "sa_digits_k3.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [r["order"] for r in rows] == ["1", "2", "3"]
    assert all(r["name"].startswith("pixel (") for r in rows)
    assert title.removeprefix("Step 3/3: picked ").startswith(rows[2]["name"])
    assert float(rows[2]["val_metric"]) > 0.1  # better than guessing among 10 classes

    # the full trace (JSON) round-trips to the same picks; the figure HTML is self-contained
    with page.expect_download() as info:
        page.get_by_role("button", name="Full trace (JSON)").click()
    trace = SelectionTrace.from_json(open(info.value.path(), encoding="utf-8").read())
    assert trace.selected_names == [r["name"] for r in rows] and trace.k == 3
    with page.expect_download() as info:
        page.get_by_role("button", name="Animation (HTML, works offline)").click()
    html = open(info.value.path(), encoding="utf-8").read()
    assert info.value.suggested_filename == "sa_digits_k3.html"
    assert "Plotly.newPlot" in html and "Plotly.addFrames" in html and rows[2]["name"] in html
    assert html.count('"traces":[') == 3  # one animation frame per pick
    assert '<script src="http' not in html and len(html) > 1_000_000  # plotly.js embedded: works offline
    page.get_by_role("tab", name="Step by step").click()
    page.get_by_text(re.compile(r"step 1: among 64 remaining pixels")).wait_for()
    page.screenshot(path=str(artifacts_dir / "browser-4-steps.png"), full_page=True)
