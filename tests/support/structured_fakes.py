"""A StructuredPruningResult with a hand-made SA++ run (no model trained): enough for its figures."""
from __future__ import annotations

import numpy as np

from seqattn.sparsity.structured import MethodRun, UnitSnapshot
from seqattn.sparsity.structured_study import StructuredPruningResult


def heads_only_result(n_layer: int, n_head: int = 4, n_snapshots: int = 3) -> StructuredPruningResult:
    """Heads of ``n_layer`` layers, half of them kept in each snapshot, attention spread over 0.5–1.5."""
    n_units = n_layer * n_head
    snaps = [UnitSnapshot(f"snapshot {i}", "sparsify", i, 0.5, 2.0, {"heads": np.linspace(0.5, 1.5, n_units)},
                          {"heads": np.arange(n_units) % 2 == i % 2}) for i in range(n_snapshots)]
    run = MethodRun("SA++", 0.5, 0, 2.0, 1.0, {"heads": snaps[-1].mask["heads"]}, {}, None, 0, snapshots=snaps)
    names = [f"L{layer}.H{head}" for layer in range(n_layer) for head in range(n_head)]
    return StructuredPruningResult({}, {}, 2.0, 0, {"heads": names}, {"heads": (n_layer, n_head)}, [], runs=[run])
