"""Large panels (issue 20, item 4): a scaled-down version of benchmarks/bench_large_panel.py — wide
log-normalised counts, unequal cell types with a rare one, a panel several times larger than the default —
finds the planted markers, and its networks read only the candidate columns (what bounds time and memory:
banned genes are never densified)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from seqattn import SequentialAttentionSelector
from seqattn.data import Dataset
from seqattn.genomics import make_planted_counts
from seqattn.selectors.stability import BatchedSATrainer, fit_runs, run_seeds
from seqattn.selectors.sa_trainer import SAConfig, SelectionUnits, network_columns

SHARES = (0.4, 0.3, 0.2, 0.07, 0.03)  # the rarest type: 3 % of the cells


def wide_counts(n_cells: int = 900, n_genes: int = 3000) -> Dataset:
    counts = make_planted_counts(n_cells, n_genes, len(SHARES), markers_per_type=4, fold_change=6.0, n_mito=20,
                                 type_shares=SHARES, random_state=3)
    totals = np.asarray(counts.X.sum(axis=1)).ravel()
    counts.X = (sp.diags(1e4 / np.maximum(totals, 1)) @ counts.X).log1p().astype(np.float32).tocsr()
    return counts


def test_type_shares_give_unequal_types_with_a_rare_one():
    data = make_planted_counts(1000, 50, 5, 2, type_shares=SHARES, random_state=0)
    sizes = np.bincount(data.y)
    assert sizes.tolist() == sorted(sizes.tolist(), reverse=True) and sizes.sum() == 1000
    assert sizes[-1] == 30 and sizes[0] == 400


@pytest.mark.slow
def test_large_panel_finds_planted_markers_of_every_type_and_networks_read_only_candidates():
    data = wide_counts()
    k = 20  # every planted marker (5 types × 4)
    selector = SequentialAttentionSelector(k, marker_pool=3, class_weight="balanced", n_runs=4, combine="runs",
                                           gain_model="none",
                                           random_state=0).fit_dataset(data)
    trace = selector.trace_
    assert trace.settings["network_inputs"] == 3 * k  # of 3,000 columns: the 60-gene marker pool only
    found = set(trace.selected) & set(data.informative.tolist())
    assert len(found) >= 18  # of 20 planted markers
    by_type = data.extra["markers_by_type"]
    assert all(set(markers) & found for markers in by_type.values())  # the rare type too


@pytest.mark.slow
def test_narrowed_network_picks_as_the_full_width_network(monkeypatch):
    """Banned columns weigh 0 in every phase, so leaving them out of the network's input changes no pick."""
    import seqattn.selectors.stability as stability

    data = wide_counts(400, 300)
    banned = list(range(100, 300))  # two thirds of the genes
    units = SelectionUnits(list(data.feature_names), list(data.feature_names), [], banned)
    assert network_columns(units, 300, structure_weight=0.0).tolist() == list(range(100))
    assert network_columns(units, 300, structure_weight=0.5) is None  # the structure head reads every column
    config = SAConfig(epochs=6, batch_size=64, gain_model="none")
    assert BatchedSATrainer(config, data.X, data.y, "classification", 3, units, run_seeds(0, 2)).source.shape[1] == 100
    narrowed = fit_runs(config, data.X, data.y, "classification", 4, units, n_runs=3)
    monkeypatch.setattr(stability, "network_columns", lambda *args: None)
    full = fit_runs(config, data.X, data.y, "classification", 4, units, n_runs=3)
    assert (narrowed.settings["network_inputs"], full.settings["network_inputs"]) == (100, 300)
    assert narrowed.settings["runs"] == full.settings["runs"]
    assert narrowed.settings["run_total_steps"] == full.settings["run_total_steps"]
