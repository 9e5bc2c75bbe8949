"""Atlas scale: SA streamed from a backed h5ad, 25k / 50k / 100k cells × 20,000 genes, k = 50.

For each size the script writes synthetic Poisson counts with planted marker
genes to an ``.h5ad`` one chunk of cells at a time (never the whole matrix in
memory), then runs SA in a **child process** that opens the file backed
(``load_table(..., backed=True)``), applies log1p per chunk and selects k = 50
genes. The child reports wall time, CPU time (user + sys), its peak RSS
(``ru_maxrss``: Python/torch baseline included) and how many planted markers
SA found. Last, 1 vs 2 processes (DistributedDataParallel over gloo) train on
the same file for the same global batches: the throughput ratio.

    python benchmarks/bench_scale.py                          # 25k, 50k, 100k cells
    python benchmarks/bench_scale.py --cells 25000 --ddp-cells 25000
    python benchmarks/bench_scale.py --quick                  # 4k × 2k smoke run
    python benchmarks/bench_scale.py --thread-check           # 1 vs 2 torch threads at 20k inputs

The machine these figures came from is shared; see benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _usage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def child_select(path: str, k: int, steps: int, batch: int, threads: int) -> dict:
    """Runs in a fresh process: backed load + log1p + SA; its own time and peak memory."""
    import numpy as np

    from seqattn.genomics import preprocess
    from seqattn.data.tables import load_table
    from seqattn.selectors.sequential_attention import SequentialAttentionSelector

    start = time.perf_counter()
    data, _ = preprocess(load_table(path, "cell_type", backed=True), log1p=True)
    loaded = time.perf_counter() - start
    n_train = int(0.8 * data.n_samples)
    epochs = max(1, math.ceil(steps / (n_train // batch)))
    selector = SequentialAttentionSelector(k, epochs=epochs, batch_size=batch, num_threads=threads,
                                           device="cpu", random_state=0)
    cpu0 = _usage()[1]
    fit_start = time.perf_counter()
    selector.fit_dataset(data)
    rss, cpu = _usage()
    names = np.asarray(data.feature_names)[selector.selected_features_]
    return {"load_s": loaded, "select_s": time.perf_counter() - fit_start, "select_cpu_s": cpu - cpu0,
            "peak_rss_mb": rss, "picks": [str(n) for n in names], "steps": selector.n_iter_,
            "chunk_rows": selector.trace_.settings["chunk_rows"]}


def ddp_worker(path: str, k: int, epochs: int, batch: int) -> dict:
    """One rank's training time (picks checked identical on all ranks inside the fit)."""
    from seqattn.genomics import preprocess
    from seqattn.data.tables import load_table
    from seqattn.selectors.sequential_attention import SequentialAttentionSelector

    data, _ = preprocess(load_table(path, "cell_type", backed=True), log1p=True)
    selector = SequentialAttentionSelector(k, epochs=epochs, batch_size=batch, gain_model="none", num_threads=1,
                                           min_steps_per_phase=1, device="cpu", random_state=0)
    start = time.perf_counter()
    selector.fit_dataset(data)
    return {"train_s": time.perf_counter() - start, "steps": selector.n_iter_,
            "picks": selector.selected_features_.tolist()}


def _ddp_single(path: str, k: int, epochs: int, batch: int) -> dict:
    return ddp_worker(path, k, epochs, batch)


