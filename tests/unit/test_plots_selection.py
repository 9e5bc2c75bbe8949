"""The SA animation figure, the attention-vs-gain view and the step explanations, on hand-built traces."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from seqattn.stats import spearman as rank_correlation
from seqattn.evaluation.narrative import (attention_vs_greedy, explain_step, explain_trace, feature_unit,
                                         near_tie_warnings, stop_note)
from seqattn.plots.selection import (
    EARLIER_COLOR,
    MAX_GRID_CELLS,
    PICK_COLOR,
    PINNED_COLOR,
    attention_vs_gain_figure,
    pool_size,
    selection_animation,
)
from seqattn.trace import SelectionTrace


def make_trace(n_features: int, k: int, pinned: tuple[int, ...] = (), seed: int = 0) -> SelectionTrace:
    """A trace shaped like SA's: softmax scores over the candidates, NaN for selected/pinned."""
    rng = np.random.default_rng(seed)
    trace = SelectionTrace("sa", [f"f{i}" for i in range(n_features)], dataset="toy", metric_name="accuracy",
                           pinned=list(pinned), base_metric=0.5)
    taken = list(pinned)
    metric = 0.5
    for t in range(k):
        scores = rng.random(n_features)
        scores[taken] = np.nan
        scores /= np.nansum(scores)
        pick = int(np.nanargmax(scores))
        taken.append(pick)
        metric += 0.04 / (t + 1)
        trace.add_step(pick, scores, marginal_gain=0.04 / (t + 1), val_metric=metric, seconds=t)
    return trace


def frame_trace(frame, kind: str, position: int = 0):
    return [d for d in frame.data if d.type == kind][position]


def test_bar_mode_one_frame_per_pick_with_the_pick_highlighted_and_sorted():
    trace = make_trace(30, 6)
    fig = selection_animation(trace)
    assert len(fig.frames) == trace.k
    assert len(fig.layout.sliders[0].steps) == trace.k
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    for t, frame in enumerate(fig.frames):
        bars = frame_trace(frame, "bar", 0)
        names = list(bars.x)
        # only candidates are drawn: the earlier picks are gone, the count shrinks by one per step
        assert len(names) == 30 - t
        assert not set(trace.selected_names[:t]) & set(names)
        values = [v for v in bars.y]
        assert values == sorted(values, reverse=True)
        picked = names.index(trace.steps[t].name)
        assert picked == 0  # SA picks the largest attention weight
        assert bars.marker.color[picked] == PICK_COLOR
        assert bars.text[picked] == f"#{t + 1}"
        assert sum(c == PICK_COLOR for c in bars.marker.color) == 1
        # gains panel: steps 1..t+1 drawn, later ones empty; the current one highlighted
        gains = frame_trace(frame, "bar", 1)
        assert [v is not None for v in gains.y] == [i <= t for i in range(trace.k)]
        assert gains.marker.color[t] == PICK_COLOR
        assert all(c == EARLIER_COLOR for c in gains.marker.color[:t])
        assert trace.steps[t].name in frame.layout.title.text


def test_gains_axis_lists_picks_in_order_and_base_figure_shows_step_one():
    trace = make_trace(20, 4)
    fig = selection_animation(trace)
    gain_bar = [d for d in fig.data if d.name.startswith("marginal gain")][0]
    assert list(gain_bar.x) == [f"{i + 1}. {n}" for i, n in enumerate(trace.selected_names)]
    assert list(fig.data[0].x)[0] == trace.steps[0].name
    assert np.allclose(gain_bar.y[0], trace.steps[0].marginal_gain, rtol=1e-3)


def test_wide_non_image_data_is_a_ranked_bar_chart_not_a_grid():
    """765 genes are a ranked list: no 28×28 'feature grid' whose positions mean nothing (issue 23)."""
    trace = make_trace(765, 4)
    fig = selection_animation(trace, max_bars=30)
    assert not [d for d in fig.data if d.type == "heatmap"]
    assert "top 30 of 765" in fig.layout.annotations[0].text and "grid" not in fig.layout.annotations[0].text
    for t, frame in enumerate(fig.frames):
        bars = frame_trace(frame, "bar", 0)
        assert len(bars.x) == 30 and list(bars.y) == sorted(bars.y, reverse=True)
        assert bars.x[0] == trace.steps[t].name and bars.marker.color[0] == PICK_COLOR
        best = np.sort(trace.steps[t].scores[np.isfinite(trace.steps[t].scores)])[::-1][:30]
        assert list(bars.hovertext) == [trace.feature_names[int(np.flatnonzero(trace.steps[t].scores == v)[0])]
                                        for v in best]


