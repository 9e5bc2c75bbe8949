"""What the Sequential Attention page's default run costs on expression data: one plain run vs the gene-panel
defaults (``defaults.panel_defaults``: marker pool, balanced loss, worst-served type, 16 runs combined) at
k = 10, 20 and 50 genes on pbmc68k_reduced — why the page's first panel has ``QUICK_PANEL_K`` = 20 genes.

The options are the page's (``app_support/sequential.run_options``: automatic budget, seed 0, 67 hidden units,
learning rate 3e-3, the 30-minute limit) with the panel defaults on top, as ``select_features`` takes them.
Rows alternate between the settings, ``--rounds`` times; each prints wall and CPU seconds of the selecting
process (SA picks its own thread count: one thread on this data), the number of flagged picks and the load
average. Medians per setting at the end.

    .venv/bin/python benchmarks/bench_sa_page_panel.py --rounds 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

SETTINGS = [(10, False), (20, False), (10, True), (20, True), (50, True)]
PAGE_OPTIONS = dict(device="auto", random_state=0, epochs=None, hidden=67, learning_rate=3e-3, model="mlp",
                    max_seconds=1800)


def main() -> None:
    from seqattn.data.builtins import load_builtin
    from seqattn.selectors import run_method
    from seqattn.selectors.defaults import panel_defaults

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    dataset = load_builtin("pbmc68k_reduced")
    seconds: dict[tuple[int, bool], list[tuple[float, float]]] = {s: [] for s in SETTINGS}
    for round_ in range(args.rounds):
        for k, panel in SETTINGS:
            options = panel_defaults(dataset, PAGE_OPTIONS, k) if panel else dict(PAGE_OPTIONS)
            wall, cpu = time.perf_counter(), time.process_time()
            trace = run_method(dataset, "sa", k, **options)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            seconds[(k, panel)].append((wall, cpu))
            print(f"round {round_} k={k} {'panel defaults' if panel else 'one plain run'}: wall {wall:.1f} s, "
                  f"CPU {cpu:.1f} s, {trace.device}, runs {trace.n_runs or 1}, "
                  f"flagged {sum(s.flagged for s in trace.steps)}/{trace.k}, load {os.getloadavg()[0]:.1f}",
                  flush=True)
    for (k, panel), values in seconds.items():
        print(f"median k={k} {'panel defaults' if panel else 'one plain run'}: "
              f"wall {statistics.median(w for w, _ in values):.1f} s, CPU {statistics.median(c for _, c in values):.1f} s")


if __name__ == "__main__":
    main()
