"""Issue 20's stability criterion, measured: ``select_features(pbmc68k_reduced, "bulk_labels", k=20)`` with
seeds 0, 1, 2 (all 700 cells, the panel defaults unless ``--options`` overrides them).

The criterion: every pairwise overlap of the three panels is at least 15 of 20 genes, or every gene outside
their common core is flagged unstable in its own panel (:func:`seqattn.trace.is_unstable`: picked in at most
half of the runs, or kept by fewer than MIN_KEPT_SHARE of the consensus panels rebuilt from the runs
resampled). Printed per seed: every non-core gene with its "b/B", kept share and flag, and how many core genes
the flag catches too (over-flagging: a stable gene a user is told to doubt).

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
    from seqattn.evaluation.narrative import support_text
    from seqattn.trace import MIN_KEPT_SHARE

    print(f"load {os.getloadavg()}, options {args.options}, unstable below kept share {MIN_KEPT_SHARE}", flush=True)
    panels, steps = {}, {}
    for seed in args.seeds:
        adata = ad.read_h5ad(ROOT / "data" / "pbmc68k_reduced.h5ad")
        wall, cpu = time.perf_counter(), time.process_time()
        trace = seqattn.select_features(adata, target="bulk_labels", k=args.k, random_state=seed, progress=False,
                                        gain_model="none", **args.options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        panels[seed], steps[seed] = trace.selected_names, {s.name: s for s in trace.steps}
        types = trace.settings.get("pick_types")
        print(f"seed {seed}: {wall:.0f} s wall, {cpu:.0f} s CPU, load {os.getloadavg()[0]:.1f}, {trace.n_runs} runs, "
              f"{sum(s.unstable for s in trace.steps)} flagged unstable; panel {panels[seed]}"
              + (f"; picked for {types}" if types else ""), flush=True)
    core = set.intersection(*(set(p) for p in panels.values()))
    pairs = {(a, b): len(set(panels[a]) & set(panels[b])) for a, b in itertools.combinations(args.seeds, 2)}
    print(f"pairwise overlap {pairs}, core {len(core)}")
    for seed in args.seeds:
        outside = [steps[seed][g] for g in panels[seed] if g not in core]
        print(f"seed {seed} non-core: " + ", ".join(
            f"{s.name} ({support_text(s.picked_in, s.n_runs, s.kept_share)}) {'unstable' if s.unstable else 'NOT flagged'}"
            for s in outside))
        print(f"seed {seed} core flagged too: {sum(steps[seed][g].unstable for g in core)} of {len(core)}")
    unflagged = {seed: [g for g in panels[seed] if g not in core and not steps[seed][g].unstable]
                 for seed in args.seeds}
    overlap_met, flags_met = all(v >= 15 for v in pairs.values()), not any(unflagged.values())
    print(f"criterion: pairwise ≥ 15 of 20 {'met' if overlap_met else 'not met'}; every non-core gene flagged "
          f"{'met' if flags_met else 'not met (' + str(sum(map(len, unflagged.values()))) + ' not flagged)'}; "
          f"overall {'met' if overlap_met or flags_met else 'NOT met'}")


if __name__ == "__main__":
    main()