def test_the_pick_is_always_among_the_bars():
    trace = SelectionTrace("omp", [f"f{i}" for i in range(50)])
    scores = np.linspace(1.0, 2.0, 50)
    trace.add_step(0, scores)  # a method may pick a candidate that is not the top scorer
    bars = frame_trace(selection_animation(trace, max_bars=10).frames[0], "bar", 0)
    assert len(bars.x) == 10 and "f0" in list(bars.x) and bars.marker.color[list(bars.x).index("f0")] == PICK_COLOR


def test_many_pixels_switch_to_heatmap_with_numbered_picks():
    trace = make_trace(300, 5, pinned=(7,))
    rows, cols = 15, 20
    fig = selection_animation(trace, max_bars=80, image_shape=(rows, cols))
    assert fig.data[0].type == "heatmap" and "image grid" in fig.layout.annotations[0].text
    last = fig.frames[-1]
    z = np.array(frame_trace(last, "heatmap").z, dtype=float)
    assert z.shape == (rows, cols)
    flat = z.ravel()[:300]
    scores = trace.steps[-1].scores  # shipped as whole % of the step's top score
    np.testing.assert_array_equal(flat, np.round(100 * scores / np.nanmax(scores)))
    assert np.nanmax(flat) == 100 and fig.data[0].zmin == 0 and fig.data[0].zmax == 100
    picks = frame_trace(last, "scatter", 0)
    assert list(picks.text) == ["P"] + [str(i + 1) for i in range(trace.k)]
    assert picks.marker.color[0] == PINNED_COLOR and picks.marker.color[-1] == PICK_COLOR
    feature = trace.selected[2]
    assert (picks.y[3], picks.x[3]) == divmod(feature, cols)