def thread_check(n_inputs: int = 20_000, batches: tuple[int, ...] = (128, 512), repeats: int = 6) -> None:
    """SA training steps (MLP, 67 hidden, Adam) with 1 vs 2 torch threads, interleaved: medians.

    The measurement behind ``auto_threads``. It sets torch's thread count in this
    benchmark process only (the library never does so outside a fit).
    """
    import statistics

    import torch

    from seqattn.models import build_model
    from seqattn.selectors.sequential_attention import SequentialAttention

    print(f"thread check, load average {os.getloadavg()}")
    for batch in batches:
        net, mask = build_model("mlp", n_inputs, 5, 67), SequentialAttention(n_inputs)
        optimizer = torch.optim.Adam(list(net.parameters()) + [mask.logits], lr=1e-3)
        x, y = torch.randn(batch, n_inputs), torch.randint(0, 5, (batch,))
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeats):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                start = time.perf_counter()
                for _ in range(10):
                    loss = torch.nn.functional.cross_entropy(net(x, mask.weights()), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                times[threads].append((time.perf_counter() - start) / 10)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print(json.dumps({"inputs": n_inputs, "batch": batch, "ms_per_step_1_thread": round(one * 1e3, 1),
                          "ms_per_step_2_threads": round(two * 1e3, 1), "ratio_2_over_1": round(two / one, 2),
                          "load_avg": os.getloadavg()}), flush=True)


def run_child(path: Path, args: argparse.Namespace) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench_scale as b; "
            f"print(json.dumps(b.child_select({str(path)!r}, {args.k}, {args.steps}, {args.batch}, "
            f"{args.threads})))")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="25000,50000,100000", help="comma-separated cell counts")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--types", type=int, default=10)
    parser.add_argument("--markers", type=int, default=5, help="planted markers per type")
    parser.add_argument("--steps", type=int, default=1700, help="SA optimizer steps (≈ its automatic budget "
                        "for k=50 at 30 steps per phase); epochs are set to reach it")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ddp-cells", type=int, default=25_000, help="cells for the 1 vs 2 process run (0: skip)")
    parser.add_argument("--ddp-epochs", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to write the h5ad files (default: a temp folder)")
    parser.add_argument("--quick", action="store_true", help="4,000 cells × 2,000 genes, k = 10")
    parser.add_argument("--thread-check", action="store_true",
                        help="only time SA steps at 20,000 inputs with 1 vs 2 torch threads")
    args = parser.parse_args()
    if args.thread_check:
        thread_check(args.genes)
        return
    if args.quick:
        args.cells, args.genes, args.k, args.steps, args.ddp_cells = "4000", 2000, 10, 400, 4000

    from seqattn.distributed import spawn
    from seqattn.data.h5ad_backed import write_planted_counts_h5ad

    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}; threads {args.threads}; cpu count {os.cpu_count()}")
    files: dict[int, Path] = {}
    for n_cells in [int(c) for c in args.cells.split(",") if c]:
        path = folder / f"counts_{n_cells}x{args.genes}.h5ad"
        start = time.perf_counter()
        info = write_planted_counts_h5ad(path, n_cells, args.genes, n_types=args.types,
                                         markers_per_type=args.markers, chunk_cells=2000, random_state=0)
        written = time.perf_counter() - start
        files[n_cells] = path
        result = run_child(path, args)
        markers = {f"GENE{j:05d}" for j in info["markers"]}
        found = len(markers & set(result["picks"]))
        print(json.dumps({
            "cells": n_cells, "genes": args.genes, "density": round(info["nnz"] / (n_cells * args.genes), 4),
            "h5ad_mb": round(info["bytes"] / 2**20, 1), "write_s": round(written, 1),
            "load_s": round(result["load_s"], 2), "select_s": round(result["select_s"], 1),
            "select_cpu_s": round(result["select_cpu_s"], 1), "peak_rss_mb": round(result["peak_rss_mb"]),
            "steps": result["steps"], "chunk_rows": result["chunk_rows"],
            "markers_found": f"{found}/{len(markers)}", "load_avg": os.getloadavg()}), flush=True)

    if args.ddp_cells:
        path = files.get(args.ddp_cells)
        if path is None:
            path = folder / f"counts_{args.ddp_cells}x{args.genes}.h5ad"
            write_planted_counts_h5ad(path, args.ddp_cells, args.genes, n_types=args.types,
                                      markers_per_type=args.markers, chunk_cells=2000, random_state=0)
        k = min(args.k, 10)
        for repeat in range(2):  # interleaved: 1 process, 2 processes, 1, 2
            one = spawn(_ddp_single, 1, str(path), k, args.ddp_epochs, args.batch)[0]
            two = spawn(ddp_worker, 2, str(path), k, args.ddp_epochs, args.batch)
            ranks_agree = two[0]["picks"] == two[1]["picks"]  # also checked at every pick inside the fit
            slowest = max(r["train_s"] for r in two)
            print(json.dumps({"ddp_cells": args.ddp_cells, "repeat": repeat, "steps": one["steps"],
                              "rows_per_s_1proc": round(one["steps"] * args.batch / one["train_s"], 1),
                              "rows_per_s_2proc": round(two[0]["steps"] * args.batch / slowest, 1),
                              "throughput_ratio_2_over_1": round(one["train_s"] / slowest, 2),
                              "ranks_agree": ranks_agree, "same_picks_as_1proc": two[0]["picks"] == one["picks"],
                              "overlap_with_1proc": len(set(two[0]["picks"]) & set(one["picks"])),
                              "load_avg": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
