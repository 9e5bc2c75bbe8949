"""End to end in real chromium: Data (digits) → Compare with small settings → the accuracy-vs-k chart.

Screenshots land in ``test-artifacts/`` (``browser-compare-*.png``).
"""
from __future__ import annotations

import pytest
from tests.support.browser_helpers import APP_NAV, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def fill(page, label: str, value: str) -> None:
    """Type into a widget inside the settings form (no rerun until the form is submitted)."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    assert box.input_value() == value


def test_compare_on_digits_shows_accuracy_vs_k(streamlit_server, page, artifacts_dir):
    page.goto(streamlit_server)
    nav = page.locator(APP_NAV)
    nav.get_by_text("Data", exact=True).click()
    page.get_by_text("Current data set: digits").wait_for()
    wait_idle(page)

    nav.get_by_text("Compare", exact=True).click()
    page.get_by_role("button", name="Run comparison").wait_for()
    wait_idle(page)
    fill(page, "k (features per method)", "3")
    fill(page, "k values to evaluate", "1, 3")
    fill(page, "seeds", "2")
    fill(page, "evaluation epochs", "5")
    fill(page, "SA epochs (if run here; 0 = automatic)", "4")
    fill(page, "SHAP background rows", "10")
    fill(page, "SHAP explained rows", "10")
    page.get_by_text("logistic", exact=True).click()
    page.get_by_role("button", name="Run comparison").click()

    heading = page.get_by_role("heading", name="Accuracy vs k")
    heading.wait_for(timeout=240_000)
    wait_idle(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.scroll_into_view_if_needed()
    title = chart.locator("text.gtitle").first
    title.wait_for()
    assert title.text_content().startswith("Test accuracy of a fresh model on each method's top-k")
    legend = " ".join(chart.locator("g.legend text.legendtext").all_text_contents())
    for name in ("Sequential Attention", "OMP", "SHAP", "Greedy (true gains)", "Mutual information",
                 "ANOVA F", "Variance"):
        assert name in legend, legend
    # one mean line per method, drawn at k = 1 and k = 3
    ticks = chart.locator("g.xtick text").all_text_contents()
    assert ticks == ["1", "3"], ticks
    page.screenshot(path=str(artifacts_dir / "browser-compare-1-accuracy.png"), full_page=True)

    # the pixel masks of every method, side by side (digits are 8×8 images)
    page.get_by_role("tab", name="Rankings").click()
    masks = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="selected pixels of each method")
    masks.first.wait_for()
    page.screenshot(path=str(artifacts_dir / "browser-compare-2-rankings.png"), full_page=True)
