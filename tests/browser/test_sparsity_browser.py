"""In real chromium: open the Sparsity page, render a PSA pattern, run a small latency measurement, download it.

Screenshots land in ``test-artifacts/`` (``browser-sparsity-*.png``).
"""
from __future__ import annotations

import csv
import io

import pytest
from tests.support.browser_helpers import APP_NAV

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=90_000)


def test_sparsity_page_psa_pattern_and_quick_latency(streamlit_server, page, artifacts_dir):
    page.goto(streamlit_server)
    nav = page.locator(APP_NAV)
    nav.get_by_text("Sparsity", exact=True).click()
    page.get_by_role("heading", name="Sparsity: SA++ and sparse attention").wait_for(timeout=60_000)
    wait_idle(page)

    page.get_by_role("tab", name="Attention patterns (PSA)").click()
    page.get_by_text("our implementation of the published rule", exact=False).first.wait_for()
    heatmap_title = page.locator("text.gtitle", has_text="Kept blocks, coloured by true attention mass")
    heatmap_title.first.wait_for()
    budget = page.locator("text.gtitle", has_text="PSA budget per head")
    budget.first.scroll_into_view_if_needed()
    budget.first.wait_for()
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 4
    page.screenshot(path=str(artifacts_dir / "browser-sparsity-1-psa.png"), full_page=True)

    page.get_by_role("tab", name="Latency").click()
    page.get_by_role("button", name="Measure latency").click()  # default preset: quick, no compile
    download = page.get_by_role("button", name="Download latency (CSV)")
    download.wait_for(timeout=120_000)
    wait_idle(page)
    page.locator("text.gtitle", has_text="Decode latency").first.wait_for()
    page.screenshot(path=str(artifacts_dir / "browser-sparsity-2-latency.png"), full_page=True)
    with page.expect_download() as info:
        download.click()
    rows = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    kinds = {r["kind"] for r in rows}
    assert kinds == {"decode", "linear"}
    assert all(float(r["median ms"]) > 0 and float(r["ratio"]) > 0 for r in rows)
    assert {r["candidate"] for r in rows if r["kind"] == "linear"} == {"dense matmul", "BSR sparse.mm"}
