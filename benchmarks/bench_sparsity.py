"""Sparse vs dense, measured side by side: attention prefill/decode, block-sparse linear, SA++ accuracy.

    .venv/bin/python benchmarks/bench_sparsity.py [--threads 2] [--repeats 5] [--quick]

Latency: every configuration is timed paired and interleaved (rotating order
per round) after a warm-up; we print medians and the median per-round
sparse/dense ratio with its p25–p75 spread, plus threads and the load
average before and after. Compile time of ``flex_attention`` is printed
separately and is not in any ratio.

Accuracy: SA++ vs gradual block-magnitude pruning (same block size, schedule,
sparsity and optimizer steps) and the dense network, on digits (and mnist_5k
unless --quick), over a few seeds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seqattn.data.builtins import BUILTIN_DATASETS, load_builtin  # noqa: E402
from seqattn.sparsity.block_pruning import sa_plus_plus  # noqa: E402
from seqattn.sparsity.latency import (  # noqa: E402
    measure_block_sparse_linear,
    measure_decode,
    measure_prefill,
)


def fmt_ratio(report, name: str) -> str:
    t = next(t for t in report.timings if t.name == name)
    return f"{t.ratio_quantile(0.5):.2f}× [{t.ratio_quantile(0.25):.2f}–{t.ratio_quantile(0.75):.2f}]"


def print_report(report) -> None:
    for t in report.timings:
        print(f"    {t.name:<46s} median {1e3 * t.median:9.2f} ms   ratio {fmt_ratio(report, t.name)}")
    for k, v in report.compile_seconds.items():
        print(f"    (one-off) {k}: {v:.1f} s")
    for k, v in report.quality.items():
        print(f"    (quality) {k}: " + ", ".join(f"{a} {b:.3g}" for a, b in v.items()))
    for note in report.notes:
        print(f"    note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="rounds for prefill (decode/BSR use 4×)")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="1k tokens only, digits only, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=3,
                        help="seeds 0–2 were used to pick SA++'s logit learning rate; report on others")
    parser.add_argument("--parts", default="prefill,decode,linear,accuracy",
                        help="comma-separated subset of prefill,decode,linear,accuracy")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--json", type=Path, help="write every report here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    lens = (1024,) if args.quick else (1024, 4096, 8192)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu_count {os.cpu_count()}, "
          f"load average before {os.getloadavg()}")
    dump: dict = {"prefill": [], "decode": [], "linear": [], "accuracy": []}
    started = time.time()
    parts = set(args.parts.split(","))
    if args.skip_accuracy:
        parts.discard("accuracy")

    for n in lens if "prefill" in parts else ():
        if n == lens[0]:
            print("\n== prefill: dense SDPA vs causal SDPA vs compiled flex_attention, causal sliding window = 10% ==")
        rep = measure_prefill(n, n_heads=args.heads, head_dim=64, window_fraction=0.1, repeats=args.repeats,
                              eager_reference_max_len=0, device="cpu")
        print(f"  {n} tokens, {args.heads} heads × 64, block density {rep.config['block_density']}, "
              f"load {rep.env['load_average_1_5_15min']}")
        print_report(rep)
        dump["prefill"].append(rep.to_dict())

    for n in lens if "decode" in parts else ():
        if n == lens[0]:
            print(f"\n== decode ({torch.get_num_threads()} threads): one query vs a KV cache, "
                  "top-10% blocks (Quest bound) and PSA τ = 0.9 ==")
        rep = measure_decode(n, n_heads=args.heads, head_dim=64, block_size=64, keep_fraction=0.1, tau=0.9,
                             repeats=4 * args.repeats, warmup=3, device="cpu")
        print(f"  {n} tokens, PSA keeps {rep.config['psa_mean_kept_fraction']:.0%} of blocks on average, "
              f"load {rep.env['load_average_1_5_15min']}")
        print_report(rep)
        dump["decode"].append(rep.to_dict())

    for sparsity in (0.8, 0.9) if "linear" in parts else ():
        if sparsity == 0.8:
            print("\n== block-sparse linear: dense matmul vs BSR torch.sparse.mm, 2048×2048 weight, batch 256 ==")
        rep = measure_block_sparse_linear(2048, 2048, batch=256, block_size=32, sparsity=sparsity,
                                          repeats=4 * args.repeats, warmup=2, device="cpu")
        print(f"  block sparsity {rep.config['block_sparsity']}, blocks 32×32, load {rep.env['load_average_1_5_15min']}")
        print_report(rep)
        dump["linear"].append(rep.to_dict())

    if "accuracy" in parts:
        print("\n== SA++ vs block-magnitude pruning vs dense: test accuracy (mean ± sd over seeds) ==")
        names = ["digits"] + ([] if args.quick or "mnist_5k" not in BUILTIN_DATASETS else ["mnist_5k"])
        seeds = range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds))
        for name in names:
            data = load_builtin(name)
            epochs = 30 if name == "digits" else 12
            for sparsity in (0.8, 0.9):
                accs: dict[str, list[float]] = {}
                for seed in seeds:
                    res = sa_plus_plus(data, sparsity=sparsity, block_size=8, hidden=(256,), epochs=epochs,
                                       n_cycles=2, device="cpu", random_state=seed)
                    for m, a in res.accuracy.items():
                        accs.setdefault(m, []).append(a)
                    dump["accuracy"].append({"data": name, "sparsity": sparsity, "seed": seed,
                                             "accuracy": res.accuracy, "achieved": res.sparsity})
                line = ", ".join(f"{m} {np.mean(v):.4f} ± {np.std(v):.4f}" for m, v in accs.items())
                print(f"  {name}, hidden 256, blocks 8×8, {epochs} epochs, target {sparsity:.0%}: {line}")

    print(f"\nload average after {os.getloadavg()}, total {time.time() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1, default=str))


if __name__ == "__main__":
    main()
