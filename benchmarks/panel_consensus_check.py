"""Does the consensus of B runs lose accuracy? Score each SA run's own panel and two ways of combining them.

Reads the per-run picks that ``bench_panels.py --runs-out`` records (pbmc68k_reduced only) and, per split and
panel size, puts through the benchmark's evaluator (logistic regression, held-out balanced accuracy; no
retraining of SA):

* the panel SA returned (the coverage rule's consensus, which keeps each type's share of the runs' picks);
* the plain consensus (:func:`seqattn.selectors.stability.consensus_order`: most runs, then earliest);
* every run's own first-k picks (mean, min, max over the runs);
* the t-test panel of the same training cells;

and counts the SA panel's genes per cell type (the type whose t-test turn put the gene into the pool).

    python benchmarks/bench_panels.py --datasets pbmc --splits 5 6 7 8 9 --methods sa ttest \
        --runs-out runs.json --out panels.csv
    python benchmarks/panel_consensus_check.py runs.json --size 20
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_panels  # noqa: E402  (the benchmark's data, splits and selectors)


def balanced_accuracy(dataset, train: np.ndarray, test: np.ndarray, panels: dict[str, list]) -> dict[str, float]:
    from seqattn.evaluation.panels import panel_metrics

    table = panel_metrics(dataset, panels, train, test, classifiers=("logreg",), structure=False)
    rows = table[(table["metric"] == "balanced_accuracy_logreg") & (table["cell_type"] == "")]
    return dict(zip(rows["panel"], rows["value"]))


def check_split(dataset, entry: dict, size: int) -> dict[str, float]:
    from seqattn.selectors.stability import consensus_order
    from seqattn.selectors.ttest import ttest_markers

    split = entry["split"]
    train, test = bench_panels.splits(dataset, [split])[split]
    names = list(dataset.feature_names)
    pool = ttest_markers(bench_panels.training_split(dataset, split), 3 * size)
    type_of = dict(zip(pool.selected, pool.settings["marker_types"]))
    runs = entry["runs"]
    panels = {"SA": list(entry["genes"]), "t-test": [names[u] for u in pool.selected[:size]],
              "plain consensus": [names[u] for u in consensus_order(runs, len(names), size)]}
    panels.update({f"run {b}": [names[u] for u in run[:size]] for b, run in enumerate(runs)})
    scores = balanced_accuracy(dataset, train, test, panels)
    per_run = [scores[f"run {b}"] for b in range(len(runs))]
    sa_types = Counter(dataset.class_names[type_of[names.index(g)]] for g in entry["genes"])
    print(f"split {split}: SA {scores['SA']:.3f}, plain consensus {scores['plain consensus']:.3f}, runs mean "
          f"{np.mean(per_run):.3f} (min {np.min(per_run):.3f}, max {np.max(per_run):.3f}), t-test "
          f"{scores['t-test']:.3f}; SA ∩ t-test {len(set(panels['SA']) & set(panels['t-test']))}/{size}", flush=True)
    print("   SA picks per type: " + ", ".join(f"{t} {n}" for t, n in sorted(sa_types.items())), flush=True)
    return {"SA": scores["SA"], "plain consensus": scores["plain consensus"], "runs mean": float(np.mean(per_run)),
            "t-test": scores["t-test"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="a bench_panels.py --runs-out file (pbmc)")
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--panel", default="SA", help="which SA panel label of the file")
    args = parser.parse_args(argv)
    dataset = bench_panels.load_pbmc()
    entries = [e for e in json.loads(args.runs.read_text())
               if e["size"] == args.size and e["panel"] == args.panel and e["runs"]]
    results = [check_split(dataset, e, args.size) for e in entries]
    for label in ("SA", "plain consensus", "runs mean", "t-test"):
        values = [r[label] for r in results]
        print(f"{label:16s} {np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}")


if __name__ == "__main__":
    main()
