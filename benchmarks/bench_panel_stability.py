"""Issue 20's stability criterion, measured: ``select_features(pbmc68k_reduced, "bulk_labels", k=20)`` with
seeds 0, 1, 2 (all 700 cells, the panel defaults unless ``--options`` overrides them).

The criterion: every pairwise overlap of the three panels is at least 15 of 20 genes, or every gene outside
their common core is flagged unstable (picked in at most half of the runs) in its own panel.

    python benchmarks/bench_panel_stability.py
    python benchmarks/bench_panel_stability.py --options '{"coverage": "none"}' --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--options", type=json.loads, default={}, help="JSON: SA options over the panel defaults")
    args = parser.parse_args(argv)
    import anndata as ad

    import seqattn

    print(f"load {os.getloadavg()}, options {args.options}", flush=True)
    panels, flagged, support = {}, {}, {}
    for seed in args.seeds:
        adata = ad.read_h5ad(ROOT / "data" / "pbmc68k_reduced.h5ad")
        start = time.perf_counter()
        trace = seqattn.select_features(adata, target="bulk_labels", k=args.k, random_state=seed, progress=False,
                                        gain_model="none", **args.options)
        panels[seed] = trace.selected_names
        flagged[seed] = {s.name for s in trace.steps if s.unstable}
        support[seed] = {s.name: f"{s.picked_in}/{s.n_runs}" for s in trace.steps}
        types = trace.settings.get("pick_types")
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s wall, load {os.getloadavg()[0]:.1f}, "
              f"{len(flagged[seed])} flagged unstable; panel {panels[seed]}"
              + (f"; picked for {types}" if types else ""), flush=True)
    core = set.intersection(*(set(p) for p in panels.values()))
    pairs = {(a, b): len(set(panels[a]) & set(panels[b])) for a, b in itertools.combinations(args.seeds, 2)}
    unflagged = {seed: sorted(set(panels[seed]) - core - flagged[seed]) for seed in args.seeds}
    print(f"pairwise overlap {pairs}, core {len(core)}")
    print(f"non-core genes not flagged unstable: {unflagged}")
    print("support (picked in b of B runs) of every non-core gene: "
          + "; ".join(f"seed {seed}: " + ", ".join(f"{g} {support[seed][g]}" for g in panels[seed] if g not in core)
                      for seed in args.seeds))
    met = all(v >= 15 for v in pairs.values()) or not any(unflagged.values())
    print(f"criterion (pairwise ≥ 15 of 20, or every non-core gene flagged): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
