"""User text made inert (seqattn.safe_text): CSV formula neutralising that reads back, markdown and plotly escaping."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from seqattn.safe_text import (
    FORMULA_TRIGGERS,
    escape_markdown,
    escape_plot_text,
    file_stem,
    neutralise_cell,
    read_csv,
    restore_cell,
    to_csv,
    unescape_markdown,
    WORD_JOINER,
)
from seqattn.trace import SelectionTrace

#: The issue's formula payloads (OWASP CSV injection) and one that looks like arithmetic.
FORMULA_NAMES = ["=1+1", '=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3"]
ROOT = Path(__file__).resolve().parents[2]


def assert_inert(cell: str) -> None:
    """A spreadsheet shows this cell as text: no formula trigger first (plain numbers aside)."""
    assert not cell.startswith(FORMULA_TRIGGERS) or cell.lstrip("+-").replace(".", "", 1).isdigit(), cell


def test_formula_names_are_neutralised_and_numbers_stay_numbers():
    for name in FORMULA_NAMES:
        assert neutralise_cell(name) == "'" + name
    for number in ("-2", "+3", "-1.5", "-1e-3", ".5"):
        assert neutralise_cell(number) == number  # a negative number stays a number
    assert neutralise_cell("plain name") == "plain name" and neutralise_cell("") == ""
    assert neutralise_cell("\tx") == "'\tx" and neutralise_cell("\rx") == "'\rx"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("=+-@'\t\rab1 .")), max_size=6))
def test_neutralising_is_reversible_and_always_inert(text):
    cell = neutralise_cell(text)
    assert restore_cell(cell) == text
    assert_inert(cell)


def test_csv_round_trip_keeps_names_numbers_and_headers():
    frame = pd.DataFrame({"name": FORMULA_NAMES + ["'=quoted"], "value": [-1.5, 2.0, -3.0, 0.0, -0.25, 1.0],
                          "=col": ["a", "b", "c", "d", "e", "f"]})
    text = to_csv(frame)
    rows = [line.split(",") for line in text.splitlines()]
    assert rows[0][2] == "'=col"  # headers too
    assert all(r[1].startswith("-") for r in rows[1:] if r[1].startswith("-")) and rows[1][1] == "-1.5"
    back = read_csv(text)
    assert back["name"].tolist() == frame["name"].tolist() and list(back.columns) == list(frame.columns)
    np.testing.assert_allclose(back["value"], frame["value"])


def test_trace_csv_neutralises_and_reads_back(tmp_path):
    names = FORMULA_NAMES + ["ok"]
    trace = SelectionTrace(method="omp", feature_names=names)
    for t, feature in enumerate([0, 1, 2, 3, 4]):
        scores = np.linspace(-1, 1, len(names))
        scores[[0, 1, 2, 3, 4][:t]] = np.nan
        trace.add_step(feature, scores, -0.01 * (t + 1), 0.5, 0.1 * t)
    text = trace.to_csv(tmp_path / "picks.csv")
    for line in text.splitlines()[1:]:
        assert_inert(line.split(",")[1])
    back = read_csv(tmp_path / "picks.csv")
    assert back["name"].tolist() == FORMULA_NAMES
    assert (back["marginal_gain"] < 0).all()  # negative numbers were written as numbers


def test_cli_csv_neutralises_formula_names(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, len(FORMULA_NAMES))), columns=FORMULA_NAMES)
    frame["label"] = (frame[FORMULA_NAMES[0]] + frame[FORMULA_NAMES[2]] > 0).astype(int)
    data, out = tmp_path / "bad_names.csv", tmp_path / "picks.csv"
    frame.to_csv(data, index=False)
    result = subprocess.run([sys.executable, "-m", "seqattn", "select", "--data", str(data), "--target", "label",
                             "-k", "5", "--method", "omp", "--out", str(out), "--quiet"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    raw = pd.read_csv(out, dtype=str)
    assert all(name.startswith("'") for name in raw["name"])  # every one of these names is formula-like
    assert sorted(read_csv(out)["name"]) == sorted(FORMULA_NAMES)


def test_markdown_escaping_shows_text_and_builds_no_link_image_or_html():
    image = "![px](http://127.0.0.1:9/img.png)"
    link = '<a href="http://127.0.0.1:9/x">x</a>'
    for name in (image, link, "[t](javascript:alert(1))", "**b** _i_ `c` $x$ :red[r] ~~s~~", "# h", "- item",
                 "1. item", "> quote", "www.example.com", "me@example.com", "a|b", "&lt;"):
        escaped = escape_markdown(name)
        assert unescape_markdown(escaped) == name
        # every character that opens a link, image, HTML, code, emphasis or a Streamlit directive is escaped
        for special in "[]<>`*$~|&#":
            assert escaped.count(special) == escaped.count("\\" + special), (name, escaped)
        # bare links: the renderer finds them after escapes are resolved; a word joiner breaks them
        assert "://" not in escaped.replace(WORD_JOINER + "://", "") and "www." not in escaped
        assert escaped.count("@") == escaped.count(WORD_JOINER + "@")
    assert escape_markdown("line\nbreak") == "line break"
    assert escape_markdown("header_only.csv: 3 rows") == "header_only.csv: 3 rows"  # plain text unchanged


def test_plot_text_escaping():
    assert escape_plot_text('<a href="http://x">x</a> & <b>') == '&lt;a href="http://x"&gt;x&lt;/a&gt; &amp; &lt;b&gt;'
    assert escape_plot_text("CD3E") == "CD3E"


def test_file_stem_keeps_only_safe_characters():
    assert file_stem("../../etc/passwd") == "etc_passwd"
    assert file_stem("<a href=x>.csv") == "a_href_x_csv" and file_stem("***") == "data"


def test_read_csv_accepts_a_buffer():
    assert read_csv(io.StringIO(to_csv(pd.DataFrame({"n": ["@x"]}))))["n"].tolist() == ["@x"]
