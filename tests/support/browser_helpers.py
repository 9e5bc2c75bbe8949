"""Shared helpers for the Playwright tests (imported by the test modules; not a test file)."""
from __future__ import annotations

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeout


def wait_idle(page, timeout_ms: int = 180_000) -> None:
    """Wait for the rerun an interaction triggered: the app root flips to "running", then back.

    Typing into the next widget while a rerun is in flight can be overwritten
    by that rerun's result, so every interaction waits here.
    """
    try:
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=2_000)
    except PlaywrightTimeout:
        pass  # the rerun was over before we looked
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


#: The app's own menu in the sidebar (app.py draws it in ``st.container(key="app_nav")``).
APP_NAV = ".st-key-app_nav"


def nav_link(page, title: str):
    """The sidebar menu entry for the page titled ``title``."""
    return page.locator(APP_NAV).get_by_text(title, exact=True)


def go(page, title: str) -> None:
    """Open a page from the app's menu and wait for its run."""
    nav_link(page, title).click()
    wait_idle(page)


def set_number(page, label: str, value: int) -> None:
    """Type a number into the input labelled ``label`` and wait for the rerun."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def open_home(page, url: str) -> None:
    """Open the app and wait until Home has been drawn."""
    page.goto(url)
    page.get_by_role("heading", name="Sequential Attention for feature selection").wait_for()
    wait_idle(page)


def upload_csv(page, name: str, data: bytes, timeout_ms: int = 60_000) -> None:
    """Data page → Upload → attach ``name`` and wait until it is the current data set."""
    go(page, "Data")
    page.get_by_text("Upload", exact=True).click()
    wait_idle(page)
    page.locator('input[type="file"]').set_input_files(files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
    page.get_by_text(f"Current data set: {name.removesuffix('.csv')}").wait_for(timeout=timeout_ms)
    wait_idle(page)


def run_sa(page, k: int, epochs: int, timeout_ms: int = 180_000) -> None:
    """Sequential Attention page: set k and epochs, press Run, wait for the result."""
    go(page, "Sequential Attention")
    set_number(page, "k (features to pick)", k)
    set_number(page, "epochs (0 = automatic)", epochs)
    page.get_by_role("button", name="Run Sequential Attention").click()
    page.get_by_text(re.compile(rf"Selected {k} features in")).wait_for(timeout=timeout_ms)
    wait_idle(page)
