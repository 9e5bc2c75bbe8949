"""In real chromium, as a new user clicks through (issue 23 items 2 and 5): a table with a row-number column
and gaps → the row ID is left out by default and incomplete rows can be dropped → Sequential Attention runs →
an edit keeps Settings open and marks the results out of date → the held-out check shows its confusion matrix.

Screenshots land in ``test-artifacts/`` (``browser-truthful-*.png``).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.support.browser_helpers import go, open_upload, set_number, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def penguins_like(n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"row_id": np.arange(1, n + 1), "bill": rng.normal(40, 5, n).round(1),
                          "flipper": rng.normal(200, 10, n).round(1), "mass": rng.normal(4000, 300, n).round(0),
                          "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n)})
    table["species"] = np.where(table["bill"] + rng.normal(0, 2, n) > 40, "Adelie", "Gentoo")
    table.loc[[4, 11, 30], "flipper"] = np.nan
    return table


def test_row_id_gaps_sa_out_of_date_and_held_out_check(streamlit_server, page, artifacts_dir, tmp_path):
    path = tmp_path / "penguins.csv"
    penguins_like().to_csv(path, index=False)
    open_upload(page, streamlit_server)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    wait_idle(page)

    # gaps: an error naming the page's control; the row number is already left out, and the page says why
    page.locator('[data-testid="stAlertContentError"]', has_text="'Missing values'").first.wait_for()
    page.get_by_text(re.compile(r"Left out by default: row_id — a different whole number in every row")).wait_for()
    missing = page.locator('[data-testid="stSelectbox"]', has_text="Missing values")
    missing.click()
    page.get_by_role("option", name="drop rows with a missing value").click()
    wait_idle(page)
    page.get_by_text("Current data set: penguins").wait_for()
    page.get_by_text(re.compile(r"Dropped 3 of 90 rows \(3%\) with a missing value")).wait_for()
    page.get_by_text("dropped (row ID)").first.wait_for(state="attached")  # a summary cell (grid cells draw on a canvas)
    page.screenshot(path=str(artifacts_dir / "browser-truthful-1-data.png"), full_page=True)

    go(page, "Sequential Attention")
    set_number(page, "k (feature groups to pick)", 2)
    set_number(page, "epochs (0 = automatic)", 6)
    page.get_by_role("button", name="Run Sequential Attention").click()
    page.get_by_text(re.compile(r"Selected 2 features in")).wait_for(timeout=180_000)
    wait_idle(page)
    assert page.locator('[data-testid="stAlertContentWarning"]', has_text="Out of date").count() == 0

    set_number(page, "k (feature groups to pick)", 3)
    stale = page.locator('[data-testid="stAlertContentWarning"]', has_text="Out of date")
    stale.wait_for()
    assert "k 2 → 3" in stale.inner_text()
    assert page.get_by_label("epochs (0 = automatic)", exact=True).is_visible()  # Settings stayed open
    page.screenshot(path=str(artifacts_dir / "browser-truthful-2-out-of-date.png"), full_page=True)

    page.get_by_role("tab", name="Held-out check").click()
    page.get_by_text(re.compile(r"Held-out accuracy, the 2 picks")).wait_for()
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="true class")
    chart.first.wait_for()
    assert chart.first.locator("g.xtick text").count() == 2  # Adelie and Gentoo predicted
    page.screenshot(path=str(artifacts_dir / "browser-truthful-3-held-out.png"), full_page=True)
