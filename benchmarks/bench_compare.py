"""Test accuracy and wall time of every selection method on digits and breast cancer.

For each data set a stratified 25 % test split is held out first; every method
selects k = max(ks) features on the remaining 75 % only, and a fresh MLP
(``seqattn.models.MLP``) is trained on each method's first k picks and scored
on the untouched test rows. Each seed re-runs the selection (for the methods
that have randomness) *and* the retraining with that seed, so mean ± std covers
both. Wall time is the median over seeds of each method's own run (including
its per-step validation refits), measured in one process, methods interleaved
per seed.

    .venv/bin/python benchmarks/bench_compare.py            # 5 seeds, k = 5, 10, 20
    .venv/bin/python benchmarks/bench_compare.py --seeds 2 --datasets digits

``--page-defaults`` instead times exactly what the Compare page runs with its
defaults on digits (every method, k = 10, k values 1, 2, 5, 10, seeds 0–2,
the MLP retrained 30 epochs per (method, k, seed), SA on its automatic budget, SHAP 50/100
rows, per-seed test splits): wall time from call to result, per-method
selection seconds and the mean ± std table. ``--code DIR`` imports seqattn
from another checkout (e.g. ``git archive <commit> | tar -x -C DIR``) so an
older version can be timed with the same script, side by side.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

_code = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv else str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, _code)

import pandas as pd  # noqa: E402
import torch  # noqa: E402

try:
    from seqattn.data.builtins import load_builtin  # noqa: E402
    from seqattn.evaluation.compare import ALL_METHODS, DEFAULT_METHODS, compare_methods, trace_seconds  # noqa: E402
    from seqattn.evaluation.retrain import holdout  # noqa: E402
    from seqattn.selectors import METHOD_LABELS  # noqa: E402
except ImportError:  # --code: a checkout from before the package layout of 2026-11-26
    from seqattn.builtins import load_builtin  # noqa: E402
    from seqattn.comparison import ALL_METHODS, METHOD_LABELS, compare_methods, trace_seconds  # noqa: E402
    from seqattn.evaluate import holdout  # noqa: E402

    DEFAULT_METHODS = ALL_METHODS


def run(datasets: list[str], seeds: int, ks: list[int], methods: list[str], epochs: int, threads: int) -> pd.DataFrame:
    torch.set_num_threads(threads)
    rows = []
    for name in datasets:
        full = load_builtin(name)
        train, test = holdout(full, 0.25, random_state=0)
        for seed in range(seeds):
            started = time.perf_counter()
            result = compare_methods(
                train, methods, max(ks), ks=ks, seeds=[seed], eval_model="mlp", eval_epochs=epochs,
                random_state=seed, device="cpu", test=test,
                method_options={"shap": {"n_background": 50, "n_explain": 100}},
            )
            for method, message in result.errors.items():
                print(f"  {name} seed {seed}: {method} skipped: {message}", flush=True)
            for _, r in result.accuracy.iterrows():
                rows.append({"dataset": name, "method": r["method"], "k": int(r["k"]), "seed": seed,
                             "metric": r["metric"], "value": float(r["value"]),
                             "seconds": trace_seconds(result.traces[r["method"]])})
            print(f"  {name} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    return pd.DataFrame(rows)


def table(frame: pd.DataFrame, ks: list[int]) -> str:
    lines = []
    for name, part in frame.groupby("dataset", sort=False):
        metric = part["metric"].iloc[0]
        header = "| method | " + " | ".join(f"k={k} test {metric}" for k in ks) + " | wall s (median) |"
        lines += [f"\n{name} (mean ± std over {part['seed'].nunique()} seeds)\n", header,
                  "|" + "---|" * (len(ks) + 2)]
        for method, mpart in part.groupby("method", sort=False):
            cells = []
            for k in ks:
                v = mpart.loc[mpart["k"] == k, "value"]
                cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}" if len(v) else "–")
            seconds = mpart.groupby("seed")["seconds"].first().median()
            lines.append(f"| {METHOD_LABELS.get(method, method)} | " + " | ".join(cells) + f" | {seconds:.2f} |")
    return "\n".join(lines)


PAGE_DEFAULTS = {"k": 10, "ks": [1, 2, 5, 10], "seeds": [0, 1, 2], "eval_model": "mlp", "eval_epochs": 30,
                 # the page's "SA epochs" field defaults to 0, which it passes as None: the automatic budget
                 "method_options": {"sa": {"epochs": None}, "shap": {"n_background": 50, "n_explain": 100}}}


def page_defaults(threads: int) -> None:
    """The Compare page's default run on digits: wall time, per-method seconds, the accuracy table."""
    import seqattn

    torch.set_num_threads(threads)
    dataset = load_builtin("digits")
    load = os.getloadavg()
    print(f"Compare page defaults on digits ({dataset.n_samples}×{dataset.n_features}), seqattn from "
          f"{Path(seqattn.__file__).parent.parent}, torch {threads} thread(s), load average {load[0]:.1f}", flush=True)
    started = time.perf_counter()
    result = compare_methods(dataset, list(DEFAULT_METHODS), PAGE_DEFAULTS["k"], ks=PAGE_DEFAULTS["ks"],
                             seeds=PAGE_DEFAULTS["seeds"], eval_model=PAGE_DEFAULTS["eval_model"],
                             eval_epochs=PAGE_DEFAULTS["eval_epochs"], random_state=0, device="cpu",
                             method_options=PAGE_DEFAULTS["method_options"])
    wall = time.perf_counter() - started
    seconds = ", ".join(f"{m} {trace_seconds(t):.1f}" for m, t in result.traces.items())
    print(f"wall time {wall:.1f} s (load average at the end {os.getloadavg()[0]:.1f}); selection seconds: {seconds}")
    summary = result.summary()
    table = summary.assign(cell=summary["mean"].map("{:.3f}".format) + " ± " + summary["std"].map("{:.3f}".format))
    print(table.pivot(index="method", columns="k", values="cell").reindex(list(result.traces)).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(ALL_METHODS))
    parser.add_argument("--epochs", type=int, default=40, help="epochs of the evaluation MLP")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (pinned)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the per-seed rows here")
    parser.add_argument("--page-defaults", action="store_true", help="time the Compare page's default run on digits")
    parser.add_argument("--code", default=None, help="import seqattn from this checkout instead of this one")
    args = parser.parse_args()
    if args.page_defaults:
        page_defaults(args.threads)
        return

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"bench_compare: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {args.threads} thread(s), device cpu, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}", flush=True)
    print(f"datasets {args.datasets}, seeds {args.seeds}, k {args.ks}, evaluation MLP {args.epochs} epochs; "
          f"selection on 75 %, test on the held-out 25 %", flush=True)
    started = time.perf_counter()
    frame = run(args.datasets, args.seeds, args.ks, args.methods, args.epochs, args.threads)
    print(table(frame, args.ks))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end {load[0]:.1f}")
    if args.csv is not None:
        frame.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
