"""Atlas scale: SA with its real defaults, streamed from a backed h5ad, 25k / 100k / 400k cells × 20,000 genes.

For each size the script writes synthetic Poisson counts with planted marker
genes to an ``.h5ad`` one chunk of cells at a time (never the whole matrix in
memory; with ``--dir`` the file and a ``.json`` of its markers are kept and
reused by later runs), then runs ``python -m seqattn select --backed --log1p``
in a **child process** with SA's defaults: the automatic budget, the read-out
on, batch 128, automatic threads. The child is measured by the kernel
(``os.wait4``): peak RSS (``ru_maxrss``: Python/torch baseline included), CPU
time (user + sys) and wall time; its trace gives the optimizer steps, and the
picks are checked against the planted markers. The load average is printed
beside every run (the box is shared: CPU time and peak RSS are the robust
figures, wall time is not).

    python benchmarks/bench_scale.py --dir /tmp/scale          # 25k, 100k, 400k cells × 20,000 genes, k = 50
    python benchmarks/bench_scale.py --dir /tmp/scale --cells 40000,160000 --genes 5000 -k 10 --no-log1p \
        --in-memory                                            # issue 22's memory check, backed and in memory
    python benchmarks/bench_scale.py ... --root /path/to/other/checkout   # the same runs with another version
    python benchmarks/bench_scale.py --ddp-cells 25000 --cells ""          # 1 vs 2 processes only
    python benchmarks/bench_scale.py --quick                  # 4k × 2k smoke run
    python benchmarks/bench_scale.py --thread-check           # 1 vs 2 torch threads at 20k inputs

The machine these figures came from is shared; see benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def planted_file(folder: Path, n_cells: int, args: argparse.Namespace) -> tuple[Path, dict]:
    """The planted counts file for ``n_cells`` (written once per folder) and its markers."""
    from seqattn.data.h5ad_backed import write_planted_counts_h5ad

    path = folder / f"counts_{n_cells}x{args.genes}_t{args.types}m{args.markers}.h5ad"
    sidecar = path.with_suffix(".json")
    if path.exists() and sidecar.exists():
        return path, json.loads(sidecar.read_text())
    start = time.perf_counter()
    info = write_planted_counts_h5ad(path, n_cells, args.genes, n_types=args.types, markers_per_type=args.markers,
                                     chunk_cells=2000, random_state=0)
    record = {"markers": [f"GENE{j:05d}" for j in info["markers"]], "nnz": info["nnz"], "bytes": info["bytes"],
              "write_s": round(time.perf_counter() - start, 1)}
    sidecar.write_text(json.dumps(record))
    return path, record


def run_measured(command: list[str], root: Path) -> dict:
    """Run ``command`` on the checkout ``root``; the kernel's account of that one child: wall, CPU (user +
    sys), peak RSS. It runs *in* ``root`` because ``python -m`` puts the working folder first on the path."""
    env = dict(os.environ, PYTHONPATH=str(root))
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        wall = time.perf_counter() - start
        err.seek(0)
        tail = err.read()[-3000:]
    if child.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{tail}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def select_in_child(path: Path, n_cells: int, record: dict, args: argparse.Namespace, backed: bool) -> dict:
    """``python -m seqattn select`` (SA defaults) on ``path`` in a child process: its figures and picks."""
    out = path.with_name(path.stem + ("_backed" if backed else "_memory") + "_picks.json")
    command = [sys.executable, "-m", "seqattn", "select", "--data", str(path), "--target", "cell_type",
               "-k", str(args.k), "--out", str(out), "--quiet"]
    command += (["--backed"] if backed else []) + (["--log1p"] if args.log1p else [])
    load_before = os.getloadavg()[0]
    result = run_measured(command, args.root)
    trace = json.loads(out.read_text())
    out.unlink()
    settings = trace["settings"]
    found = len(set(record["markers"]) & set(trace["selected_names"]))
    return {"cells": n_cells, "genes": args.genes, "mode": "backed" if backed else "in memory",
            "density": round(record["nnz"] / (n_cells * args.genes), 4),
            "h5ad_mb": round(record["bytes"] / 2**20), "write_s": record["write_s"],
            "peak_rss_mb": round(result["peak_rss_mb"]), "wall_s": round(result["wall_s"], 1),
            "cpu_s": round(result["cpu_s"], 1), "fit_wall_s": round(settings.get("wall_seconds", float("nan")), 1),
            "steps": settings.get("total_steps"), "warmup_steps": settings.get("warmup_steps"),
            "capped_phases": settings.get("capped_phases"), "chunk_rows": settings.get("chunk_rows"),
            "markers_found": f"{found}/{min(args.k, len(record['markers']))}", "k": args.k,
            "picks_sha1": hashlib.sha1(",".join(trace["selected_names"]).encode()).hexdigest()[:10],
            "load_avg_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="25000,100000,400000", help="comma-separated cell counts")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--types", type=int, default=10)
    parser.add_argument("--markers", type=int, default=5, help="planted markers per type")
    parser.add_argument("--no-log1p", dest="log1p", action="store_false", help="select on raw counts")
    parser.add_argument("--in-memory", action="store_true", help="also run each size loaded in memory")
    parser.add_argument("--root", type=Path, default=ROOT, help="seqattn checkout the children run (default: "
                        "this one), to measure another version the same way")
    parser.add_argument("--batch", type=int, default=128, help="global batch of the 1 vs 2 processes run")
    parser.add_argument("--ddp-cells", type=int, default=0, help="cells for the 1 vs 2 process run (0: skip)")
    parser.add_argument("--ddp-epochs", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the h5ad files are written and reused (default: a "
                        "temporary folder, deleted at the end)")
    parser.add_argument("--quick", action="store_true", help="4,000 cells × 2,000 genes, k = 10")
    parser.add_argument("--thread-check", action="store_true",
                        help="only time SA steps at 20,000 inputs with 1 vs 2 torch threads")
    args = parser.parse_args()
    if args.thread_check:
        thread_check(args.genes)
        return
    if args.quick:
        args.cells, args.genes, args.k, args.ddp_cells = "4000", 2000, 10, 4000

    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}; cpu count {os.cpu_count()}; code {args.root}", flush=True)
    try:
        for n_cells in [int(c) for c in args.cells.split(",") if c]:
            path, record = planted_file(folder, n_cells, args)
            for backed in (True, False) if args.in_memory else (True,):
                print(json.dumps(select_in_child(path, n_cells, record, args, backed)), flush=True)
        if args.ddp_cells:
            path, _ = planted_file(folder, args.ddp_cells, args)
            ddp_comparison(str(path), min(args.k, 10), args)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def ddp_comparison(path: str, k: int, args: argparse.Namespace) -> None:
    """1 process vs 2 (DistributedDataParallel over gloo) on the same file and global batches, interleaved."""
    from seqattn.distributed import spawn

    for repeat in range(2):  # interleaved: 1 process, 2 processes, 1, 2
        one = spawn(_ddp_single, 1, path, k, args.ddp_epochs, args.batch)[0]
        two = spawn(ddp_worker, 2, path, k, args.ddp_epochs, args.batch)
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
