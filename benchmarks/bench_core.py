"""The core's speed, this checkout against another, side by side: SA's optimizer steps and Compare's evaluation.

Issue 21 restructured SA's training (``SATrainer``) and merged the two MLP
trainers into one (``seqattn.models.train_mlps``); neither may cost speed. This
script times, in fresh worker processes that alternate between the two
checkouts (``--code`` is the other one, e.g. ``git archive main | tar -x -C DIR``):

* **SA steps**: ``SequentialAttentionSelector(10, gain_model="none")`` on digits
  and on pbmc68k_reduced (automatic budget), seconds per optimizer step
  (wall time of the fit / ``n_iter_``);
* **Compare's evaluation**: ``accuracy_vs_k`` of three traces (OMP, ANOVA F,
  mutual information; k = 10) at k = 1, 2, 5, 10 × seeds 0–2 on digits, the
  MLP retrained 30 epochs — what the Compare page runs after each method.

Every worker pins torch to one thread, warms up once and reports one timed
repetition; medians over ``--rounds`` rounds, the ratio this/other per round,
and the load average are printed. Without ``--code`` (or with ``--epochs-table``)
it prints the held-out accuracy of the evaluation MLP at 30, 40 and 60 epochs
(why ``EVALUATION_EPOCHS`` is 30).

    .venv/bin/python benchmarks/bench_core.py --code /tmp/main-checkout --rounds 5
    .venv/bin/python benchmarks/bench_core.py --epochs-table
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def worker(kind: str) -> dict:
    """One timed repetition in this process (after one warm-up), of the checkout on sys.path."""
    import torch

    torch.set_num_threads(1)
    from seqattn.data.builtins import load_builtin
    from seqattn.selectors import run_method
    from seqattn.selectors.sequential_attention import SequentialAttentionSelector

    if kind.startswith("sa:"):
        dataset = load_builtin(kind[3:])
        SequentialAttentionSelector(3, gain_model="none", device="cpu").fit_dataset(dataset)  # warm-up
        started = time.perf_counter()
        selector = SequentialAttentionSelector(10, gain_model="none", device="cpu").fit_dataset(dataset)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "steps": int(selector.n_iter_), "per_step": seconds / selector.n_iter_,
                "picks": [int(i) for i in selector.trace_.selected]}
    from seqattn.evaluation.retrain import accuracy_vs_k

    dataset = load_builtin("digits")
    traces = {m: run_method(dataset, m, 10, random_state=0) for m in ("omp", "anova", "mutual_info")}
    accuracy_vs_k(dataset, traces, [1], seeds=[0], epochs=2, device="cpu")  # warm-up
    started = time.perf_counter()
    frame = accuracy_vs_k(dataset, traces, [1, 2, 5, 10], seeds=[0, 1, 2], epochs=30, device="cpu")
    return {"seconds": time.perf_counter() - started, "mean_accuracy": float(frame["value"].mean()),
            "fits": int(len(frame))}


def run_worker(code: Path, kind: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--worker", kind], env=env, cwd=str(code), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(other: Path, rounds: int) -> None:
    print(f"bench_core: this checkout {HERE} vs other {other}; {os.cpu_count()} cores, torch 1 thread, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for kind, key in (("sa:digits", "per_step"), ("sa:pbmc68k_reduced", "per_step"), ("eval", "seconds")):
        this, that, ratios = [], [], []
        for r in range(rounds):
            pair = [(HERE, this), (other, that)] if r % 2 == 0 else [(other, that), (HERE, this)]
            for code, bucket in pair:
                bucket.append(run_worker(code, kind))
            ratios.append(this[-1][key] / that[-1][key])
        unit = "ms/step" if key == "per_step" else "s"
        scale = 1e3 if key == "per_step" else 1.0
        same = "same picks" if kind.startswith("sa") and all(a["picks"] == b["picks"] for a, b in zip(this, that)) \
            else ("same accuracy" if kind == "eval" and all(abs(a["mean_accuracy"] - b["mean_accuracy"]) < 1e-12
                                                            for a, b in zip(this, that)) else "DIFFERENT results")
        print(f"{kind:20s} this {statistics.median(x[key] for x in this) * scale:8.2f} {unit}, other "
              f"{statistics.median(x[key] for x in that) * scale:8.2f} {unit}; this/other median "
              f"{statistics.median(ratios):.2f} (per round {', '.join(f'{x:.2f}' for x in ratios)}); {same}; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)


def epochs_table() -> None:
    import torch

    torch.set_num_threads(1)
    from seqattn.data.builtins import load_builtin
    from seqattn.evaluation.retrain import accuracy_vs_k, holdout
    from seqattn.selectors import run_method

    print(f"evaluation MLP epochs: held-out accuracy (25 % test split), mean over seeds 0-4, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for name in ("digits", "breast_cancer", "wine"):
        train, test = holdout(load_builtin(name), 0.25, 0)
        traces = {m: run_method(train, m, 10, random_state=0, **({"gain_model": "none"} if m == "sa" else {}))
                  for m in ("sa", "omp", "anova")}
        for epochs in (30, 40, 60):
            started = time.perf_counter()
            frame = accuracy_vs_k(train, traces, [1, 2, 5, 10], seeds=range(5), epochs=epochs, test=test,
                                  device="cpu")
            means = frame.groupby(["method", "k"])["value"].mean().unstack()
            cells = " | ".join(f"{m} " + " ".join(f"{v:.3f}" for v in means.loc[m]) for m in means.index)
            print(f"{name:14s} {epochs} epochs {time.perf_counter() - started:5.1f} s   k=1,2,5,10: {cells}",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, help="the other checkout to time against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs-table", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
    elif args.code:
        compare(args.code.resolve(), args.rounds)
    else:  # `make bench` runs every script without arguments: the table needs no other checkout
        epochs_table()


if __name__ == "__main__":
    main()
