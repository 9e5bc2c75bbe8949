"""Two browser sessions on one server do not see each other's data or results.

Session A uploads a table with tell-tale feature names and runs Sequential
Attention on it; session B, open at the same time in its own browser context
(own cookies, own websocket), must still see the default data set and no
results, and B switching data sets must not disturb A.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from tests.support.browser_helpers import APP_NAV, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "secretfeature"


def go(page, title: str) -> None:
    page.locator(APP_NAV).get_by_text(title, exact=True).click()
    wait_idle(page)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def secret_csv() -> bytes:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)).round(4), columns=[f"{SECRET}_{i}" for i in range(4)])
    frame["label"] = (frame[f"{SECRET}_0"] + frame[f"{SECRET}_2"] > 0).astype(int)
    return frame.to_csv(index=False).encode()


def open_session(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_role("heading", name="Sequential Attention for feature selection").wait_for()
    wait_idle(page)
    return context, page


def test_two_sessions_are_isolated(streamlit_server, browser, artifacts_dir):
    context_a, a = open_session(browser, streamlit_server)
    context_b, b = open_session(browser, streamlit_server)
    try:
        # A: upload its own table and run SA on it
        go(a, "Data")
        a.get_by_text("Upload", exact=True).click()
        wait_idle(a)
        a.locator('input[type="file"]').set_input_files(
            files=[{"name": "private_a.csv", "mimeType": "text/csv", "buffer": secret_csv()}])
        a.get_by_text("Current data set: private_a").wait_for(timeout=60_000)
        wait_idle(a)
        go(a, "Sequential Attention")
        set_number(a, "k (features to pick)", 2)
        set_number(a, "epochs (0 = automatic)", 30)
        a.get_by_role("button", name="Run Sequential Attention").click()
        a.get_by_text(re.compile(r"Selected 2 features in")).wait_for(timeout=120_000)
        wait_idle(a)
        a.get_by_role("tab", name="Selected features").click()
        assert SECRET in a.locator('[data-testid="stDataFrame"]').first.inner_text() or SECRET in a.content()

        # A leaves the Data page and comes back: its upload stays current
        go(a, "Data")
        a.get_by_text("Current data set: private_a").wait_for()

        # B, open all along: still the default data set, no results, no trace of A's names
        go(b, "Data")
        b.get_by_text("Current data set: digits").wait_for()
        assert SECRET not in b.content() and "private_a" not in b.content()
        go(b, "Sequential Attention")
        b.get_by_text("Choose settings and press").wait_for()
        assert b.get_by_text(re.compile(r"Selected \d+ features in")).count() == 0
        assert SECRET not in b.content()
        b.screenshot(path=str(artifacts_dir / "sessions-b.png"), full_page=True)

        # B changes its data set; A keeps its own data and result
        go(b, "Data")
        b.get_by_label("Built-in data set").click()
        b.get_by_role("option", name=re.compile(r"^wine")).click()
        b.get_by_text("Current data set: wine").wait_for()
        go(a, "Data")
        a.get_by_text("Current data set: private_a").wait_for()
        go(a, "Sequential Attention")
        a.get_by_text(re.compile(r"Selected 2 features in")).wait_for()
        a.screenshot(path=str(artifacts_dir / "sessions-a.png"), full_page=True)
    except Exception:
        a.screenshot(path=str(artifacts_dir / "FAILED-sessions-a.png"), full_page=True)
        b.screenshot(path=str(artifacts_dir / "FAILED-sessions-b.png"), full_page=True)
        raise
    except Exception:
        for name, page in (("a", a), ("b", b)):
            page.screenshot(path=str(artifacts_dir / f"FAILED-sessions-{name}.png"), full_page=True)
        raise
    finally:
        context_a.close()
        context_b.close()
