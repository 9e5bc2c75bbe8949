"""Each page says what is true, as a new user meets it (issue 23 items 1-2, 4-8), through the real app shell.

Data: a column summary, row IDs left out by default (and a Drop button when kept), dropping incomplete rows.
Sequential Attention: Settings stay open after a run, an edit marks the results out of date, a held-out
check with a confusion matrix whose labels carry the check's own numbers. Compare: the caption repeats the
form's values, "Reuse SA run" is never ticked without a run, the library's evaluation epochs. Sparsity: the
PSA panel titles follow the chosen head.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from seqattn.evaluation.holdout import held_out_check
from seqattn.evaluation.retrain import EVALUATION_EPOCHS
from seqattn.safe_text import unescape_markdown

APP = str(Path(__file__).resolve().parents[2] / "app.py")
JOB_TIMEOUT_S = 180


def texts(elements) -> list[str]:
    return [unescape_markdown(e.value.replace("**", "")) for e in elements]


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(name: str) -> AppTest:
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    return ok(at.switch_page(f"pages/{name}.py").run())


def penguins_like(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """A row-number column, a text column, six feature groups, a few gaps: the shape of a public table."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"row_id": np.arange(1, n + 1)})
    table["bill"] = rng.normal(40, 5, n).round(1)
    table["flipper"] = rng.normal(200, 10, n).round(1)
    table["mass"] = rng.normal(4000, 300, n).round(0)
    table["depth"] = rng.normal(17, 2, n).round(1)
    table["island"] = rng.choice(["Biscoe", "Dream", "Torgersen"], n)
    table["sex"] = rng.choice(["male", "female"], n)
    table["species"] = np.where(table["bill"] + rng.normal(0, 2, n) > 40, "Adelie", "Gentoo")
    table.loc[[4, 11, 30], "flipper"] = np.nan
    return table


def upload(table: pd.DataFrame, name: str = "penguins.csv") -> AppTest:
    at = page("data")
    ok(at.radio(key="data_source").set_value("Upload").run())
    return ok(at.get("file_uploader")[0].upload(name, table.to_csv(index=False).encode()).run())


def upload_widget(at: AppTest, prefix: str) -> str:
    """The key of the upload's widget whose key starts with ``prefix`` ("drop:", "impute:"; the file's digest follows)."""
    widgets = [*at.selectbox, *at.multiselect]
    return next(w.key for w in widgets if (w.key or "").startswith(prefix))


# ------------------------------------------------------------------ Data page (items 1 and 2)
def test_data_page_summarises_columns_leaves_the_row_id_out_and_can_drop_incomplete_rows():
    at = upload(penguins_like())
    assert any("could not" in e.lower() or "missing" in e.lower() for e in texts(at.error))  # gaps: choose
    impute = at.selectbox(key=upload_widget(at, "impute:"))
    assert "drop rows with a missing value" in impute.options
    ok(impute.select("drop rows with a missing value").run())
    assert not at.error, texts(at.error)
    dataset = at.session_state["dataset"]
    assert dataset.n_samples == 87 and "row_id" not in dataset.feature_names
    assert any(note.startswith("Dropped 3 of 90 rows") for note in texts(at.info))
    drop = at.multiselect(key=upload_widget(at, "drop:"))
    assert drop.value == ["row_id"]
    assert any(c.startswith("Left out by default: row_id — a different whole number in every row")
               for c in texts(at.caption))
    summary = next(d.value for d in at.dataframe if "role" in d.value.columns).set_index("column")
    assert summary.loc["row_id", "role"] == "dropped (row ID)"
    assert summary.loc["species", "role"] == "target" and summary.loc["island", "type"] == "text"
    assert summary.loc["flipper", "missing"] == 3 and summary.loc["island", "distinct"] == 3


def test_a_kept_row_id_gets_a_warning_with_a_drop_button_that_drops_it():
    at = upload(penguins_like().dropna())
    drop_key = upload_widget(at, "drop:")
    ok(at.multiselect(key=drop_key).set_value([]).run())
    assert "row_id" in at.session_state["dataset"].feature_names
    warning = next(w for w in texts(at.warning) if w.startswith("looks like a row ID: row_id — "))
    assert "(1…90)" in warning and "leak" not in warning
    ok(at.button(key="data_drop_id:row_id").click().run())
    assert at.multiselect(key=drop_key).value == ["row_id"]
    assert "row_id" not in at.session_state["dataset"].feature_names


# ------------------------------------------------------------------ Sequential Attention page (item 5)
def run_sa(at: AppTest, k: int, epochs: int) -> AppTest:
    ok(at.switch_page("pages/sequential_attention.py").run())
    at.number_input(key="sa_k").set_value(k)
    at.number_input(key="sa_epochs").set_value(epochs)
    ok(at.button(key="sa_run").click().run())
    assert at.session_state["sa_job"].wait(JOB_TIMEOUT_S)
    return ok(at.run())


