"""Markup in column names never makes the browser fetch anything (issue 24 item 7), in real chromium.

Columns are named ``![px](http://127.0.0.1:<bait>/img.png)`` (a markdown image)
and ``<a href="http://127.0.0.1:<bait>/x">x</a>`` (an HTML link), pointing at a
local HTTP server of the test's own. The table is uploaded through the Data
page, Sequential Attention runs on it (near-tie warning, step-by-step text,
animation) and so does Compare (every tab). Every request the page makes is
recorded (``page.on("request")``): none may go anywhere but the app's own
origin, the bait server must see nothing, and the DOM must hold no image or
link pointing at it; the names show as their literal text.
"""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from tests.support.browser_helpers import go, open_home, run_sa, upload_csv, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Bait:
    """A local HTTP server that records every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        bait = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                bait.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bait():
    server = Bait()
    yield server
    server.close()


def markup_csv(port: int) -> tuple[bytes, list[str]]:
    names = [f"![px](http://127.0.0.1:{port}/img.png)", f'<a href="http://127.0.0.1:{port}/x">x</a>',
             f"![px](http://127.0.0.1:{port}/img2.png)", f'<a href="http://127.0.0.1:{port}/y">y</a>']
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(80, len(names))).round(4), columns=names)
    frame["label"] = np.where(rng.normal(size=80) > 0, "yes", "no")  # noise: every pick is a near-tie
    return frame.to_csv(index=False).encode(), names


def test_markup_in_column_names_sends_no_request_anywhere(streamlit_server, page, bait, artifacts_dir):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    data, names = markup_csv(bait.port)
    open_home(page, streamlit_server)
    upload_csv(page, "markup.csv", data)
    run_sa(page, k=2, epochs=2)
    warning = page.locator('[data-testid="stAlert"]', has_text="was a near-tie with").first
    shown = warning.inner_text().replace("\u2060", "")  # the escaping's invisible word joiners aside
    assert any(name in shown for name in names), shown  # the names show as their own text
    page.get_by_role("tab", name="Step by step").click()
    page.get_by_text(re.compile(r"step 1: among 4 remaining features")).wait_for()
    page.get_by_role("tab", name="Animation").click()
    page.locator(".js-plotly-plot").first.wait_for()

    go(page, "Compare")
    page.get_by_role("button", name="Run comparison").click()
    page.get_by_role("heading", name="Accuracy vs k").wait_for(timeout=240_000)
    wait_idle(page)
    for tab in ("Rankings", "Agreement", "Step by step", "SHAP summary", "Timing"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(500)
    page.wait_for_timeout(2_000)  # anything lazy would have been requested by now
    page.screenshot(path=str(artifacts_dir / "injection-compare.png"), full_page=True)

    origin = streamlit_server.rstrip("/")
    outside = [u for u in requests if not (u.startswith(origin) or u.startswith(("data:", "blob:")))]
    assert not outside, f"requests that left the app's origin: {outside}"
    assert not bait.hits, f"the bait server was asked for {bait.hits}"
    bait_url = f"127.0.0.1:{bait.port}"
    assert page.locator(f'img[src*="{bait_url}"], image[href*="{bait_url}"]').count() == 0
    assert page.locator(f'a[href*="{bait_url}"]').count() == 0  # no live link either (HTML or plotly SVG)
