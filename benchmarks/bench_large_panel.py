"""A 200-gene panel from 20,000 genes × 10,000 cells: ``select_features`` end to end, time, memory and the
accuracy cost of each faster setting (issue 20, item 4).

Data (synthetic, nothing downloaded): :func:`seqattn.genomics.make_planted_counts` — Poisson counts with
log-normal gene rates (~90 % zeros, like droplet data), 12 cell types of unequal sizes (25 % down to 0.5 %
of the cells: a rare type of ~60 cells), 25 planted markers per type (4× up in their type), 100
housekeeping-like genes with high type-independent rates (``MT-`` names) and ~19,600 noise genes; then
scanpy's usual log-normalisation (each cell scaled to 10,000 counts, ``log1p``) as an AnnData. 12,500 cells
are split once, stratified (``seqattn.data.split_indices``, seed 0): **10,000 training cells** the selection
sees, 2,500 held out.

Each setting runs ``seqattn.select_features(adata, "cell_type", k=200, **setting)`` in a **child process**
on the training AnnData (read from an h5ad written once), measured by the kernel (``os.wait4``: wall, CPU
user + sys); the child times the ``select_features`` call alone and reads its own peak RSS (``VmHWM``: the
Python/torch baseline and the loaded matrix included). Every panel, and the t-test panel, is then scored on the held-out cells by
:func:`seqattn.evaluation.panels.panel_metrics` (logistic regression; balanced accuracy, per-type recall,
planted markers found). The load average is printed beside every run; threads are pinned (BLAS/OpenMP to
the two cores, SA's own rule: one torch thread on ≤ 2 cores).

    python benchmarks/bench_large_panel.py                          # defaults + faster settings, k = 200
    python benchmarks/bench_large_panel.py --settings defaults      # one setting
    python benchmarks/bench_large_panel.py --cells 2500 --genes 4000 -k 50   # a quick scaled-down run
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "2")

import numpy as np  # noqa: E402

#: Cell-type weights: three abundant types, a middle, and rare ones (the last ≈ 0.5 % of the cells).
TYPE_SHARES = (0.25, 0.18, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.015, 0.005)
MARKERS_PER_TYPE = 25
HOUSEKEEPING = 100
FOLD_CHANGE = 4.0
TRAIN_SHARE = 0.8
#: name -> (method, options for select_features). "defaults" is select_features as a user calls it.
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "defaults": ("sa", {}),
    "12 runs": ("sa", {"n_runs": 12}),
    "3·k pool": ("sa", {"marker_pool": 3}),
    "4 runs": ("sa", {"n_runs": 4}),
    "joint picks ≤ 4": ("sa", {"max_picks_per_phase": 4}),
    "1 run": ("sa", {"n_runs": 1}),
    "t-test": ("ttest", {}),
}


def planted_anndata(n_cells: int, n_genes: int, seed: int = 0) -> tuple[Any, list[str]]:
    """Log-normalised planted counts as an AnnData (obs "cell_type"), and the planted marker names."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    from seqattn.genomics import make_planted_counts

    counts = make_planted_counts(n_cells, n_genes, len(TYPE_SHARES), MARKERS_PER_TYPE, fold_change=FOLD_CHANGE,
                                 n_mito=HOUSEKEEPING, type_shares=TYPE_SHARES, random_state=seed)
    X = counts.X.tocsr()
    totals = np.asarray(X.sum(axis=1)).ravel()
    X = sp.diags((1e4 / np.maximum(totals, 1)).astype(np.float32)) @ X
    X = X.log1p().astype(np.float32).tocsr()
    labels = pd.Categorical.from_codes(counts.y, categories=counts.class_names)
    adata = ad.AnnData(X=X, obs=pd.DataFrame({"cell_type": labels}, index=[f"cell{i}" for i in range(n_cells)]),
                       var=pd.DataFrame(index=counts.feature_names))
    markers = [counts.feature_names[j] for j in counts.informative]
    return adata, markers


def child(args: argparse.Namespace) -> None:
    """One selection, timed alone; its panel and schedule record as JSON."""
    import anndata as ad

    from seqattn import select_features

    adata = ad.read_h5ad(args.train_file)
    method, options = SETTINGS[args.child]
    wall, cpu = time.perf_counter(), time.process_time()
    trace = select_features(adata, "cell_type", k=args.k, method=method, progress=False, **options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    keys = ("n_runs", "total_steps", "warmup_steps", "run_total_steps", "run_warmup_steps", "phase_steps",
            "picks_per_phase", "capped_phases", "max_picks_per_phase", "num_threads")
    record = {"panel": list(trace.selected_names), "select_wall_s": wall, "select_cpu_s": cpu,
              "own_peak_rss_mb": own_peak_rss_mb(),
              "unstable": sum(bool(s.unstable) for s in trace.steps),
              "settings": {k: trace.settings[k] for k in keys if k in trace.settings}}
    Path(args.out).write_text(json.dumps(record))


def own_peak_rss_mb() -> float:
    """This process's peak RSS since it started (``VmHWM``, Linux): ``ru_maxrss`` of a child also counts the
    parent's RSS at fork (Linux keeps it across exec), here the whole 12,500-cell data set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(name: str, train_file: Path, k: int) -> dict:
    from bench_scale import run_measured

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    load = os.getloadavg()[0]
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--train-file", str(train_file),
               "-k", str(k), "--out", str(out)]
    process = run_measured(command, ROOT)
    record = json.loads(out.read_text())
    out.unlink()
    return {**process, **record, "load_before": load, "load_after": os.getloadavg()[0]}


def held_out_scores(adata: Any, panels: dict[str, list[str]], train: np.ndarray, test: np.ndarray,
                    markers: list[str], rarest: str) -> dict[str, dict]:
    from seqattn.anndata_api import dataset_from_anndata
    from seqattn.evaluation.panels import panel_metrics

    dataset = dataset_from_anndata(adata, "cell_type")
    table = panel_metrics(dataset, panels, train, test, classifiers=("logreg",), structure=False)
    scores = {}
    for name, genes in panels.items():
        rows = table[table["panel"] == name]
        recall = rows[rows["metric"] == "recall_logreg"]
        whole = rows[(rows["cell_type"] == "") & (rows["metric"] == "balanced_accuracy_logreg")]
        scores[name] = {"balanced_accuracy": float(whole["value"].iloc[0]),
                        "min_type_recall": float(recall["value"].min()),
                        "rarest_type_recall": float(recall.loc[recall["cell_type"] == rarest, "value"].iloc[0]),
                        "planted_found": len(set(genes) & set(markers))}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=12_500, help="all cells; the selection sees 80 %% of them")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("-k", type=int, default=200)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "seqattn_large_panel")
    parser.add_argument("--json", type=Path, help="write the results here as well")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from seqattn.data import split_indices

    start = time.perf_counter()
    adata, markers = planted_anndata(args.cells, args.genes)
    train, _, test = split_indices(adata.n_obs, adata.obs["cell_type"].cat.codes.to_numpy(), val_fraction=0.0,
                                   test_fraction=1 - TRAIN_SHARE, random_state=0)
    args.dir.mkdir(parents=True, exist_ok=True)
    train_file = args.dir / f"train_{args.cells}x{args.genes}.h5ad"
    adata[np.sort(train)].copy().write_h5ad(train_file)
    density = adata.X.nnz / (adata.n_obs * adata.n_vars)
    print(f"data: {len(train):,} training / {len(test):,} held-out cells × {args.genes:,} genes, "
          f"{len(TYPE_SHARES)} types (smallest {np.bincount(adata.obs['cell_type'].cat.codes)[-1]} cells), "
          f"{len(markers)} planted markers, density {density:.3f}; built in {time.perf_counter() - start:.0f} s; "
          f"torch threads: SA's rule on {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}", flush=True)

    results = {}
    for name in args.settings:
        results[name] = measure(name, train_file, args.k)
        r = results[name]
        print(f"{name:>18}: select {r['select_wall_s']:6.1f} s wall {r['select_cpu_s']:6.1f} s CPU | process "
              f"{r['wall_s']:6.1f} s wall, peak RSS {r['own_peak_rss_mb']:6.0f} MB | {r['settings']} | "
              f"load {r['load_before']:.1f}→{r['load_after']:.1f}", flush=True)
    scores = held_out_scores(adata, {n: r["panel"] for n, r in results.items()}, np.sort(train), np.sort(test),
                             markers, rarest=str(adata.obs["cell_type"].value_counts().idxmin()))
    print(f"\nheld out ({len(test):,} cells, logistic regression), k = {args.k}:")
    print(f"{'setting':>18} {'select s':>9} {'CPU s':>7} {'RSS MB':>7} {'bal. acc':>8} {'min rec':>8} "
          f"{'rare rec':>8} {'planted':>8} {'unstable':>8}")
    for name, r in results.items():
        s = scores[name]
        print(f"{name:>18} {r['select_wall_s']:9.1f} {r['select_cpu_s']:7.1f} {r['own_peak_rss_mb']:7.0f} "
              f"{s['balanced_accuracy']:8.3f} {s['min_type_recall']:8.3f} {s['rarest_type_recall']:8.3f} "
              f"{s['planted_found']:8d} {r['unstable']:8d}")
        r.update(scores=s)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
