"""What the screens say agrees with the numbers beside them (issue 23 items 2-4, 6, 7), library side.

The pages only lay these out; the AppTests in ``tests/app/test_issue23_pages.py`` check the pages.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from seqattn.data.guards import id_like_columns, leak_warnings
from seqattn.data.tables import load_table
from seqattn.evaluation.compare import _Progress
from seqattn.plots.compare import step_scores_figure
from seqattn.plots.sparsity import block_mask_animation, latency_figure, pattern_heatmaps
from seqattn.sparsity.latency import LatencyReport, Timing


def table_with_row_id(loader, *, sort_by_target: bool) -> pd.DataFrame:
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"})
    if sort_by_target:
        frame = frame.sort_values("label", kind="stable").reset_index(drop=True)
    frame.insert(0, "row_id", np.arange(1, len(frame) + 1))
    return frame


# ------------------------------------------------------------------ item 2: row-ID features
def test_a_row_id_feature_is_named_a_row_id_not_a_leak(tmp_path):
    path = tmp_path / "cancer.csv"
    table_with_row_id(load_breast_cancer, sort_by_target=False).to_csv(path, index=False)
    dataset = load_table(path, target="label")
    assert "row_id" in id_like_columns(dataset)
    warnings = dataset.extra["warnings"]
    ids = [w for w in warnings if w.startswith("looks like a row ID: row_id — ")]
    assert len(ids) == 1 and "(1…569)" in ids[0] and "Drop it" in ids[0]
    assert not any("leak" in w and "row_id" in w for w in warnings)
    roles = {row["column"]: row for row in dataset.extra["columns"]}
    assert roles["row_id"]["row_id"] and roles["row_id"]["role"] == "feature"
    assert roles["label"]["role"] == "target" and roles["mean radius"]["type"] == "number"


def test_a_row_id_in_a_file_sorted_by_the_target_is_said_to_follow_the_sort_not_to_copy_the_target(tmp_path):
    path = tmp_path / "wine.csv"
    table_with_row_id(load_wine, sort_by_target=True).to_csv(path, index=False)
    dataset = load_table(path, target="label")
    ids = [w for w in dataset.extra["warnings"] if w.startswith("looks like a row ID: row_id")]
    assert len(ids) == 1 and "sorted by the target" in ids[0]
    assert not any("row_id" in w for w in leak_warnings(dataset))  # the old, wrong cause: "likely leak"


def test_a_measurement_with_distinct_whole_values_is_not_an_id(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"price": rng.choice(100_000, size=80, replace=False), "x": rng.normal(size=80),
                          "label": rng.integers(0, 2, size=80)})
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    dataset = load_table(path, target="label")
    assert id_like_columns(dataset) == []
    assert not any(row["row_id"] for row in dataset.extra["columns"])


def test_drop_rows_leaves_out_incomplete_rows_and_says_how_many(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40), "label": ["x", "y"] * 20})
    frame.loc[[2, 5], "a"] = np.nan
    frame.loc[[9], "label"] = np.nan  # a missing target goes too
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    dataset = load_table(path, target="label", impute="drop_rows")
    assert dataset.n_samples == 37 and np.isfinite(dataset.X).all()
    assert any(note.startswith("Dropped 3 of 40 rows (8%)") and "37 rows remain" in note
               for note in dataset.extra["notes"])
    summary = {row["column"]: row for row in dataset.extra["columns"]}
    assert summary["a"]["missing"] == 2 and summary["label"]["missing"] == 1  # the table as read


# ------------------------------------------------------------------ item 3: latency labels = bars
def report(kind: str = "linear") -> LatencyReport:
    """A noisy run where the median of per-round ratios (1.25×) differs from the ratio of medians (2.5×)."""
    dense = [0.010, 0.010, 0.010, 0.004, 0.004]
    sparse = [0.0125, 0.0125, 0.0125, 0.025, 0.025]
    ratios = [s / d for s, d in zip(sparse, dense)]
    return LatencyReport(kind=kind, config={"block_sparsity": 0.9}, baseline="dense",
                         timings=[Timing("dense", dense, [1.0] * 5), Timing("bsr", sparse, ratios)],
                         env={"device": "cpu", "load_average_1_5_15min": [1.0, 1.0, 1.0]})


def test_latency_bars_labels_and_whiskers_are_one_statistic_and_labels_sit_above_the_whiskers():
    figure = latency_figure([report()], "linear")
    bars = {t.name: t for t in figure.data if t.type == "bar"}
    labels = {t.name: t for t in figure.data if t.type == "scatter"}
    timing = report().timings[1]
    assert bars["bsr"].y[0] == pytest.approx(timing.ratio_quantile(0.5)) == pytest.approx(1.25)
    assert labels["bsr"].text[0].startswith(f"{bars['bsr'].y[0]:.2f}×")
    whisker_top = bars["bsr"].y[0] + bars["bsr"].error_y.array[0]
    assert labels["bsr"].y[0] >= whisker_top - 1e-12  # the text starts above the whisker, never crossed by it
    assert bars["dense"].y[0] == 1.0 and "baseline" in labels["dense"].text[0]
    top = figure.layout.yaxis.range[1]
    assert top > max(labels["bsr"].y)  # room for the label text
    assert "time ÷ dense" in figure.layout.yaxis.title.text


# ------------------------------------------------------------------ item 4: PSA titles per head
def test_pattern_heatmap_titles_give_each_heads_own_numbers():
    from seqattn.sparsity.attention_patterns import make_attention_inputs, run_patterns

    inputs = make_attention_inputs(256, 1, 4, 32, 32, random_state=0)
    suite = run_patterns(inputs, window_blocks=2, topk_blocks=2, tau=0.9, random_state=0)
    psa = next(name for name in suite.results if name.startswith("PSA"))
    titles = []
    for head in range(4):
        text = next(a.text for a in pattern_heatmaps(suite, head).layout.annotations if a.text.startswith(psa))
        result = suite.results[psa]
        assert f"keep {result.head_kept_fraction(head):.0%}" in text
        assert f"mass {float(result.per_head_mass[head]):.2f}" in text
        titles.append(text)
    assert len(set(titles)) > 1  # the heads differ, and so do their titles


# ------------------------------------------------------------------ item 6: SA++ progress and Pause
@pytest.mark.slow
def test_sapp_progress_is_one_count_over_all_methods_named_once_and_reported_at_once():
    from seqattn.data.builtins import load_builtin
    from seqattn.sparsity.block_pruning import sa_plus_plus

    reports: list[tuple[int, int, str, float]] = []
    started = time.perf_counter()

    def callback(step: int, total: int, message: str) -> bool:
        reports.append((step, total, message, time.perf_counter() - started))
        return False

    sa_plus_plus(load_builtin("digits"), sparsity=0.8, block_size=8, hidden=(32,), epochs=9, n_cycles=1,
                 callback=callback, device="cpu")
    steps = [s for s, _, _, _ in reports]
    assert steps == sorted(steps) and steps[-1] == reports[-1][1]  # never restarts from zero, ends full
    assert reports[0][2] == "preparing the data" and reports[0][3] < 5.0
    assert not any("SA++: SA++" in m for _, _, m, _ in reports)
    for index, method in enumerate(("SA++", "magnitude", "dense"), start=1):
        assert any(m.startswith(f"{method} (method {index} of 3): ") for _, _, m, _ in reports)


def controls_px(layout) -> tuple[float, float]:
    """Where Play/Pause and the slider start, in pixels below the plot area."""
    top = 100 if layout.margin.t is None else layout.margin.t  # plotly's default top margin
    area = layout.height - top - layout.margin.b  # plot area in pixels
    buttons_top, slider_top = -layout.updatemenus[0].y * area, -layout.sliders[0].y * area
    assert buttons_top < slider_top - 35  # the buttons' row ends before the slider's
    assert slider_top + 60 <= layout.margin.b  # the slider fits in the bottom margin
    return buttons_top, slider_top


def test_sapp_play_and_pause_sit_below_the_x_axis_title_and_above_the_slider():
    from seqattn.data.builtins import load_builtin
    from seqattn.sparsity.block_pruning import sa_plus_plus

    result = sa_plus_plus(load_builtin("digits"), sparsity=0.8, block_size=8, hidden=(32,), epochs=9, n_cycles=0,
                          baselines=False, device="cpu")
    buttons_top, _ = controls_px(block_mask_animation(result).layout)
    assert buttons_top >= 60  # plotly draws the x-axis tick labels and title in about the first 55 px


@pytest.mark.parametrize("n_layer", [1, 4])
def test_unit_mask_play_and_pause_sit_below_the_tick_labels_of_a_short_or_tall_grid(n_layer: int):
    """Placed in pixels like every animation's: paper offsets put them into a one-layer grid's tick labels."""
    from seqattn.plots.structured import unit_mask_animation
    from tests.support.structured_fakes import heads_only_result

    result = heads_only_result(n_layer)
    fig = unit_mask_animation(result, 0.5)
    buttons_top, _ = controls_px(fig.layout)
    assert buttons_top >= 30  # below the "H0".."H3" tick labels (about 20 px)
    assert [list(step.args[0]) for step in fig.layout.sliders[0].steps] == [[f.name] for f in fig.frames]


# ------------------------------------------------------------------ item 7: Compare
def test_step_chart_title_of_the_first_step_says_nothing_is_selected_yet():
    frame = pd.DataFrame({"name": ["a", "b"], "greedy_gain": [0.2, 0.1], "sa_attention": [0.6, 0.4],
                          "omp_correlation": [0.5, 0.3], "sa_pick": [True, False]})
    frame.attrs.update(step=0, selected_before=[])
    assert "nothing selected yet" in step_scores_figure(frame).layout.title.text
    frame.attrs.update(step=2, selected_before=[4, 1, 7])
    title = step_scores_figure(frame).layout.title.text
    assert "given SA's first 2 picks and 1 pinned feature" in title and "first 0" not in title


def test_compare_progress_keeps_counting_when_a_step_runs_past_its_estimate(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    texts: list[str] = []
    progress = _Progress(60.0, lambda step, total, text: texts.append(text) or False, None)
    with progress.stage(10.0):
        clock[0] += 5.0
        progress.report("SHAP (3/7)")
        clock[0] += 30.0  # three times its estimate, no fraction reported
        progress.report("SHAP (3/7)")
    assert "about" in texts[0] and "left" in texts[0]
    assert "35 s so far" in texts[1] and "taking longer than estimated (35 s so far)" in texts[1]
    with progress.stage(10.0):
        clock[0] += 4.0
        progress.report("retraining", 0.5)  # its own pace: 4 s left; the later 40 s at the finished pace (3.5×)
    assert texts[2] == "retraining · 39 s so far, about 2.4 min left"


@pytest.mark.slow
def test_shap_reports_progress_while_it_trains_and_explains_so_the_compare_text_moves():
    """Issue 23 item 7: the progress text froze at "SHAP (3/7)" for over a minute (one report per phase)."""
    from seqattn.data.synthetic import make_planted
    from seqattn.selectors.shap_rank import EXPLAIN_CHUNK_ROWS, shap_explain

    dataset = make_planted(n_samples=200, n_features=8, n_informative=2, random_state=0)
    reports: list[tuple[int, int, str]] = []
    explanation = shap_explain(dataset, n_background=10, n_explain=3 * EXPLAIN_CHUNK_ROWS, epochs=3, device="cpu",
                               callback=lambda step, total, message: reports.append((step, total, message)) or False)
    steps = [step for step, _, _ in reports]
    assert steps == sorted(steps) and steps[-1] == reports[-1][1]
    rows = [m for _, _, m in reports if m.startswith("computing SHAP values (")]
    assert rows[-3:] == [f"computing SHAP values ({n}/30 rows)" for n in (10, 20, 30)]
    assert sum(m.startswith("training the dense model (") for _, _, m in reports) >= 2
    assert explanation.values.shape[:2] == (30, 8)


# ------------------------------------------------------------------ item 1: the Data page's preview
def test_the_preview_shows_filled_cells_even_beyond_the_first_columns_and_rows_and_marks_only_them(tmp_path):
    from seqattn.plots.data import IMPUTED_COLOUR, imputed_cells, preview_frame, styled_preview

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(60, 15)).round(3), columns=[f"f{j}" for j in range(15)])
    frame["label"] = ["a", "b"] * 30
    frame.loc[[20, 30], "f13"] = np.nan  # past the 12 columns and the 8 rows a preview shows
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    dataset = load_table(path, target="label", impute="median")
    preview = preview_frame(dataset)
    assert "f13" in preview.columns and {21, 31} <= set(preview["row"]) and len(preview.columns) == 12 + 2
    marks = imputed_cells(dataset, preview)
    marked = [(int(preview.loc[i, "row"]), c) for i, c in zip(*np.nonzero(marks.to_numpy()))]
    assert sorted((row, marks.columns[c]) for row, c in marked) == [(21, "f13"), (31, "f13")]
    filled = preview.loc[preview["row"].isin([21, 31]), "f13"]
    assert np.allclose(filled, np.nanmedian(frame["f13"]))
    html = styled_preview(dataset).to_html()
    shaded = [rule.split("{")[0] for rule in html.split("}") if IMPUTED_COLOUR in rule]
    cells = [cell.strip().split("_", 2)[-1] for rule in shaded for cell in rule.split(",")]
    column = list(preview.columns).index("f13")
    rows = [i for i, row in enumerate(preview["row"]) if row in (21, 31)]
    assert sorted(cells) == [f"row{i}_col{column}" for i in rows]  # the shade sits on exactly the filled cells
