"""Issue 20's stability criterion, measured: ``select_features(pbmc68k_reduced, "bulk_labels", k=20)`` with
seeds 0, 1, 2 (all 700 cells, the panel defaults unless ``--options`` overrides them).

The criterion: every pairwise overlap of the three panels is at least 15 of 20 genes, or every gene outside
their common core is flagged unstable in its own panel (:func:`seqattn.trace.is_unstable`: picked in at most
half of the runs, or kept by fewer than MIN_KEPT_SHARE of the consensus panels rebuilt from the runs
resampled). Printed per seed: every non-core gene with its "b/B", kept share and flag, and how many core genes
the flag catches too (over-flagging: a stable gene a user is told to doubt).

    python benchmarks/bench_panel_stability.py
    python benchmarks/bench_panel_stability.py --options '{"coverage": "none"}' --seeds 0 1 2
    python benchmarks/bench_panel_stability.py --options '{"n_runs": 8}' --save-runs runs8.json
    python benchmarks/bench_panel_stability.py --calibrate runs8.json runs12.json runs16.json

``--save-runs`` keeps every run's picks and the consensus rule's type of each pooled gene. ``--calibrate``
pools the runs of such files (all independent runs of the same data: each seed draws its own run seeds)
and, for each file's B, measures what one seed's B runs cannot: (a) the pairwise overlap of two consensus
panels from disjoint sets of B pooled runs (mean, 10th percentile, share ≥ 15 of 20), and (b) the kept
share's calibration — each panel gene's kept share (resampled from its own seed's runs) against how often a
consensus of B fresh pooled runs holds it, and at MIN_KEPT_SHARE how many non-core genes go unflagged and
how many core genes are flagged.
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
    parser.add_argument("--save-runs", type=Path, help="write each seed's runs and panel here (JSON)")
    parser.add_argument("--calibrate", type=Path, nargs="+", help="files written by --save-runs: pool and compare")
    args = parser.parse_args(argv)
    if args.calibrate:
        return calibrate(args.calibrate, args.k)
    import anndata as ad

    import seqattn
    from seqattn.evaluation.narrative import support_text
    from seqattn.trace import MIN_KEPT_SHARE

    print(f"load {os.getloadavg()}, options {args.options}, unstable below kept share {MIN_KEPT_SHARE}", flush=True)
    panels, steps, saved = {}, {}, {}
    rules = record_consensus_rules()
    for seed in args.seeds:
        adata = ad.read_h5ad(ROOT / "data" / "pbmc68k_reduced.h5ad")
        wall, cpu = time.perf_counter(), time.process_time()
        trace = seqattn.select_features(adata, target="bulk_labels", k=args.k, random_state=seed, progress=False,
                                        gain_model="none", **args.options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        panels[seed], steps[seed] = trace.selected_names, {s.name: s for s in trace.steps}
        rule = getattr(rules[-1], "__self__", None)  # the coverage rule's consensus (None: consensus_order)
        saved[seed] = {"panel": list(trace.selected), "runs": trace.settings["runs"],
                       "feature_names": trace.feature_names,
                       "type_of": None if rule is None else {str(u): c for u, c in rule.type_of.items()}}
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
            f"{s.name} ({support_text(s.picked_in, s.n_runs, s.kept_share)}) "
            f"{'unstable' if s.unstable else 'NOT flagged'}"
            for s in outside))
        print(f"seed {seed} core flagged too: {sum(steps[seed][g].unstable for g in core)} of {len(core)}")
    unflagged = {seed: [g for g in panels[seed] if g not in core and not steps[seed][g].unstable]
                 for seed in args.seeds}
    overlap_met, flags_met = all(v >= 15 for v in pairs.values()), not any(unflagged.values())
    print(f"criterion: pairwise ≥ 15 of 20 {'met' if overlap_met else 'not met'}; every non-core gene flagged "
          f"{'met' if flags_met else 'not met (' + str(sum(map(len, unflagged.values()))) + ' not flagged)'}; "
          f"overall {'met' if overlap_met or flags_met else 'NOT met'}")
    if args.save_runs:
        args.save_runs.write_text(json.dumps(saved))


def record_consensus_rules() -> list:
    """The consensus rule each selection used (``consensus_trace``'s ``order``), in call order: a
    benchmark-only spy, so --calibrate can rebuild panels with the coverage rule's type-share consensus."""
    from seqattn.selectors import stability

    rules: list = []
    original = stability.consensus_trace

    def spy(*args, **kwargs):
        rules.append(kwargs.get("order"))
        return original(*args, **kwargs)

    stability.consensus_trace = spy
    return rules


def calibrate(files: list[Path], k: int, draws: int = 600) -> None:
    import numpy as np

    from seqattn.selectors.coverage import TypeCoverage
    from seqattn.selectors.stability import consensus_order, resampled_kept_shares
    from seqattn.trace import MIN_KEPT_SHARE

    saved = [{int(seed): record for seed, record in json.loads(f.read_text()).items()} for f in files]
    first = next(iter(saved[0].values()))
    n_units = len(first["feature_names"])
    order = consensus_order
    if first["type_of"] is not None:
        rule = TypeCoverage("worst", [[]], None, np.zeros(1), None)
        rule.type_of = {int(u): int(c) for u, c in first["type_of"].items()}
        order = rule.consensus
    pool = [run for records in saved for record in records.values() for run in record["runs"]]
    rng = np.random.default_rng(0)
    print(f"{len(pool)} pooled runs from {len(files)} files; {draws} draws per figure")
    for records in saved:
        B = len(next(iter(records.values()))["runs"])
        overlaps, fresh = [], np.zeros(n_units)
        for _ in range(draws):
            idx = rng.permutation(len(pool))
            a, b = (set(order([pool[i] for i in idx[j * B:(j + 1) * B]], n_units, k)) for j in (0, 1))
            overlaps.append(len(a & b))
            fresh[list(a)] += 1
        fresh /= draws
        overlaps = np.array(overlaps)
        core = set.intersection(*(set(r["panel"]) for r in records.values()))
        estimated, reference, in_core = [], [], []
        for seed, record in records.items():
            kept = resampled_kept_shares(record["runs"], n_units, k, order, seed=seed)
            for u in record["panel"]:
                estimated.append(kept[u]), reference.append(fresh[u]), in_core.append(u in core)
        estimated, reference, in_core = map(np.array, (estimated, reference, in_core))
        unflagged = int(((estimated >= MIN_KEPT_SHARE) & ~in_core).sum())
        overflagged = int(((estimated < MIN_KEPT_SHARE) & in_core).sum())
        print(f"B = {B}: two disjoint B-run panels share {overlaps.mean():.1f} of {k} (10th percentile "
              f"{np.percentile(overlaps, 10):.0f}, ≥ 15 in {np.mean(overlaps >= 15):.0%}); panel genes' kept share "
              f"mean {estimated.mean():.2f} vs fresh-run reference {reference.mean():.2f} (correlation "
              f"{np.corrcoef(estimated, reference)[0, 1]:.2f}); at kept < {MIN_KEPT_SHARE}: {unflagged} of "
              f"{int((~in_core).sum())} non-core genes unflagged, {overflagged} of {int(in_core.sum())} core genes "
              "flagged (kept share alone; the count rule adds flags)")


if __name__ == "__main__":
    main()
