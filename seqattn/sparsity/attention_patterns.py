"""Block-level sparse-attention patterns, scored against exact dense attention.

Every pattern is a boolean mask over (query block × key block), one per head:
``mask[h, i, j]`` says that queries in block ``i`` of head ``h`` may look at
keys in block ``j`` (token-level causality is applied on top). We compare the
patterns on the same q/k/v with three numbers: the fraction of causal blocks
kept (the compute a block-sparse kernel would do), the share of the true
attention mass that falls into kept blocks, and the relative error of the
attention output against dense causal attention.

PSA (Progressive Sparse Attention) is implemented here from its published rule
— per query block, take key blocks by descending estimated score until their
cumulative attention mass reaches τ — because the official code is
unreleased. It is *our implementation of the published rule*.

The q/k/v come from :func:`make_attention_inputs`: random data with the
structure real attention heads show (locality, an attention sink, content
"topics"), with heads that mix those ingredients differently so adaptive
budgets have something to adapt to. Everything here is exact, small and fast
enough for an interactive page (``seq_len`` up to ~2k).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

PSA_LABEL = "PSA adaptive (our implementation of the published rule; official code unreleased)"


# --------------------------------------------------------------------------- inputs
@dataclass
class AttentionInputs:
    """q, k, v of shape ``[heads, seq_len, head_dim]`` plus a label per head."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    head_labels: list[str]
    block_size: int

    @property
    def n_heads(self) -> int:
        return int(self.q.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.q.shape[1])

    @property
    def n_blocks(self) -> int:
        return math.ceil(self.seq_len / self.block_size)


# (local, sink, topic, temperature) per head kind: how much each ingredient counts.
_HEAD_KINDS = {
    "local": (1.6, 0.6, 0.3, 1.0),
    "sink+local": (1.0, 2.2, 0.3, 1.0),
    "retrieval": (0.3, 0.5, 2.0, 1.0),
    "diffuse": (0.4, 0.3, 0.4, 0.5),
}


