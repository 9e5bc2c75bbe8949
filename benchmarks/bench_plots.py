"""Cost of the SA animation figure: build time and payload per frame, per representation.

For 64 (digits 8×8), 765 (pbmc68k_reduced genes: not an image), 784 (MNIST
28×28) and 5000 (a 50×100 image) features, a synthetic SA-shaped trace with k
picks is drawn as sorted bars of every candidate and as what the app uses
instead above ``DEFAULT_MAX_BARS`` features: a heatmap on the image grid for
images, the top ``DEFAULT_MAX_BARS`` bars for anything else. The variants are
interleaved and repeated; medians are printed, with the second/first ratio.
Besides plotly's JSON, the light HTML rendering (``text/html``, what an
exported notebook keeps) is measured in kB.

    .venv/bin/python benchmarks/bench_plots.py [--k 10] [--repeats 5] [--browser]

Build = ``selection_animation`` (Python); serialise = ``fig.to_json()`` (what
Streamlit ships to the browser). ``--browser`` also opens the app's figure
(the HTML download, plotly.js inline) in headless Chromium via Playwright and
times (a) pressing ▶ Play until the ``plotly_animated`` event of the last
frame, against the nominal ``k × frame_ms``, and (b) the same animation with
zero frame duration, i.e. the pure render cost per frame.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seqattn.plots.export import light_html  # noqa: E402
from seqattn.plots.selection import DEFAULT_MAX_BARS, selection_animation  # noqa: E402
from seqattn.trace import SelectionTrace  # noqa: E402

SIZES = {64: (8, 8), 765: None, 784: (28, 28), 5000: (50, 100)}


def make_trace(n_features: int, k: int, seed: int = 0) -> SelectionTrace:
    rng = np.random.default_rng(seed)
    trace = SelectionTrace("sa", [f"feature_{i}" for i in range(n_features)], metric_name="accuracy", base_metric=0.1)
    taken: list[int] = []
    for t in range(k):
        scores = rng.random(n_features)
        scores[taken] = np.nan
        scores /= np.nansum(scores)
        pick = int(np.nanargmax(scores))
        taken.append(pick)
        trace.add_step(pick, scores, marginal_gain=0.05, val_metric=0.1 + 0.05 * t, seconds=t)
    return trace


def measure(trace: SelectionTrace, image_shape, max_bars: int) -> dict[str, float]:
    mean_image = np.random.default_rng(1).random(trace.n_features) if image_shape else None
    start = time.perf_counter()
    fig = selection_animation(trace, image_shape=image_shape, mean_image=mean_image, max_bars=max_bars)
    built = time.perf_counter()
    text = fig.to_json()
    serialised = time.perf_counter()
    frames = json.loads(text)["frames"]
    return {
        "build_ms": (built - start) * 1e3,
        "json_ms": (serialised - built) * 1e3,
        "total_kb": len(text) / 1e3,
        "frame_kb": statistics.median(len(json.dumps(f)) for f in frames) / 1e3,
        "light_kb": len(light_html(fig) or "") / 1e3,
    }


PLAY_TO_END_JS = """async () => {
  const gd = document.querySelector('.plotly-graph-div');
  const done = new Promise(resolve => gd.once('plotly_animated', resolve));
  const start = performance.now();
  [...document.querySelectorAll('g.updatemenu-button')][0].dispatchEvent(new MouseEvent('click', {bubbles: true}));
  await done;
  return performance.now() - start;
}"""
RENDER_ALL_JS = """async () => {
  const gd = document.querySelector('.plotly-graph-div');
  await Plotly.animate(gd, ['1'], {frame: {duration: 0, redraw: true}, transition: {duration: 0}, mode: 'immediate'});
  const start = performance.now();
  await Plotly.animate(gd, null, {frame: {duration: 0, redraw: true}, transition: {duration: 0}, mode: 'immediate'});
  return performance.now() - start;
}"""


def browser_times(k: int, repeats: int) -> None:
    """Play-to-last-frame and zero-delay render time of the app's figure in headless Chromium."""
    import tempfile

    from playwright.sync_api import sync_playwright

    frame_ms = 800
    print(f"\nBrowser (headless Chromium, Playwright): ▶ Play to the last of {k} frames "
          f"(nominal {k} × {frame_ms} ms = {k * frame_ms} ms), and all frames at zero delay; medians of {repeats}. "
          f"load average={os.getloadavg()[0]:.1f}")
    print(f"{'features':>8} {'play ms':>9} {'over nominal':>13} {'render ms/frame':>16}")
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        for n, shape in SIZES.items():
            mean_image = np.random.default_rng(1).random(n) if shape else None
            fig = make_trace(n, k).plot(image_shape=shape, mean_image=mean_image, frame_ms=frame_ms)
            path = Path(tmp) / f"anim_{n}.html"
            path.write_text(fig.to_html(include_plotlyjs=True, auto_play=False), encoding="utf-8")
            play, render = [], []
            for _ in range(repeats):
                page.goto(path.as_uri())
                page.wait_for_selector(".plotly-graph-div .main-svg")
                play.append(page.evaluate(PLAY_TO_END_JS))
                render.append(page.evaluate(RENDER_ALL_JS) / k)
            median_play = statistics.median(play)
            print(f"{n:>8} {median_play:>9.0f} {median_play - k * frame_ms:>+13.0f} {statistics.median(render):>16.1f}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time playback in headless Chromium")
    args = parser.parse_args()
    print(f"k={args.k}, repeats={args.repeats}, interleaved; medians. cpu_count={os.cpu_count()}, "
          f"load average={os.getloadavg()[0]:.1f} (shared machine: timings are noisy)")
    header = (f"{'features':>8} {'mode':>8} {'build ms':>9} {'ms/frame':>9} {'json ms':>8} {'total kB':>9} "
              f"{'kB/frame':>9} {'light kB':>9}")
    print(header)
    print("-" * len(header))
    for n, shape in SIZES.items():
        trace = make_trace(n, args.k)
        variants = {"bars": 10**9, "heatmap" if shape else f"top{DEFAULT_MAX_BARS}": 0 if shape else DEFAULT_MAX_BARS}
        results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        measure(trace, shape, DEFAULT_MAX_BARS)  # warm-up (imports, plotly validators)
        for _ in range(args.repeats):
            for name, max_bars in variants.items():
                results[name].append(measure(trace, shape, max_bars))
        medians = {v: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for v, rs in results.items()}
        first, second = variants
        for name, m in medians.items():
            used = "*" if (n <= DEFAULT_MAX_BARS) == (name == first) else " "
            print(f"{n:>8} {name + used:>8} {m['build_ms']:>9.1f} {m['build_ms'] / args.k:>9.1f} "
                  f"{m['json_ms']:>8.1f} {m['total_kb']:>9.1f} {m['frame_kb']:>9.1f} {m['light_kb']:>9.1f}")
        ratio = medians[second]["frame_kb"] / medians[first]["frame_kb"]
        build_ratio = medians[second]["build_ms"] / medians[first]["build_ms"]
        print(f"{'':>8} {second}/{first}: payload per frame {ratio:.2f}x, build time {build_ratio:.2f}x")
    print(f"* = the representation the app uses (all bars up to {DEFAULT_MAX_BARS} features; above: heatmap on "
          f"the image grid for images, the top {DEFAULT_MAX_BARS} bars otherwise).")
    if args.browser:
        browser_times(args.k, max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
