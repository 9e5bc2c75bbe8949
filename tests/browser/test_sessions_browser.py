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
from tests.support.browser_helpers import go, nav_link, open_home, run_sa, set_number, upload_csv, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "secretfeature"


def secret_csv() -> bytes:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)).round(4), columns=[f"{SECRET}_{i}" for i in range(4)])
    frame["label"] = (frame[f"{SECRET}_0"] + frame[f"{SECRET}_2"] > 0).astype(int)
    return frame.to_csv(index=False).encode()


def open_session(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    open_home(page, url)
    return context, page


def test_two_sessions_are_isolated(streamlit_server, browser, artifacts_dir):
    context_a, a = open_session(browser, streamlit_server)
    context_b, b = open_session(browser, streamlit_server)
    try:
        # A: upload its own table and run SA on it
        upload_csv(a, "private_a.csv", secret_csv())
        run_sa(a, k=2, epochs=30)
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


N_SESSIONS = 6


def own_csv(i: int) -> bytes:
    rng = np.random.default_rng(100 + i)
    names = [f"own{i}_{c}" for c in "abcd"]
    frame = pd.DataFrame(rng.normal(size=(80, 4)).round(4), columns=names)
    frame["label"] = (frame[names[0]] - frame[names[2]] > 0).astype(int)
    return frame.to_csv(index=False).encode()


def test_six_concurrent_sessions_each_run_on_their_own_upload(streamlit_server, browser, artifacts_dir):
    """Six users attach a file and go straight on to Sequential Attention, as people do: the file shows as
    attached at once, they click on. Each run must use that session's own columns; once 2 of 6 ran on
    digits: the file's bytes had reached the server, but the page changed before the uploader told the
    server about them (or before the Data page's run that read them finished), and the upload was lost.
    The test clicks the moment the browser has sent the bytes; a file whose bytes never left the browser
    is beyond any server."""
    sessions = [open_session(browser, streamlit_server) for _ in range(N_SESSIONS)]
    pages = [page for _, page in sessions]
    try:
        for page in pages:
            go(page, "Data")
            page.get_by_text("Upload", exact=True).click()
        for page in pages:
            wait_idle(page)
        for i, page in enumerate(pages):
            with page.expect_request_finished(lambda r: "upload_file" in r.url and r.method == "PUT"):
                page.locator('input[type="file"]').set_input_files(
                    files=[{"name": f"own{i}.csv", "mimeType": "text/csv", "buffer": own_csv(i)}])
            nav_link(page, "Sequential Attention").click()  # at once: the user does not wait either
        for page in pages:
            wait_idle(page)
            set_number(page, "k (features to pick)", 2)
            set_number(page, "epochs (0 = automatic)", 10)
            page.get_by_role("button", name="Run Sequential Attention").click()
        for i, page in enumerate(pages):
            page.get_by_text(re.compile(r"Selected 2 features in")).wait_for(timeout=240_000)
            wait_idle(page)
            caption = page.get_by_text(re.compile(r"samples × \d+ features")).first.inner_text()
            assert caption.startswith(f"own{i}:"), f"session {i} ran on: {caption}"
            page.get_by_role("tab", name="Step by step").click()
            steps = page.get_by_text(re.compile(r"^step 1: among")).first.inner_text()
            assert re.search(rf"on own{i}_[abcd]\b", steps), f"session {i}'s first pick: {steps}"
            named = set(re.findall(r"own(\d)_[abcd]", page.content()))  # tables, charts, captions
            assert named == {str(i)} and "pixel (" not in page.content(), f"session {i} shows {named}"
    except Exception:
        for i, page in enumerate(pages):
            page.screenshot(path=str(artifacts_dir / f"FAILED-six-sessions-{i}.png"), full_page=True)
        raise
    finally:
        for context, _ in sessions:
            context.close()
