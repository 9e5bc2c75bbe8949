"""Start-up navigation in real chromium: from the first paint on, the sidebar only ever lists the app's pages.

Streamlit treats ``pages/`` next to ``app.py`` as a legacy multipage app and,
until ``app.py``'s first run has drawn ``st.navigation``, would list the
folder's file names ("app, compare, data, …", helpers included). The app turns
that listing off and draws its own menu; this test watches a fresh server's
very first page load, when that listing used to show longest.
"""
from __future__ import annotations

import re
import time

import pytest
from tests.support.browser_helpers import APP_NAV

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP_TITLES = {"Home", "Data", "Sequential Attention", "Gene panel", "Compare", "Sparsity", "Structured pruning"}

# Every link or navigation entry in the sidebar, with icon ligatures (material icon names) removed.
SIDEBAR_ENTRIES_JS = """() => {
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const nav = [...document.querySelectorAll('[data-testid^="stSidebarNav"], [data-testid="stNavSection"]')];
  const nodes = [...(sidebar ? sidebar.querySelectorAll('a') : []), ...nav.flatMap(n => [...n.querySelectorAll('a')])];
  return [...new Set(nodes)].map(a => {
    const clone = a.cloneNode(true);
    clone.querySelectorAll('[data-testid="stIconMaterial"], [data-testid="stIconEmoji"]').forEach(i => i.remove());
    return clone.textContent.trim();
  });
}"""


def test_sidebar_lists_only_the_apps_pages_from_first_paint(fresh_streamlit_server, page):
    page.goto(fresh_streamlit_server, wait_until="commit")  # start watching before anything is drawn
    seen: dict[str, float] = {}
    start = time.monotonic()
    settled_at = None
    while time.monotonic() - start < 90:
        for entry in page.evaluate(SIDEBAR_ENTRIES_JS):
            seen.setdefault(entry, round(time.monotonic() - start, 2))
        complete = APP_TITLES <= set(seen)
        if complete and settled_at is None:
            settled_at = time.monotonic()
        if settled_at is not None and time.monotonic() - settled_at > 3:  # keep watching a little after
            break
        page.wait_for_timeout(25)
    stray = {entry: t for entry, t in seen.items() if entry not in APP_TITLES}
    assert not stray, f"the sidebar showed entries that are not the app's pages (text: seconds after load): {stray}"
    assert APP_TITLES <= set(seen), f"the app's menu never appeared; seen: {seen}"
    # The app's own menu, not Streamlit's automatic one, and it opens pages inside the app's frame.
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    page.locator(APP_NAV).get_by_text("Data", exact=True).click()
    page.get_by_text(re.compile(r"Current data set: ")).wait_for()
    page.get_by_role("combobox", name="Device").wait_for()  # the frame's device selector is there


@pytest.mark.parametrize(("path", "heading"), [("data", "Data"), ("compare", "Compare methods")])
def test_a_page_opened_by_its_url_on_a_fresh_server_has_the_menu_and_device(fresh_streamlit_server, page, path,
                                                                           heading):
    """Before anyone has opened ``/``, Streamlit ran such a page without app.py: no menu, no device selector."""
    page.goto(f"{fresh_streamlit_server}/{path}")
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    page.locator(APP_NAV).get_by_text("Sequential Attention", exact=True).wait_for()
    page.get_by_role("combobox", name="Device").wait_for()
    assert page.locator(APP_NAV).locator("a").count() == len(APP_TITLES)
    # the frame stays on the next run (now through app.py) and its menu works
    page.locator(APP_NAV).get_by_text("Home", exact=True).click()
    page.get_by_role("heading", name="Sequential Attention for feature selection").wait_for()
    page.get_by_role("combobox", name="Device").wait_for()
