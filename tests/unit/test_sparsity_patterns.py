"""Exact properties of the block attention patterns (seqattn.sparsity.attention_patterns)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqattn.sparsity import attention_patterns as ap


@pytest.fixture(scope="module")
def suite() -> ap.PatternSuite:
    inputs = ap.make_attention_inputs(seq_len=192, n_layers=2, n_heads=2, head_dim=32, block_size=16)
    return ap.run_patterns(inputs, window_blocks=2, topk_blocks=3, tau=0.9, psa_estimate="exact")


def test_sliding_window_matches_its_definition():
    n, w, sink = 9, 3, 2
    mask = ap.sliding_window_mask(1, n, w, sink)[0]
    for i in range(n):
        for j in range(n):
            expected = (0 <= i - j < w) or (j < sink and j <= i)
            assert bool(mask[i, j]) == expected, (i, j)


def test_every_pattern_is_causal(suite):
    n = suite.inputs.n_blocks
    upper = torch.ones(n, n, dtype=torch.bool).triu(1)
    for name, result in suite.results.items():
        assert not (result.mask & upper).any(), name
        assert result.mask.sum(-1).min() >= 1, f"{name} leaves a query block with no keys"


def test_expanded_mask_is_causal_at_token_level():
    mask = ap.causal_block_mask(1, 4)
    token = ap.expand_block_mask(mask, 5, 18)[0]
    assert token.shape == (18, 18)
    assert torch.equal(token, torch.ones(18, 18, dtype=torch.bool).tril())


def test_dense_causal_captures_everything_with_zero_error(suite):
    dense = suite.results["dense causal"]
    assert dense.kept_fraction == pytest.approx(1.0)
    assert dense.mass_captured == pytest.approx(1.0, abs=1e-5)
    assert dense.output_error == pytest.approx(0.0, abs=1e-5)


def test_block_mass_rows_sum_to_one(suite):
    rows = suite.block_mass.sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)


def test_topk_keeps_exactly_k_highest_blocks():
    gen = torch.Generator().manual_seed(1)
    scores = torch.rand(3, 10, 10, generator=gen)
    k = 4
    mask = ap.topk_mask(scores, k)
    for h in range(3):
        for i in range(10):
            kept = mask[h, i].nonzero().flatten()
            assert len(kept) == min(k, i + 1)
            causal_scores = scores[h, i, : i + 1]
            dropped = torch.ones(i + 1, dtype=torch.bool)
            dropped[kept] = False
            if dropped.any():
                assert causal_scores[kept].min() > causal_scores[dropped].max()


@pytest.mark.parametrize("seed", range(5))
def test_psa_reaches_tau_with_the_fewest_blocks(seed):
    rng = np.random.default_rng(seed)
    tau = float(rng.uniform(0.5, 0.95))
    n = 12
    scores = torch.tensor(rng.dirichlet(np.full(n, 0.3), size=(2, n)), dtype=torch.float32)
    mask = ap.psa_mask(scores, tau)
    for h in range(2):
        for i in range(n):
            row = scores[h, i, : i + 1] / scores[h, i, : i + 1].sum()
            kept = mask[h, i, : i + 1]
            assert row[kept].sum() >= tau - 1e-5  # reaches τ
            ranked = row.sort(descending=True).values
            m = int(kept.sum())
            assert torch.allclose(row[kept].sort(descending=True).values, ranked[:m])  # the best blocks
            assert m == 1 or ranked[: m - 1].sum() < tau  # and no fewer would do


def test_psa_on_exact_mass_captures_at_least_tau(suite):
    psa = suite.results["PSA adaptive"]
    assert psa.mass_captured >= suite.tau - 1e-4
    assert psa.kept_fraction < 1.0


def test_psa_budgets_differ_between_heads(suite):
    budgets = suite.results["PSA adaptive"].per_head_kept
    assert budgets.max() > 1.5 * budgets.min()


def test_quest_bound_is_an_upper_bound():
    inputs = ap.make_attention_inputs(seq_len=64, n_layers=1, n_heads=2, head_dim=16, block_size=8)
    bound = ap.quest_block_scores(inputs.q, inputs.k, 8)  # [h, query block, key block]
    exact = inputs.q @ inputs.k.transpose(-1, -2)  # [h, 64, 64]
    per_block_max = exact.reshape(2, 8, 8, 8, 8).amax(dim=(2, 4))
    assert (bound >= per_block_max - 1e-4).all()


def test_nsa_branches_partition_the_causal_blocks(suite):
    nsa = suite.results["NSA-style"]
    causal = ap.causal_block_mask(suite.inputs.n_heads, suite.inputs.n_blocks)
    assert not (nsa.mask & nsa.compressed).any()
    assert torch.equal(nsa.mask | nsa.compressed, causal)


def test_sparse_output_matches_a_manual_masked_softmax():
    inputs = ap.make_attention_inputs(seq_len=40, n_layers=1, n_heads=1, head_dim=8, block_size=8)
    mask = ap.sliding_window_mask(1, 5, 2, sink_blocks=0)
    result = ap.evaluate_mask(inputs, mask, "window")
    q, k, v = inputs.q[0], inputs.k[0], inputs.v[0]
    dense_out = torch.softmax((q @ k.T / math.sqrt(8)).masked_fill(~torch.ones(40, 40, dtype=torch.bool).tril(),
                                                                  float("-inf")), -1) @ v
    allowed = torch.tensor([[(j <= i) and (i // 8 - j // 8 < 2) for j in range(40)] for i in range(40)])
    manual = torch.softmax((q @ k.T / math.sqrt(8)).masked_fill(~allowed, float("-inf")), -1) @ v
    expected = float((manual - dense_out).norm() / dense_out.norm())
    assert result.output_error == pytest.approx(expected, rel=1e-4)


def test_progressive_schedule_ramps_to_the_final_sparsity(suite):
    sparsities = [s for _, s, _ in suite.progressive]
    kept = [r.kept_fraction for _, _, r in suite.progressive]
    assert sparsities[0] == 0.0 and sparsities[-1] == pytest.approx(0.75)
    assert all(b >= a for a, b in zip(sparsities, sparsities[1:]))
    assert all(b <= a + 1e-9 for a, b in zip(kept, kept[1:]))


def test_exponential_schedule_shape():
    t = np.linspace(0, 1, 11)
    s = ap.exponential_schedule(t, 0.9, 4.0)
    assert s[0] == 0.0 and s[-1] == pytest.approx(0.9)
    assert np.all(np.diff(s) > 0) and np.all(np.diff(s, 2) < 0)  # increasing, front-loaded


def test_bad_tau_is_rejected():
    with pytest.raises(ValueError, match="tau"):
        ap.psa_mask(torch.rand(1, 3, 3), 1.5)
