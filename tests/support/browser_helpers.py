"""Shared helpers for the Playwright tests (imported by the test modules; not a test file)."""
from __future__ import annotations

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