@pytest.mark.filterwarnings("ignore:All-NaN slice")  # the reference's padding blocks
def test_large_grids_are_max_pooled_and_frames_stay_small():
    trace = make_trace(5000, 4)
    rows, cols = 50, 100
    fig = selection_animation(trace, image_shape=(rows, cols))
    b = pool_size((rows, cols))
    assert b == 2 and fig.data[0].dx == 2 and fig.data[0].x0 == 0.5
    z = np.array(frame_trace(fig.frames[-1], "heatmap").z, dtype=float)
    assert z.shape == (-(-rows // b), -(-cols // b)) and z.size <= MAX_GRID_CELLS
    # every block shows the best of its (up to) four features, in % of the top score
    percent = np.round(100 * trace.steps[-1].scores / np.nanmax(trace.steps[-1].scores))
    grid = np.full((z.shape[0] * b, z.shape[1] * b), np.nan)
    grid[:rows, :cols] = np.append(percent, np.full(rows * cols - 5000, np.nan)).reshape(rows, cols)
    np.testing.assert_array_equal(z, np.nanmax(grid.reshape(z.shape[0], b, z.shape[1], b), axis=(1, 3)))
    # the pick is marked at its own (unpooled) cell, and the block it sits in names it on hover
    pick = trace.selected[-1]
    marks = frame_trace(fig.frames[-1], "scatter", 0)
    assert (marks.y[-1], marks.x[-1]) == divmod(pick, cols)
    r, c = divmod(pick, cols)
    assert trace.feature_names[pick] in fig.data[0].customdata[r // b][c // b].split(", ")
    sizes = [len(json.dumps(f)) for f in json.loads(fig.to_json())["frames"]]
    assert max(sizes) < 10_000


def test_image_data_gets_a_pixel_panel_over_the_average_image():
    trace = make_trace(64, 5)
    image = np.arange(64.0).reshape(8, 8)
    fig = selection_animation(trace, image_shape=(8, 8), mean_image=image)
    heatmaps = [d for d in fig.data if d.type == "heatmap"]
    assert len(heatmaps) == 1 and np.allclose(np.array(heatmaps[0].z, dtype=float), image)
    for t, frame in enumerate(fig.frames):
        pixels = frame.data[-1]
        assert pixels.type == "scatter"
        assert [(r, c) for r, c in zip(pixels.y, pixels.x)] == [divmod(f, 8) for f in trace.selected[: t + 1]]
        assert list(pixels.text) == [str(i + 1) for i in range(t + 1)]


def test_frames_carry_plain_lists_not_typed_arrays():
    # Plotly.animate does not decode base64 typed arrays: an animated heatmap would go blank.
    fig = selection_animation(make_trace(300, 3), image_shape=(15, 20))
    payload = json.loads(fig.to_json())
    text = json.dumps(payload["frames"])
    assert "bdata" not in text


def test_empty_trace_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="no steps"):
        selection_animation(SelectionTrace("sa", ["a", "b"]))


def test_rank_correlation_and_attention_vs_gain_figure():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))
    fig = attention_vs_gain_figure(["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1], [3, 2, 1, 0], picked="a")
    assert "ρ = 1.00" in fig.layout.title.text
    assert fig.data[0].marker.color[0] == PICK_COLOR


def test_explanations_match_the_documented_wording():
    trace = SelectionTrace("sa", [f"pixel ({r},{c})" for r in range(8) for c in range(8)], metric_name="accuracy",
                           base_metric=0.75)
    first = np.full(64, 1 / 64)
    trace.add_step(0, first, marginal_gain=0.06, val_metric=0.81)
    second = np.full(64, np.nan)
    second[1:] = 0.82 / 62
    second[36] = 0.18
    trace.add_step(36, second, marginal_gain=0.06, val_metric=0.87)
    text = explain_step(trace, 1, unit="pixels")
    assert text == ("step 2: among 63 remaining pixels, the attention put 11× the uniform share on pixel (4,4) "
                    "(runner-up pixel (0,1): 0.83×); adding it raised validation accuracy from 0.810 to 0.870.")
    # an exactly uniform first step is a near-tie, and says so with a ratio, not a rounded percentage
    assert "1.00× the uniform share on pixel (0,0) (runner-up pixel (0,1): 1.00×) — a near-tie" in \
        explain_step(trace, 0, unit="pixels")
    warning = near_tie_warnings(trace)
    assert warning == ["Pick 1 (pixel (0,0), 1.00× the uniform share) was a near-tie with pixel (0,1), "
                       "pixel (0,2), pixel (0,3) and 60 more: train longer, or treat them as interchangeable."]
    assert "from 0.750 to 0.810" in explain_step(trace, 0, unit="pixels")
    assert feature_unit(64, (8, 8)) == "pixels" and feature_unit(10, None) == "features"


def test_a_pick_flagged_for_not_standing_out_is_not_called_a_tie_with_a_runner_up_half_its_weight():
    """digits, default run: "Pick 10 (pixel (4,4), 13× the uniform share) was a near-tie with pixel (0,6)" while the
    step said "runner-up pixel (0,6): 6.8×". The flag came from the separation rule (the candidates' attention was
    spread so widely that the pick did not stand out from noise), not from a close runner-up."""
    names = [f"f{i}" for i in range(40)]
    trace = SelectionTrace("sa", names, metric_name="accuracy")
    scores = np.geomspace(0.45, 0.02, 40)  # wide, smooth spread: no gap between the leader and the rest
    scores[0], scores[1] = 1.0, 0.5  # runner-up at half the pick's weight
    trace.add_step(0, scores / scores.sum())
    step = trace.steps[0]
    assert step.near_tie and step.confidence >= 1.5 and step.runner_up == 1
    runner = step.confidence * step.runner_up_weight / step.score
    (warning,) = near_tie_warnings(trace)
    assert "near-tie with" not in warning, warning
    assert warning.startswith(f"Pick 1 (f0, {step.confidence:.1f}× the uniform share) was a near-tie: it did not "
                              "stand out from the other candidates more than noise would")
    assert f"runner-up f1: {runner:.1f}×" in warning
    close = SelectionTrace("sa", names, metric_name="accuracy")  # a runner-up within 10 %: still "a near-tie with"
    tie = np.full(40, 1.0)
    tie[0], tie[1] = 1.3, 1.25
    close.add_step(0, tie / tie.sum())
    assert "was a near-tie with f1" in near_tie_warnings(close)[0]


def test_explain_trace_mentions_pins_bans_and_early_stop_and_other_methods():
    trace = make_trace(10, 2, pinned=(3,))
    trace.banned = [4]
    trace.stopped_early = True
    lines = explain_trace(trace)
    assert lines[0] == "Before step 1 — pinned (always selected): f3; banned (never candidates): f4."
    assert len(lines) == 1 + trace.k + 1 and lines[-1] == stop_note(trace)
    assert lines[-1] == "Stopped early (Stop pressed): kept the 2 features picked before Stop was pressed."
    omp = SelectionTrace("omp", ["a", "b", "c"], metric_name="R²")
    omp.add_step(2, np.array([0.1, 0.2, 0.9]), val_metric=0.4)
    assert explain_step(omp, 0) == "step 1: among 3 remaining features, omp picked c with score 0.9, the highest; " \
                                   "validation R² is now 0.400."


def test_the_stop_note_names_the_cause_stop_or_the_time_limit_with_or_without_picks():
    trace = make_trace(10, 2)
    assert stop_note(trace) == ""  # ran to the end
    trace.stopped_early = True
    trace.settings.update(stop_reason="time limit", max_seconds=1800)
    assert stop_note(trace, "genes") == ("Stopped at the training time limit (30 min): kept the 2 genes picked so "
                                         "far. Lower k (or set a small fixed number of epochs) for a full run.")
    nothing = SelectionTrace("sa", ["a", "b"], stopped_early=True, settings={"stop_reason": "time limit",
                                                                            "max_seconds": 3})
    assert stop_note(nothing).startswith("The training time limit (3 s) ran out before the first pick")
    nothing.settings = {"stop_reason": "stopped"}
    assert stop_note(nothing).startswith("Stopped before the first pick") and "time limit" not in stop_note(nothing)


def test_attention_vs_greedy_aligns_by_feature_not_by_row_order():
    trace = make_trace(6, 2)
    scores = trace.steps[1].scores
    candidates = [i for i in range(6) if np.isfinite(scores[i])]
    # gains that rank exactly like the attention scores, given in a scrambled row order
    gains = pd.DataFrame({"feature": candidates[::-1], "name": [f"f{i}" for i in candidates[::-1]],
                          "gain": [scores[i] * 10 for i in candidates[::-1]]})
    table, rho = attention_vs_greedy(trace, 1, gains)
    assert rho == pytest.approx(1.0)
    assert list(table["attention_rank"]) == list(table["gain_rank"]) == list(range(1, len(candidates) + 1))
    assert table.loc[table["picked"], "feature"].item() == trace.steps[1].feature


def test_trace_plot_is_the_animation_built_once_per_trace():
    trace = make_trace(64, 3)
    image = np.arange(64.0)
    first = trace.plot(image_shape=(8, 8), mean_image=image)
    assert trace.plot(image_shape=(8, 8), mean_image=image.copy()) is first  # reused, not rebuilt
    assert first.to_json() == selection_animation(trace, image_shape=(8, 8), mean_image=image).to_json()
    trace.add_step(int(np.flatnonzero(np.isfinite(trace.steps[-1].scores))[0]), trace.steps[-1].scores)
    again = trace.plot(image_shape=(8, 8), mean_image=image)
    assert again is not first and len(again.frames) == 4
    assert trace.plot() is not again  # other arguments, another figure


def test_the_animation_carries_a_light_offline_html_rendering_beside_plotly_json(monkeypatch):
    """nbconvert drops plotly's JSON; the text/html beside it keeps the animation, without plotly.js or any
    network fetch, and user text cannot close its script."""
    import plotly.io as pio

    from seqattn.plots.export import PLOTLY_MIME, light_figure_spec

    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # what a Jupyter kernel uses
    trace = make_trace(64, 4)
    trace.feature_names[trace.selected[1]] = "</script><script>alert(1)</script>"
    trace.steps[1].name = trace.feature_names[trace.selected[1]]
    fig = trace.plot(image_shape=(8, 8), mean_image=np.arange(64.0))
    bundle = fig._repr_mimebundle_()
    assert PLOTLY_MIME in bundle and "text/html" in bundle
    page = bundle["text/html"]
    assert page.count("</script>") == 2 and "alert(1)</script>" not in page  # the name stays inside the JSON
    assert "src=" not in page and "require(" not in page and "cdn" not in page.lower()
    spec = light_figure_spec(fig)
    assert len(spec["frames"]) == 4 and "template" not in spec["layout"]
    assert json.dumps(spec["frames"], allow_nan=False)  # plain JSON: no NaN, no typed arrays
    assert len(page) < 80_000  # the figure's data and a ~20 kB renderer, not plotly.js's 4.8 MB
    assert fig.layout.updatemenus[0].buttons[0].label == "▶ Play"
