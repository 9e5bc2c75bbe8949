"""A finished run survives a server restart (issue 24 item 8b, 8c): run, kill the server, start a new one on
the same run store, open the run's link and see the same picks; a tab's data set comes back from its URL."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
from tests.support.browser_helpers import open_home, run_sa, upload_csv, wait_idle
from conftest import run_streamlit

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def kept_csv() -> bytes:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(90, 5)).round(4), columns=[f"kept_{c}" for c in "abcde"])
    frame["label"] = (frame["kept_b"] + frame["kept_d"] > 0).astype(int)
    return frame.to_csv(index=False).encode()


def steps_shown(page) -> list[str]:
    """The step-by-step sentences (they name every pick, in order, with its share and the metric)."""
    page.get_by_role("tab", name="Step by step").click()
    items = page.locator("li").filter(has_text=re.compile(r"^step \d+: among"))
    items.first.wait_for()
    return [text.replace("\u2060", "") for text in items.all_inner_texts()]


def test_a_run_link_shows_the_same_picks_after_a_restart(browser, tmp_path, artifacts_dir):
    env = {"SEQATTN_RUN_DIR": str(tmp_path / "runs")}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        with run_streamlit(artifacts_dir / "streamlit-before-restart.log", env) as url:
            open_home(page, url)
            upload_csv(page, "kept.csv", kept_csv())
            data_id = parse_qs(urlparse(page.url).query)["data"][0]  # the tab's URL names its data set
            run_sa(page, k=3, epochs=20)
            link = page.get_by_role("link", name="link to this run").get_attribute("href")
            run_id = parse_qs(urlparse(link).query)["run"][0]
            assert parse_qs(urlparse(page.url).query)["run"] == [run_id]  # a reload would bring it back too
            before = steps_shown(page)
            assert len(before) == 3 and all("kept_" in s for s in before)
        # the server is gone (killed with its process group); a new one starts on the same store
        with run_streamlit(artifacts_dir / "streamlit-after-restart.log", env) as url:
            page.goto(f"{url}/sequential_attention?run={run_id}")
            page.get_by_text(re.compile(r"Selected 3 features in")).wait_for(timeout=60_000)
            wait_idle(page)
            assert steps_shown(page) == before
            page.get_by_role("combobox", name="Device").wait_for()  # inside the app's frame
            page.goto(f"{url}/data?data={data_id}")  # a tab reconnecting with its data set's link
            page.get_by_text("Current data set: kept").wait_for(timeout=60_000)
            page.screenshot(path=str(artifacts_dir / "run-store-after-restart.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(artifacts_dir / "FAILED-run-store-restart.png"), full_page=True)
        raise
    finally:
        context.close()