def make_attention_inputs(
    seq_len: int = 512,
    n_layers: int = 2,
    n_heads: int = 4,
    head_dim: int = 64,
    block_size: int = 32,
    n_topics: int = 8,
    random_state: int = 0,
) -> AttentionInputs:
    """Structured random q/k/v whose attention looks like a real model's.

    Each head's q·k is a sum of three parts built into separate channel groups:
    a rotary-style positional term (nearby tokens score high), a sink term (the
    first token scores high for everyone) and a topic term (tokens of the same
    topic score high, anywhere in the past; topics come in paragraph-like
    segments of up to 96 tokens). Heads differ in the mix, and later
    layers are sharper, so adaptive budgets differ per head and per layer.
    """
    if seq_len < 2 or block_size < 1 or head_dim < 8 or n_heads < 1 or n_layers < 1:
        raise ValueError("Need seq_len ≥ 2, block_size ≥ 1, head_dim ≥ 8 and at least one layer and head.")
    gen = torch.Generator().manual_seed(random_state)
    kinds = list(_HEAD_KINDS)
    pos = torch.arange(seq_len, dtype=torch.float32)
    # Topics come in contiguous segments (paragraphs), so content matches cluster in a few key blocks.
    seg_len = max(8, min(96, seq_len // 16))
    n_segments = math.ceil(seq_len / seg_len)
    topics = torch.randint(0, n_topics, (n_segments,), generator=gen).repeat_interleave(seg_len)[:seq_len]
    # Channel groups: positional (half), sink (1), topic (rest).
    n_pos = (head_dim // 2) // 2 * 2
    n_topic = head_dim - n_pos - 1
    freqs = 1.0 / (seq_len / 4) ** (torch.arange(n_pos // 2, dtype=torch.float32) / max(n_pos // 2 - 1, 1))
    angles = pos[:, None] * freqs[None, :]
    rot = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # q_i·k_j = Σ cos(ω(i-j))
    topic_codes = torch.randn(n_topics, n_topic, generator=gen)
    topic_codes = topic_codes / topic_codes.norm(dim=1, keepdim=True)
    qs, ks, vs, labels = [], [], [], []
    for layer in range(n_layers):
        sharpen = 1.0 + 0.5 * layer
        for head in range(n_heads):
            kind = kinds[(head + layer) % len(kinds)]
            local, sink, topic, temp = _HEAD_KINDS[kind]
            scale = math.sqrt(sharpen * temp * math.sqrt(head_dim))
            sink_k = torch.zeros(seq_len, 1)
            sink_k[0, 0] = 1.0
            q_parts = [
                local * rot * 2.0 / math.sqrt(n_pos // 2),
                torch.full((seq_len, 1), sink * 2.5),
                topic * topic_codes[topics] * 2.0,
            ]
            k_parts = [rot, sink_k, topic_codes[topics]]
            noise = 0.3 * torch.randn(seq_len, head_dim, generator=gen)
            q = torch.cat(q_parts, dim=1) * scale + noise
            k = torch.cat(k_parts, dim=1) * scale + 0.3 * torch.randn(seq_len, head_dim, generator=gen)
            qs.append(q)
            ks.append(k)
            vs.append(torch.randn(seq_len, head_dim, generator=gen))
            labels.append(f"L{layer}·H{head} ({kind})")
    return AttentionInputs(torch.stack(qs), torch.stack(ks), torch.stack(vs), labels, block_size)


# --------------------------------------------------------------------------- dense reference
def dense_attention_probs(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Causal softmax(q kᵀ/√d), shape ``[heads, seq, seq]``."""
    seq = q.shape[-2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


def block_mass(probs: torch.Tensor, block_size: int) -> torch.Tensor:
    """Attention mass per (query block, key block), averaged over the block's queries.

    Each row sums to 1: entry ``[h, i, j]`` is the share of a typical query in
    block ``i``'s attention that lands in key block ``j``.
    """
    heads, seq, _ = probs.shape
    n = math.ceil(seq / block_size)
    pad = n * block_size - seq
    p = torch.nn.functional.pad(probs, (0, pad, 0, pad))
    summed = p.reshape(heads, n, block_size, n, block_size).sum(dim=(2, 4))
    rows = torch.full((n,), float(block_size))
    rows[-1] = block_size - pad
    return summed / rows[None, :, None]


def causal_block_mask(n_heads: int, n_blocks: int) -> torch.Tensor:
    """Key blocks at or before the query block."""
    return torch.ones(n_blocks, n_blocks, dtype=torch.bool).tril().expand(n_heads, -1, -1).clone()


def expand_block_mask(mask: torch.Tensor, block_size: int, seq_len: int) -> torch.Tensor:
    """Block mask ``[h, nb, nb]`` -> token mask ``[h, seq, seq]`` with causality applied."""
    token = mask.repeat_interleave(block_size, dim=1).repeat_interleave(block_size, dim=2)[:, :seq_len, :seq_len]
    return token & torch.ones(seq_len, seq_len, dtype=torch.bool).tril()


# --------------------------------------------------------------------------- patterns
def sliding_window_mask(n_heads: int, n_blocks: int, window_blocks: int, sink_blocks: int = 1) -> torch.Tensor:
    """The last ``window_blocks`` key blocks (diagonal included) plus the first ``sink_blocks``."""
    if window_blocks < 1:
        raise ValueError("window_blocks must be at least 1 (the diagonal block).")
    i = torch.arange(n_blocks)[:, None]
    j = torch.arange(n_blocks)[None, :]
    keep = ((i - j) >= 0) & ((i - j) < window_blocks)
    keep |= (j < sink_blocks) & (j <= i)
    return keep.expand(n_heads, -1, -1).clone()


def bigbird_mask(
    n_heads: int, n_blocks: int, window_blocks: int = 3, global_blocks: int = 1, random_blocks: int = 2,
    random_state: int = 0,
) -> torch.Tensor:
    """BigBird/Longformer-like: window + global blocks (as keys and as queries) + random past blocks."""
    gen = torch.Generator().manual_seed(random_state)
    mask = sliding_window_mask(n_heads, n_blocks, window_blocks, sink_blocks=global_blocks)
    mask[:, :global_blocks, :] = True  # global queries see everything (causality applied later)
    for h in range(n_heads):
        for i in range(n_blocks):
            candidates = (~mask[h, i, : i + 1]).nonzero().flatten()
            if len(candidates) and random_blocks > 0:
                pick = candidates[torch.randperm(len(candidates), generator=gen)[:random_blocks]]
                mask[h, i, pick] = True
    return mask & causal_block_mask(n_heads, n_blocks)


def quest_block_scores(q: torch.Tensor, k: torch.Tensor, block_size: int) -> torch.Tensor:
    """Quest's upper bound on q·k per key block from channel-wise min/max keys.

    For a query ``q`` and a key block with per-channel bounds ``[kmin, kmax]``,
    ``Σ_d max(q_d·kmin_d, q_d·kmax_d)`` bounds every q·k in the block from
    above. Per query block we take the largest bound over its queries.
    """
    heads, seq, dim = k.shape
    n = math.ceil(seq / block_size)
    pad = n * block_size - seq
    kp = torch.nn.functional.pad(k, (0, 0, 0, pad), value=float("nan")).reshape(heads, n, block_size, dim)
    kmax = torch.nan_to_num(kp, nan=float("-inf")).amax(dim=2)
    kmin = torch.nan_to_num(kp, nan=float("inf")).amin(dim=2)
    # bound[h, token, j] = Σ_d max(q·kmin, q·kmax)
    bound = torch.maximum(q[:, :, None, :] * kmin[:, None], q[:, :, None, :] * kmax[:, None]).sum(-1)
    qp = torch.nn.functional.pad(bound, (0, 0, 0, pad), value=float("-inf")).reshape(heads, n, block_size, n)
    return qp.amax(dim=2)


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Per query block, the ``k`` causal key blocks with the highest score (all of them if fewer)."""
    heads, n, _ = scores.shape
    causal = causal_block_mask(heads, n)
    masked = scores.masked_fill(~causal, float("-inf"))
    kk = min(k, n)
    idx = masked.topk(kk, dim=-1).indices
    mask = torch.zeros_like(causal).scatter_(-1, idx, True)
    return mask & causal


def pooled_block_scores(q: torch.Tensor, k: torch.Tensor, block_size: int) -> torch.Tensor:
    """Cheap estimate of block mass: softmax over mean-pooled q·k with a log(block length) bonus.

    This is the kind of estimate a real PSA kernel can afford (one score per
    key block, not per key); rows sum to 1 over causal blocks.
    """
    heads, seq, dim = q.shape
    n = math.ceil(seq / block_size)
    pad = n * block_size - seq
    counts = torch.full((n,), float(block_size))
    counts[-1] = block_size - pad
    qb = torch.nn.functional.pad(q, (0, 0, 0, pad)).reshape(heads, n, block_size, dim).sum(2) / counts[:, None]
    kb = torch.nn.functional.pad(k, (0, 0, 0, pad)).reshape(heads, n, block_size, dim).sum(2) / counts[:, None]
    logits = qb @ kb.transpose(-1, -2) / math.sqrt(dim) + counts.log()[None, None, :]
    causal = causal_block_mask(heads, n)
    return torch.softmax(logits.masked_fill(~causal, float("-inf")), dim=-1)


def psa_mask(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """PSA rule: per query block, key blocks by descending score until the cumulative score ≥ τ.

    ``scores`` are per-row attention-mass estimates (non-causal entries are
    ignored; rows are renormalised over causal blocks). This keeps the
    *fewest* blocks that reach τ — the budget adapts per head and per query
    block. Our implementation of the published rule; official code unreleased.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}.")
    heads, n, _ = scores.shape
    causal = causal_block_mask(heads, n)
    s = scores.masked_fill(~causal, 0.0).clamp_min(0.0)
    s = s / s.sum(-1, keepdim=True).clamp_min(1e-30)
    sorted_s, order = s.sort(dim=-1, descending=True)
    cum = sorted_s.cumsum(-1)
    # keep position r if the mass before it is still short of τ (so the block that crosses τ is kept)
    before = cum - sorted_s
    keep_sorted = before < tau - 1e-6
    keep_sorted[..., 0] = True
    mask = torch.zeros_like(causal).scatter_(-1, order, keep_sorted)
    return mask & causal


def nsa_masks(
    q: torch.Tensor, k: torch.Tensor, block_size: int, selected_blocks: int = 4, window_blocks: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """NSA-style branches: ``(fine, compressed)`` block masks.

    *Fine* = selected (top-n blocks by compressed-attention score) ∪ sliding
    window, attended at full resolution. *Compressed* = every other causal
    block, attended through one mean-pooled token per block. Training-free
    approximation of the three trained NSA branches (the gates are implicit:
    one softmax over fine tokens and compressed tokens).
    """
    heads = q.shape[0]
    n = math.ceil(q.shape[1] / block_size)
    scores = pooled_block_scores(q, k, block_size)
    fine = topk_mask(scores, selected_blocks) | sliding_window_mask(heads, n, window_blocks, sink_blocks=0)
    fine &= causal_block_mask(heads, n)
    compressed = causal_block_mask(heads, n) & ~fine
    return fine, compressed


def exponential_schedule(fraction: float | np.ndarray, target: float, c: float = 4.0) -> float | np.ndarray:
    """``target · (1 − e^{−c·t}) / (1 − e^{−c})`` for progress ``t ∈ [0, 1]`` — fast early, gentle late."""
    t = np.clip(fraction, 0.0, 1.0)
    return target * (1.0 - np.exp(-c * t)) / (1.0 - math.exp(-c))


def progressive_masks(
    scores: torch.Tensor, steps: int = 6, final_sparsity: float = 0.75, c: float = 4.0,
) -> list[tuple[int, float, torch.Tensor]]:
    """Masks along a training-time schedule: sparsity ramps 0 → ``final_sparsity`` (exponential, c).

    At each step every query block keeps the top ``(1 − sparsity)`` share of
    its causal key blocks by score (at least one). Returns (step, sparsity, mask).
    """
    heads, n, _ = scores.shape
    causal = causal_block_mask(heads, n)
    masked = scores.masked_fill(~causal, float("-inf"))
    order = masked.argsort(dim=-1, descending=True)
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(n).expand_as(order).contiguous())
    n_causal = causal.sum(-1, keepdim=True)
    out = []
    for step in range(steps + 1):
        sparsity = float(exponential_schedule(step / max(steps, 1), final_sparsity, c))
        keep = torch.clamp(torch.ceil((1 - sparsity) * n_causal), min=1)
        out.append((step, sparsity, (rank < keep) & causal))
    return out


# --------------------------------------------------------------------------- evaluation
@dataclass
class PatternResult:
    """One pattern scored against dense attention (scalars are head averages)."""

    name: str
    mask: torch.Tensor  # [h, nb, nb] bool (fine blocks)
    kept_fraction: float
    mass_captured: float
    output_error: float
    per_head_kept: np.ndarray  # mean blocks kept per query block, per head
    per_head_mass: np.ndarray
    compressed: torch.Tensor | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def head_kept_fraction(self, head: int) -> float:
        """Share of one head's causal blocks this pattern keeps (``kept_fraction`` is the mean over heads)."""
        n = self.mask.shape[-1]
        return float(self.mask[head].sum()) / (n * (n + 1) / 2)

    def summary(self) -> dict:
        return {
            "pattern": self.name,
            "kept fraction": round(self.kept_fraction, 4),
            "attention mass captured": round(self.mass_captured, 4),
            "output rel. error": round(self.output_error, 4),
            "note": self.note,
        }


def evaluate_mask(
    inputs: AttentionInputs, mask: torch.Tensor, name: str, probs: torch.Tensor | None = None,
    dense_out: torch.Tensor | None = None, compressed: torch.Tensor | None = None, note: str = "",
    scores: torch.Tensor | None = None,
) -> PatternResult:
    """Kept fraction, captured true mass and relative output error of ``mask`` against dense causal attention."""
    bs, seq = inputs.block_size, inputs.seq_len
    if probs is None:
        probs = dense_attention_probs(inputs.q, inputs.k)
    if dense_out is None:
        dense_out = probs @ inputs.v
    causal_blocks = causal_block_mask(inputs.n_heads, inputs.n_blocks)
    mask = mask & causal_blocks
    token = expand_block_mask(mask, bs, seq)
    mass_per_query = probs.masked_fill(~token, 0.0).sum(-1)  # [h, seq]
    if scores is None:
        scores = inputs.q @ inputs.k.transpose(-1, -2) / math.sqrt(inputs.q.shape[-1])
    if compressed is None:
        sparse_p = torch.softmax(scores.masked_fill(~token, float("-inf")), dim=-1)
        out = sparse_p @ inputs.v
    else:
        out = _fine_plus_compressed(inputs, scores, token, compressed & causal_blocks)
    err = ((out - dense_out).norm(dim=(1, 2)) / dense_out.norm(dim=(1, 2)))
    kept = mask.sum(-1).float()  # blocks per query block
    kept_fraction = mask.sum(dim=(1, 2)).float() / causal_blocks.sum(dim=(1, 2)).float()
    return PatternResult(
        name=name, mask=mask, kept_fraction=float(kept_fraction.mean()), mass_captured=float(mass_per_query.mean()),
        output_error=float(err.mean()), per_head_kept=kept.mean(-1).numpy(),
        per_head_mass=mass_per_query.mean(-1).numpy(), compressed=compressed, note=note,
    )


def _fine_plus_compressed(inputs: AttentionInputs, scores: torch.Tensor, token: torch.Tensor,
                          compressed: torch.Tensor) -> torch.Tensor:
    """One softmax over fine tokens and one mean-pooled token per compressed block (bonus log block length)."""
    bs, seq, heads, dim = inputs.block_size, inputs.seq_len, inputs.n_heads, inputs.q.shape[-1]
    n = inputs.n_blocks
    pad = n * bs - seq
    counts = torch.full((n,), float(bs))
    counts[-1] = bs - pad
    kc = torch.nn.functional.pad(inputs.k, (0, 0, 0, pad)).reshape(heads, n, bs, dim).sum(2) / counts[:, None]
    vc = torch.nn.functional.pad(inputs.v, (0, 0, 0, pad)).reshape(heads, n, bs, dim).sum(2) / counts[:, None]
    cscores = inputs.q @ kc.transpose(-1, -2) / math.sqrt(dim) + counts.log()
    ctoken = compressed.repeat_interleave(bs, dim=1)[:, :seq, :]  # [h, seq, n]
    # a compressed block is only visible once it lies entirely in the past of the query block
    all_scores = torch.cat([scores.masked_fill(~token, float("-inf")),
                            cscores.masked_fill(~ctoken, float("-inf"))], dim=-1)
    p = torch.softmax(all_scores, dim=-1)
    return p[..., :seq] @ inputs.v + p[..., seq:] @ vc


@dataclass
class PatternSuite:
    """All patterns on one set of inputs, plus what the PSA plots need."""

    inputs: AttentionInputs
    block_mass: torch.Tensor
    results: dict[str, PatternResult]
    psa_scores: torch.Tensor
    tau: float
    progressive: list[tuple[int, float, PatternResult]]

    def table(self) -> list[dict]:
        return [r.summary() for r in self.results.values()]


def run_patterns(
    inputs: AttentionInputs,
    window_blocks: int = 3,
    sink_blocks: int = 1,
    global_blocks: int = 1,
    random_blocks: int = 2,
    topk_blocks: int = 4,
    tau: float = 0.9,
    psa_estimate: str = "pooled",
    nsa_selected: int = 3,
    nsa_window: int = 2,
    progressive_steps: int = 5,
    final_sparsity: float = 0.75,
    random_state: int = 0,
    callback: Callable[[int, int, str], Any] | None = None,
) -> PatternSuite:
    """Build and score every pattern. ``psa_estimate``: ``"pooled"`` (realistic) or ``"exact"`` (oracle mass)."""
    if psa_estimate not in ("pooled", "exact"):
        raise ValueError("psa_estimate must be 'pooled' or 'exact'.")
    h, n, bs = inputs.n_heads, inputs.n_blocks, inputs.block_size
    probs = dense_attention_probs(inputs.q, inputs.k)
    dense_out = probs @ inputs.v
    scores = inputs.q @ inputs.k.transpose(-1, -2) / math.sqrt(inputs.q.shape[-1])
    mass = block_mass(probs, bs)
    psa_scores = pooled_block_scores(inputs.q, inputs.k, bs) if psa_estimate == "pooled" else mass
    fine, compressed = nsa_masks(inputs.q, inputs.k, bs, nsa_selected, nsa_window)
    specs = [
        ("dense causal", lambda: causal_block_mask(h, n), None, "reference"),
        ("sliding window + sink", lambda: sliding_window_mask(h, n, window_blocks, sink_blocks), None,
         f"{window_blocks} window blocks, {sink_blocks} sink block(s)"),
        ("BigBird-like", lambda: bigbird_mask(h, n, window_blocks, global_blocks, random_blocks, random_state), None,
         f"window {window_blocks} + global {global_blocks} + random {random_blocks}"),
        ("Quest top-k", lambda: topk_mask(quest_block_scores(inputs.q, inputs.k, bs), topk_blocks), None,
         f"top {topk_blocks} blocks by min/max key bound"),
        ("PSA adaptive", lambda: psa_mask(psa_scores, tau), None,
         f"τ = {tau}, {psa_estimate} block scores; our implementation of the published rule (official code unreleased)"),
        ("NSA-style", lambda: fine, compressed,
         f"selected {nsa_selected} + window {nsa_window} fine; other blocks compressed to 1 token"),
    ]
    results = {}
    total = len(specs) + 1
    for i, (name, build, comp, note) in enumerate(specs):
        if callback is not None:
            callback(i, total, f"scoring {name}")
        results[name] = evaluate_mask(inputs, build(), name, probs, dense_out, comp, note, scores)
    prog = [
        (step, sparsity, evaluate_mask(inputs, m, f"step {step}", probs, dense_out, scores=scores))
        for step, sparsity, m in progressive_masks(mass if psa_estimate == "exact" else psa_scores,
                                                   progressive_steps, final_sparsity)
    ]
    if callback is not None:
        callback(total, total, "done")
    return PatternSuite(inputs, mass, results, psa_scores, tau, prog)


def cumulative_mass_curve(scores: torch.Tensor, head: int, query_block: int) -> np.ndarray:
    """Sorted cumulative score of one query block's causal key blocks (the PSA τ curve)."""
    row = scores[head, query_block, : query_block + 1].clamp_min(0)
    row = row / row.sum().clamp_min(1e-30)
    return row.sort(descending=True).values.cumsum(0).numpy()
