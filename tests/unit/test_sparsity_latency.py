"""Sparse kernels compute the same thing as their dense references; the timing harness pairs and cancels."""
from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import flex_attention

from seqattn.sparsity import attention_patterns as ap
from seqattn.sparsity import latency as lat

CPU = torch.device("cpu")


def _qkv(seq: int, heads: int = 2, dim: int = 16):
    inputs = ap.make_attention_inputs(seq, 1, heads, dim, 128, random_state=3)
    return inputs, *(t.unsqueeze(0) for t in (inputs.q, inputs.k, inputs.v))


def _sliding_token_mask(seq: int, window: int) -> torch.Tensor:
    i = torch.arange(seq)[:, None]
    j = torch.arange(seq)[None, :]
    return (i >= j) & (i - j < window)


@pytest.mark.filterwarnings("ignore::UserWarning")  # eager flex warns that it is slow: it is the reference
@pytest.mark.parametrize("kind", ["sliding_window", "blocks"])
def test_eager_flex_equals_masked_sdpa(kind):
    seq, heads = 256, 2
    inputs, q, k, v = _qkv(seq, heads)
    if kind == "sliding_window":
        block_mask = lat.flex_block_mask(kind, seq, heads, CPU, 128, window=40)
        token = _sliding_token_mask(seq, 40)[None, None]
    else:
        blocks = torch.tensor([[[True, False], [False, True]], [[True, False], [True, True]]])
        block_mask = lat.flex_block_mask(kind, seq, heads, CPU, 128, blocks=blocks)
        token = ap.expand_block_mask(blocks, 128, seq)[None]
    out = flex_attention(q, k, v, block_mask=block_mask)
    ref = lat.masked_sdpa_reference(q, k, v, token)
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiled_flex_equals_masked_sdpa_and_is_timed():
    report = lat.measure_prefill(seq_len=256, n_heads=2, head_dim=16, block_size=128, window_fraction=0.25,
                                 repeats=2, device="cpu")
    names = [t.name for t in report.timings]
    assert names[:2] == ["dense SDPA", "causal SDPA"]
    if report.notes:  # compile failed: the fallback must be labelled and explained
        assert "failed" in report.notes[0] and any("reference only" in n for n in names)
        pytest.skip(report.notes[0])
    assert "flex compile (first call)" in report.compile_seconds
    inputs, q, k, v = _qkv(256)
    block_mask = lat.flex_block_mask("sliding_window", 256, 2, CPU, 128, window=64)
    out = lat._compiled_flex()(q, k, v, block_mask=block_mask)
    ref = lat.masked_sdpa_reference(q, k, v, _sliding_token_mask(256, 64)[None, None])
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_prefill_report_labels_eager_flex_and_records_environment():
    report = lat.measure_prefill(seq_len=256, n_heads=2, head_dim=16, mask="psa", block_size=128, repeats=2,
                                 compile_flex=False, device="cpu")
    eager = [t for t in report.timings if "eager" in t.name]
    assert eager and "reference only" in eager[0].name and "reference only" in eager[0].note
    assert report.env["torch_threads"] == torch.get_num_threads()
    assert "load_average_1_5_15min" in report.env and report.env["device"].startswith("CPU")
    assert 0 < report.config["psa_kept_fraction"] <= 1
    for t in report.timings:
        assert len(t.times) == 2 and all(x > 0 for x in t.times)


def _cache(seq=512, heads=2, dim=16, bs=32):
    inputs = ap.make_attention_inputs(seq + bs, 1, heads, dim, bs, random_state=5)
    q = inputs.q[:, seq:seq + 1].contiguous()
    return q, lat.KVCache.build(inputs.k[:, :seq], inputs.v[:, :seq], bs), inputs


def test_decode_topk_attends_to_exactly_the_selected_blocks():
    q, cache, _ = _cache()
    idx = lat.topk_block_indices(q, cache, 3)
    h, nb, bs, d = cache.k_blocks.shape
    token = torch.zeros(h, 1, nb * bs, dtype=torch.bool)
    for head in range(h):
        for b in idx[head]:
            token[head, 0, b * bs:(b + 1) * bs] = True
    k, v = cache.k_blocks.reshape(h, -1, d), cache.v_blocks.reshape(h, -1, d)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=token)
    assert torch.allclose(lat.decode_topk(q, cache, 3), ref, atol=1e-5)
    assert torch.allclose(lat.decode_topk(q, cache, nb), lat.decode_dense(q, cache), atol=1e-5)


