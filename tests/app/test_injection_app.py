"""User-supplied names through the pages (issue 24 items 6 and 7), driven with AppTest.

* Every CSV download (SA picks, Compare's summary / accuracy rows / rankings,
  the gene panel and its per-type expression) neutralises formula-like names
  (``=1+1``, ``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(1)``, ``-2+3``) and
  reads back to the same names with ``seqattn.safe_text.read_csv``.
* Column names holding markdown or HTML (a remote image, a link) show as text
  in the near-tie warning, the step-by-step text and captions, and as escaped
  text in the charts' labels, titles and hovers.
The browser-level check (no request leaves the page) is
``tests/browser/test_injection_browser.py``.
"""
from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from tests.support.app_helpers import run_compare, run_sa, uploaded

from seqattn.safe_text import (FORMULA_TRIGGERS, WORD_JOINER, escape_markdown, escape_plot_text, read_csv,
                               unescape_markdown)

FORMULA_NAMES = ["=1+1", '=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3"]
FORMULA_CLASSES = ["=A1", "@B"]
IMAGE = "![px](http://127.0.0.1:9/img.png)"
LINK = '<a href="http://127.0.0.1:9/x">x</a>'
MARKUP_NAMES = [IMAGE, LINK, IMAGE.replace("img", "img2"), LINK.replace("/x", "/y")]


@pytest.fixture
def media(monkeypatch) -> list[MemoryMediaFileStorage]:
    """The media stores AppTest creates per run (download buttons put their data there)."""
    import streamlit.testing.v1.app_test as app_test_module

    stores: list[MemoryMediaFileStorage] = []

    class Recording(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", Recording)
    return stores


def download(at: AppTest, stores, key: str) -> str:
    """The text a download button (by key) serves, from the last run's media store."""
    button = next(b for b in at.get("download_button") if b.proto.id.endswith(f"-{key}"))
    return stores[-1].get_file(button.proto.url.rsplit("/", 1)[1]).content.decode()


def table(names: list[str], classes: list[str], seed: int = 0, n: int = 80) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(names))).round(4), columns=names)
    frame["label"] = np.where(frame[names[0]] + frame[names[1]] > 0, classes[0], classes[1])
    return frame.to_csv(index=False).encode()


def assert_no_formula_cells(text: str) -> None:
    """No cell (headers included) starts with a formula trigger, except plain numbers."""
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(FORMULA_TRIGGERS) or re.fullmatch(r"[+-]?[\d.]+(e[+-]?\d+)?", cell), cell


@pytest.mark.slow
def test_every_csv_download_neutralises_formula_names_and_reads_back(media):
    at = run_sa(uploaded("formulas.csv", table(FORMULA_NAMES, FORMULA_CLASSES)), k=3, epochs=3)
    trace = at.session_state["sa_trace"]
    assert set(trace.selected_names) <= set(FORMULA_NAMES)
    sa_csv = download(at, media, "sa_dl_csv")
    assert_no_formula_cells(sa_csv)
    assert read_csv(sa_csv)["name"].tolist() == trace.selected_names

    at.switch_page("pages/gene_panel.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    panel = download(at, media, "gp_dl_panel")
    by_type = download(at, media, "gp_dl_types")
    for text in (panel, by_type):
        assert_no_formula_cells(text)
    assert read_csv(panel)["gene"].tolist() == trace.selected_names
    assert sorted(set(read_csv(by_type)["cell_type"])) == sorted(FORMULA_CLASSES)
    assert sorted(set(read_csv(by_type)["gene"])) == sorted(trace.selected_names)

    at = run_compare(at, ["omp", "anova"], k=5)
    result = at.session_state["cmp_result"]
    for key in ("cmp_dl_summary", "cmp_dl_rows", "cmp_dl_rankings"):
        assert_no_formula_cells(download(at, media, key))
    rankings = read_csv(download(at, media, "cmp_dl_rankings"), index_col="rank")
    assert sorted(rankings["OMP"]) == sorted(FORMULA_NAMES)
    assert rankings.values.tolist() == result.rankings().values.tolist()
    rows = read_csv(download(at, media, "cmp_dl_rows"))
    assert rows["features"].tolist() == result.accuracy["features"].tolist()


def shown_markdown(at: AppTest) -> list[str]:
    """Every markdown source on the page (markdown, captions, alerts) but the app's own run link."""
    return [e.value for kind in ("markdown", "caption", "warning", "info", "error") for e in at.get(kind)
            if not e.value.startswith("Kept on this server")]


def assert_markdown_is_text(source: str) -> None:
    """The source builds no image, link or HTML: every bracket and angle bracket is escaped, no bare URL."""
    for special in "[]<>":
        assert source.count(special) == source.count("\\" + special), source
    assert "://" not in source.replace(WORD_JOINER + "://", ""), source  # no bare link either


def test_markup_in_names_shows_as_text_in_warnings_steps_and_charts():
    at = run_sa(uploaded("markup.csv", table(MARKUP_NAMES, ["yes", "no"], seed=3)), k=2, epochs=2)
    trace = at.session_state["sa_trace"]
    assert set(trace.selected_names) <= set(MARKUP_NAMES)
    warnings = [w.value for w in at.warning if "near-tie" in w.value]
    assert warnings, "two epochs on noise: the picks are near-ties"
    steps = [m.value for m in at.markdown if m.value.startswith("- step 1:")]
    assert len(steps) == 1
    for source in warnings + steps:
        assert_markdown_is_text(source)
        assert any(escape_markdown(name) in source for name in MARKUP_NAMES)  # the name, escaped
        assert any(name in unescape_markdown(source) for name in MARKUP_NAMES)  # ... reads as itself
    for source in shown_markdown(at):
        assert_markdown_is_text(source)

    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("-sa_animation"))
    texts = strings_in(spec)
    assert not [t for t in texts if "<a href" in t]
    assert escape_plot_text(trace.selected_names[0]) in texts  # a tick label / hover text
    assert escape_plot_text(trace.selected_names[0]) in spec["frames"][0]["layout"]["title"]["text"]


@pytest.mark.slow
def test_markup_in_names_is_escaped_on_the_compare_page():
    at = run_sa(uploaded("markup.csv", table(MARKUP_NAMES, ["yes", "no"], seed=3)), k=2, epochs=2)
    at = run_compare(at, ["sa", "omp", "anova"], k=2)
    at.switch_page("pages/compare.py").run()
    for source in shown_markdown(at):
        assert_markdown_is_text(source)
    texts = [t for c in at.get("plotly_chart") for t in strings_in(json.loads(c.proto.spec))]
    assert texts and not [t for t in texts if "<a href" in t]  # plotly renders HTML tags, not markdown
    shown = {escape_plot_text(name) for name in MARKUP_NAMES}
    assert shown & set(texts)  # the step chart's candidate names, escaped


def strings_in(value) -> list[str]:
    """Every string in a plotly spec (labels, titles, hover texts, tick texts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []
