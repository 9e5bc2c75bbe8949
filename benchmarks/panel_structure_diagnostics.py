"""Why SA's gene panels keep less structure than the t-test's (benchmarks/README.md, *Structure*): two diagnostics.

``variance``: for panels recorded by ``bench_panels.py --panels-out``, the training cells' variance each panel
captures (sum over its genes of the log-expression variance) and how many of its genes are among the 50
highest-variance genes. The kNN graph and the clusters that spapros's evaluator compares are built on the
panel's *unscaled* genes, so a panel's share of the variance is what they follow.

``pool``: on the training cells of a split, panels drawn from the same 3·k t-test marker pool SA chooses from,
without any training: the t-test panel (each type's best marker in turn), the pool's genes by spapros's PCA
score (sum of |loadings| on the 20 leading components, ``spapros.se.select_pca_genes``), and the two
alternating pick by pick — all scored by seqattn's panel evaluator on the held-out cells.

    python benchmarks/panel_structure_diagnostics.py variance benchmarks/results/structure_share_genes_k20.json
    python benchmarks/panel_structure_diagnostics.py pool --splits 5 6 --k 20
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_panels  # noqa: E402  (the benchmark's data and splits)


def dense(block) -> np.ndarray:
    return block.toarray() if hasattr(block, "toarray") else np.asarray(block)


def captured_variance(recorded: Path) -> None:
    dataset = bench_panels.load_pbmc()
    names = list(dataset.feature_names)
    for entry in json.loads(recorded.read_text()):
        train, _ = bench_panels.splits(dataset, [entry["split"]])[entry["split"]]
        variance = dense(dataset.X[train]).var(axis=0)
        top = set(np.argsort(-variance)[:50].tolist())
        print(f"split {entry['split']}, {entry['size']} genes (all genes: {variance.sum():.1f})")
        for label, genes in entry["panels"].items():
            idx = [names.index(g) for g in genes]
            print(f"  {label:22s} variance {variance[idx].sum():5.1f}   among the 50 highest-variance genes: "
                  f"{len(top.intersection(idx)):2d}")


def alternate(first: list[int], second: list[int], k: int) -> list[int]:
    """Picks taken in turn from ``first`` and ``second`` (each in its order), skipping genes already taken."""
    panel: list[int] = []
    for i in range(k):
        panel.append(next(u for u in (second if i % 2 else first) if u not in panel))
    return panel


def pool_panels(splits: list[int], k: int) -> None:
    from sklearn.decomposition import PCA

    from seqattn.evaluation.panels import panel_metrics
    from seqattn.evaluation.retrain import subset_dataset
    from seqattn.selectors.ttest import ttest_markers

    dataset = bench_panels.load_pbmc()
    names = np.asarray(dataset.feature_names)
    for split in splits:
        train, test = bench_panels.splits(dataset, [split])[split]
        training = subset_dataset(dataset, train)
        pca_score = np.abs(PCA(20, random_state=0).fit(dense(training.X)).components_).sum(axis=0)
        pool = [int(u) for u in ttest_markers(training, 3 * k).selected]
        by_pca = sorted(pool, key=lambda u: -pca_score[u])
        panels = {"t-test": pool[:k], "pool by PCA score": by_pca[:k], "t-test / pool by PCA score": alternate(pool, by_pca, k)}
        table = panel_metrics(dataset, {label: names[idx] for label, idx in panels.items()}, train, test,
                              classifiers=("logreg",), random_state=split)
        summary = table[table["cell_type"] == ""].pivot(index="panel", columns="metric", values="value")
        print(f"split {split}, {k} genes, load {os.getloadavg()[0]:.1f}")
        print(summary[["balanced_accuracy_logreg", "knn_overlap", "cluster_nmi"]].round(3).to_string())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("variance").add_argument("recorded", type=Path)
    pool = sub.add_parser("pool")
    pool.add_argument("--splits", nargs="+", type=int, default=[5, 6])
    pool.add_argument("--k", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"load {os.getloadavg()}", flush=True)
    if args.command == "variance":
        captured_variance(args.recorded)
    else:
        pool_panels(args.splits, args.k)


if __name__ == "__main__":
    main()