def test_decode_psa_budgets_are_minimal_and_output_matches_masked_attention():
    q, cache, _ = _cache()
    tau = 0.8
    order, budget = lat.psa_decode_budget(q, cache, tau)
    est = torch.softmax((q * cache.k_mean).sum(-1) / math.sqrt(q.shape[-1]), -1)
    h, nb, bs, d = cache.k_blocks.shape
    token = torch.zeros(h, 1, nb * bs, dtype=torch.bool)
    for head in range(h):
        ranked = est[head].sort(descending=True).values
        b = int(budget[head])
        assert ranked[:b].sum() >= tau - 1e-5 and (b == 1 or ranked[: b - 1].sum() < tau)
        for blk in order[head, :b]:
            token[head, 0, blk * bs:(blk + 1) * bs] = True
    k, v = cache.k_blocks.reshape(h, -1, d), cache.v_blocks.reshape(h, -1, d)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=token)
    assert torch.allclose(lat.decode_psa(q, cache, tau), ref, atol=1e-5)
    assert torch.allclose(lat.decode_psa(q, cache, 1.0), lat.decode_dense(q, cache), atol=1e-5)


def test_bsr_matmul_equals_dense_and_sparsity_is_exact():
    mask = lat.random_block_mask(8, 8, 0.9, random_state=1)
    assert int((~mask).sum()) == round(0.9 * 64)
    report = lat.measure_block_sparse_linear(256, 256, batch=16, block_size=32, sparsity=0.9, repeats=2,
                                             device="cpu")
    assert report.config["block_sparsity"] == pytest.approx(0.9, abs=0.01)
    assert report.quality["BSR sparse.mm"]["max abs diff"] < 1e-3
    w = torch.randn(64, 64) * mask.repeat_interleave(8, 0).repeat_interleave(8, 1)
    x = torch.randn(64, 5)
    assert torch.allclose(torch.sparse.mm(w.to_sparse_bsr((8, 8)), x), w @ x, atol=1e-4)


def test_bsr_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match="expected"):
        lat.measure_block_sparse_linear(64, 64, block_size=32, block_mask=torch.ones(3, 3, dtype=torch.bool))


def test_paired_timing_ranks_a_slower_function_higher():
    fns = {"fast": lambda: time.sleep(0.002), "slow": lambda: time.sleep(0.03)}
    timings, cancelled = lat.time_paired(fns, "fast", CPU, repeats=4, warmup=0)
    slow = next(t for t in timings if t.name == "slow")
    assert not cancelled and len(slow.times) == 4
    assert slow.ratio_quantile(0.5) > 2.0 and slow.median >= 0.03


def test_callback_cancels_and_keeps_finished_rounds():
    calls = []

    def cb(step, total, message):
        calls.append(step)
        return step >= 2

    timings, cancelled = lat.time_paired({"a": lambda: None, "b": lambda: None}, "a", CPU, repeats=10,
                                         warmup=0, callback=cb)
    assert cancelled and calls == [1, 2] and all(len(t.times) == 2 for t in timings)


def test_suite_runs_cases_and_stops_on_request():
    seen = []

    def cb(step, total, message):
        seen.append(message)
        return "linear" in message

    reports = lat.run_latency_suite(prefill_lens=(), decode_lens=(256,), linear_sparsities=(0.9,), repeats=2,
                                    linear_shape=(128, 128), device="cpu", callback=cb)
    assert [r.kind for r in reports] == ["decode"]
    rows = lat.reports_to_rows(reports)
    assert {row["candidate"] for row in rows} == {"dense SDPA", "top-1 blocks", "PSA adaptive blocks"}
    assert all(row["ratio"] > 0 for row in rows)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_timing_paths_run_and_agree():
    decode = lat.measure_decode(1024, n_heads=2, head_dim=16, repeats=3, device="cuda")
    assert decode.env["device"].startswith("CUDA") and all(t.median > 0 for t in decode.timings)
    linear = lat.measure_block_sparse_linear(256, 256, batch=16, block_size=32, repeats=2, device="cuda")
    assert linear.quality["BSR sparse.mm"]["max abs diff"] < 1e-3
    prefill = lat.measure_prefill(256, n_heads=2, head_dim=16, repeats=2, device="cuda")
    assert not prefill.notes, prefill.notes  # compiled flex must work on CUDA
