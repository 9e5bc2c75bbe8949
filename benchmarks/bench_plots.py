"""Cost of the SA animation figure: build time and payload per frame, bars vs heatmap.

For 64 (digits), 765 (pbmc68k_reduced), 784 (MNIST) and 5000 features, a
synthetic SA-shaped trace with k picks is drawn as sorted bars (every
candidate a bar) and as a heatmap on the feature grid (what the app uses
above ``DEFAULT_MAX_BARS`` features). The variants are interleaved and
repeated; medians are printed, with the heatmap/bars ratio.

    .venv/bin/python benchmarks/bench_plots.py [--k 10] [--repeats 5]

Build = ``selection_animation`` (Python); serialise = ``fig.to_json()`` (what
Streamlit ships to the browser). Browser rendering time is not measured here.
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

from seqattn.plots.selection import DEFAULT_MAX_BARS, selection_animation  # noqa: E402
from seqattn.trace import SelectionTrace  # noqa: E402

SIZES = {64: (8, 8), 765: None, 784: (28, 28), 5000: None}


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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"k={args.k}, repeats={args.repeats}, interleaved; medians. cpu_count={os.cpu_count()}, "
          f"load average={os.getloadavg()[0]:.1f} (shared machine: timings are noisy)")
    header = f"{'features':>8} {'mode':>8} {'build ms':>9} {'ms/frame':>9} {'json ms':>8} {'total kB':>9} {'kB/frame':>9}"
    print(header)
    print("-" * len(header))
    for n, shape in SIZES.items():
        trace = make_trace(n, args.k)
        variants = {"bars": 10**9, "heatmap": 0}
        results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        measure(trace, shape, DEFAULT_MAX_BARS)  # warm-up (imports, plotly validators)
        for _ in range(args.repeats):
            for name, max_bars in variants.items():
                results[name].append(measure(trace, shape, max_bars))
        medians = {v: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for v, rs in results.items()}
        for name, m in medians.items():
            used = "*" if (n <= DEFAULT_MAX_BARS) == (name == "bars") else " "
            print(f"{n:>8} {name + used:>8} {m['build_ms']:>9.1f} {m['build_ms'] / args.k:>9.1f} "
                  f"{m['json_ms']:>8.1f} {m['total_kb']:>9.1f} {m['frame_kb']:>9.1f}")
        ratio = medians["heatmap"]["frame_kb"] / medians["bars"]["frame_kb"]
        build_ratio = medians["heatmap"]["build_ms"] / medians["bars"]["build_ms"]
        print(f"{'':>8} heatmap/bars: payload per frame {ratio:.2f}x, build time {build_ratio:.2f}x")
    print(f"* = the representation the app uses (bars up to {DEFAULT_MAX_BARS} features, heatmap above).")


if __name__ == "__main__":
    main()