def test_sa_settings_stay_open_results_are_marked_out_of_date_and_the_held_out_check_is_labelled_truly():
    at = run_sa(page("data"), k=4, epochs=4)
    settings = next(e for e in at.expander if e.label == "Settings")
    assert settings.proto.expanded
    assert not any("Out of date" in w for w in texts(at.warning))
    ok(at.number_input(key="sa_k").set_value(5).run())
    assert next(e for e in at.expander if e.label == "Settings").proto.expanded  # still open after the edit
    stale = [w for w in texts(at.warning) if w.startswith("Out of date:")]
    assert len(stale) == 1 and "k 4 → 5" in stale[0]
    ok(at.number_input(key="sa_k").set_value(4).run())
    assert not any("Out of date" in w for w in texts(at.warning))  # back to the run's settings

    trace, dataset = at.session_state["sa_trace"], at.session_state["dataset"]
    check = held_out_check(dataset, list(trace.selected))
    metrics = {m.label: m for m in at.metric}
    picks = metrics["Held-out accuracy, the 4 picks"]
    assert picks.value == f"{check['selected']:.3f}"
    assert picks.proto.delta == f"{check['selected'] - check['all_features']:+.3f} vs all features"
    assert metrics["Held-out accuracy, all 64 features"].value == f"{check['all_features']:.3f}"
    assert any(f"trained on {check['n_train']} rows and tested on {check['n_test']} other rows" in c
               for c in texts(at.caption))
    confusion = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "sa_confusion" in c.proto.id]
    assert len(confusion) == 1
    assert confusion[0]["layout"]["yaxis"]["title"]["text"] == "true class"
    assert len(confusion[0]["data"][0]["z"]) == 10  # digits: ten classes


# ------------------------------------------------------------------ Compare page (item 7)
def test_compare_caption_repeats_the_forms_values_and_reuse_is_never_ticked_without_a_run():
    at = upload(penguins_like().dropna())
    ok(at.switch_page("pages/compare.py").run())
    reuse = at.checkbox(key="cmp_reuse_sa")
    assert reuse.value is False and reuse.disabled
    assert at.number_input(key="cmp_eval_epochs").value == EVALUATION_EPOCHS
    k = at.number_input(key="cmp_k").value
    ks = at.text_input(key="cmp_ks").value
    caption = next(c for c in texts(at.caption) if c.startswith("A run:"))
    assert f"k = {k}, test metric at k = {ks};" in caption
    assert f"retrained {EVALUATION_EPOCHS} epochs" in caption
    at.number_input(key="cmp_k").set_value(4)
    at.text_input(key="cmp_ks").set_value("1, 2, 4")
    ok(at.run())  # every edit reruns the page: the caption follows the widgets (no form holding them back)
    caption = next(c for c in texts(at.caption) if c.startswith("A run:"))
    assert "k = 4, test metric at k = 1, 2, 4;" in caption and "first 0" not in caption

    at = run_sa(at, k=2, epochs=4)
    ok(at.switch_page("pages/compare.py").run())
    reuse = at.checkbox(key="cmp_reuse_sa")
    assert reuse.value is True and not reuse.disabled
    caption = next(c for c in texts(at.caption) if c.startswith("A run:"))
    assert "k = 4, test metric at k = 1, 2, 4;" in caption  # the user's values outlived the visit to SA
    assert "SA reuses its page's run: its 2 picks, fewer than k = 4, so SA is tested only at k ≤ 2" in caption
    ok(at.number_input(key="cmp_k").set_value(2).run())
    ok(at.text_input(key="cmp_ks").set_value("1, 2").run())
    assert "SA reuses its page's run. " in next(c for c in texts(at.caption) if c.startswith("A run:"))


def test_sa_settings_outlive_a_visit_to_another_page():
    at = page("sequential_attention")
    ok(at.number_input(key="sa_k").set_value(7).run())
    ok(at.multiselect(key="sa_banned").set_value(["pixel (0,0)"]).run())
    ok(at.switch_page("pages/data.py").run())
    ok(at.switch_page("pages/sequential_attention.py").run())
    assert at.number_input(key="sa_k").value == 7 and at.multiselect(key="sa_banned").value == ["pixel (0,0)"]


# ------------------------------------------------------------------ Sparsity page (item 4)
@pytest.mark.slow
def test_psa_panel_titles_follow_the_chosen_head():
    at = page("sparsity")
    titles = []
    for head in range(2):
        ok(at.selectbox(key="attn_head").set_value(head).run())
        spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "attn_heat" in c.proto.id)
        titles.append(next(a["text"] for a in spec["layout"]["annotations"] if a["text"].startswith("PSA")))
    assert titles[0] != titles[1]


# ------------------------------------------------------------------ Home (item 8)
def test_the_tab_title_and_a_served_icon_come_before_the_slow_imports_with_a_spinner():
    import ast

    from app_support.page_config import APP_TITLE, app_icon

    tree = ast.parse(Path(APP).read_text(encoding="utf-8"))
    order = [ast.unparse(node).split("\n")[0] for node in tree.body if not isinstance(node, ast.Expr)
             or "configure_page" in ast.unparse(node)]
    first_call = next(i for i, line in enumerate(order) if line == "configure_page()")
    spinner = next(i for i, line in enumerate(order) if line.startswith("with st.spinner("))
    assert first_call < spinner  # the tab is titled before PyTorch loads, and a spinner shows while it does
    assert all("torch" not in line and "app_support.shell" not in line for line in order[:first_call])
    assert "Sequential Attention" in APP_TITLE
    icon = app_icon()
    assert icon.size == (32, 32) and icon.mode == "RGBA"  # drawn here: no font host to fetch it from
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    assert not at.exception and "Sequential Attention" in at.title[0].value
