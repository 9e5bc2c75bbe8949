"""Paired dense-vs-sparse latency on the current device.

Three measurements, each returning a :class:`LatencyReport`:

* **prefill** — dense SDPA vs causal SDPA vs ``flex_attention`` compiled with
  a block mask (sliding window, or a PSA-derived adaptive mask). Compile time
  is reported separately; eager flex materialises the full score matrix and is
  labelled *reference only*.
* **decode** — one query against a KV cache: dense SDPA vs the top-k key
  blocks (Quest-style bound, selection included in the time) vs PSA adaptive
  blocks (per-head budgets until the estimated mass reaches τ).
* **block-sparse linear** — dense matmul vs BSR ``torch.sparse.mm`` at a
  block sparsity (the SA++ payoff).

Timing is paired and interleaved: every round runs each candidate once, in a
rotating order, so load spikes hit all of them; we report medians, the
interquartile spread, and the *per-round* ratio to the baseline (median and
spread). Threads, device and the load average are recorded with every report.
On CUDA we time with CUDA events after :func:`seqattn.device.synchronize`.
"""
from __future__ import annotations

import math
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from seqattn.device import describe_device, resolve_device, synchronize, torch_threads
from seqattn.sparsity import attention_patterns as ap

Callback = Callable[[int, int, str], Any]
REFERENCE_ONLY = "reference only (eager flex materialises the full score matrix)"


# --------------------------------------------------------------------------- records
def environment(device: torch.device) -> dict[str, Any]:
    """What a timing depends on: device, threads, load, versions."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on every platform
        load = None
    return {
        "device": describe_device(device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15min": load,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


@dataclass
class Timing:
    """One candidate's repeated timings (seconds) and its paired ratios to the baseline."""

    name: str
    times: list[float]
    ratios: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else float("nan")

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.times, q)) if self.times else float("nan")

    def ratio_quantile(self, q: float) -> float:
        return float(np.quantile(self.ratios, q)) if self.ratios else float("nan")

    @property
    def reliable(self) -> bool:
        """False when the p25–p75 range of the paired ratios crosses 1.0×: the rounds disagree on whether
        this candidate is faster or slower than the baseline, so its median ratio says nothing."""
        if not self.ratios:
            return False
        return not (self.ratio_quantile(0.25) < 1.0 < self.ratio_quantile(0.75))

    def ratio_label(self) -> str:
        """``0.44× (0.31–0.52)``, with ``unreliable`` when the spread crosses 1.0×."""
        if not self.ratios:
            return "n/a"
        text = f"{self.ratio_quantile(0.5):.2f}× ({self.ratio_quantile(0.25):.2f}–{self.ratio_quantile(0.75):.2f})"
        return text if self.reliable else text + " unreliable"


@dataclass
class LatencyReport:
    """Timings of one configuration, the baseline name, compile times and notes."""

    kind: str  # prefill | decode | linear
    config: dict[str, Any]
    baseline: str
    timings: list[Timing]
    env: dict[str, Any]
    compile_seconds: dict[str, float] = field(default_factory=dict)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False

    def rows(self) -> list[dict[str, Any]]:
        """One row per candidate: medians in ms, spread and the ratio to the baseline."""
        out = []
        for t in self.timings:
            row = {
                "kind": self.kind, **{k: v for k, v in self.config.items() if not isinstance(v, (list, dict))},
                "candidate": t.name, "median ms": 1e3 * t.median, "p25 ms": 1e3 * t.quantile(0.25),
                "p75 ms": 1e3 * t.quantile(0.75), "baseline": self.baseline, "ratio": t.ratio_quantile(0.5),
                "ratio p25": t.ratio_quantile(0.25), "ratio p75": t.ratio_quantile(0.75),
                "reliable": t.reliable, "rounds": len(t.times),
                "note": t.note,
            }
            row.update({f"{k}": v for k, v in self.quality.get(t.name, {}).items()})
            out.append(row)
        return out

    def ratio(self, name: str) -> float:
        return next(t.ratio_quantile(0.5) for t in self.timings if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.config, "baseline": self.baseline, "env": self.env,
                "compile_seconds": self.compile_seconds, "quality": self.quality, "notes": self.notes,
                "cancelled": self.cancelled,
                "timings": [{"name": t.name, "times_s": t.times, "ratios": t.ratios, "note": t.note}
                            for t in self.timings]}


# --------------------------------------------------------------------------- timing core
def _time_once(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        synchronize(device)
        start.record()
        fn()
        end.record()
        synchronize(device)
        return start.elapsed_time(end) / 1e3
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def _thread_cpu_once(fn: Callable[[], Any], device: torch.device) -> float:
    """CPU time of the calling thread: what the call costs on a core of its own, whatever else runs."""
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


CLOCKS = ("wall", "thread_cpu")


def time_paired(
    candidates: dict[str, Callable[[], Any]],
    baseline: str,
    device: torch.device,
    repeats: int = 7,
    warmup: int = 1,
    callback: Callback | None = None,
    clock: str = "wall",
) -> tuple[list[Timing], bool]:
    """Interleaved rounds (rotating order); returns timings and whether the callback cancelled.

    ``callback(round, repeats, message)`` is called after every round; if it
    returns True we stop and keep the rounds already done. ``clock="thread_cpu"``
    times the calling thread's CPU time instead of the wall clock (CPU only, and
    only meaningful with one torch thread): on a shared, busy machine it leaves
    out the time the thread waited for a core.
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}.")
    if clock == "thread_cpu" and device.type != "cpu":
        raise ValueError("clock='thread_cpu' times CPU work only; use the wall clock on an accelerator.")
    once = _time_once if clock == "wall" else _thread_cpu_once
    if baseline not in candidates:
        raise ValueError(f"baseline {baseline!r} is not among the candidates {list(candidates)}.")
    if repeats < 1:
        raise ValueError("repeats must be at least 1.")
    names = list(candidates)
    with torch.inference_mode():
        for _ in range(warmup):
            for name in names:
                once(candidates[name], device)
        times: dict[str, list[float]] = {n: [] for n in names}
        cancelled = False
        for r in range(repeats):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                times[name].append(once(candidates[name], device))
            if callback is not None and callback(r + 1, repeats, f"round {r + 1}/{repeats}"):
                cancelled = r + 1 < repeats
                break
    base = np.array(times[baseline])
    timings = [Timing(n, times[n], list(np.array(times[n]) / base)) for n in names]
    return timings, cancelled


# --------------------------------------------------------------------------- prefill
_COMPILED_FLEX: dict[str, Callable] = {}


def _compiled_flex() -> Callable:
    """One compiled flex_attention per process (torch caches kernels per shape and mask)."""
    if "fn" not in _COMPILED_FLEX:
        from torch.nn.attention.flex_attention import flex_attention

        _COMPILED_FLEX["fn"] = torch.compile(flex_attention, dynamic=False)
    return _COMPILED_FLEX["fn"]


def psa_block_tensor(q: torch.Tensor, k: torch.Tensor, block_size: int, tau: float) -> torch.Tensor:
    """PSA adaptive block mask ``[heads, nb, nb]`` from pooled block scores (q, k: ``[heads, seq, dim]``)."""
    return ap.psa_mask(ap.pooled_block_scores(q, k, block_size), tau)


def flex_block_mask(kind: str, seq_len: int, n_heads: int, device: torch.device, block_size: int = 128,
                    window: int | None = None, blocks: torch.Tensor | None = None):
    """``create_block_mask`` for a causal sliding window (``window`` tokens) or a block tensor (PSA)."""
    from torch.nn.attention.flex_attention import create_block_mask

    if kind == "sliding_window":
        if window is None or window < 1:
            raise ValueError("sliding_window needs window ≥ 1 token.")

        def mask_mod(b, h, q_idx, kv_idx):
            return (q_idx >= kv_idx) & (q_idx - kv_idx < window)

        return create_block_mask(mask_mod, None, None, seq_len, seq_len, device=str(device), BLOCK_SIZE=block_size)
    if kind == "blocks":
        if blocks is None:
            raise ValueError("kind='blocks' needs the block tensor.")
        table = blocks.to(device)

        def mask_mod(b, h, q_idx, kv_idx):
            return table[h, q_idx // block_size, kv_idx // block_size] & (q_idx >= kv_idx)

        return create_block_mask(mask_mod, None, n_heads, seq_len, seq_len, device=str(device), BLOCK_SIZE=block_size)
    raise ValueError(f"Unknown mask kind {kind!r}; use 'sliding_window' or 'blocks'.")


def masked_sdpa_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """SDPA with an explicit boolean token mask — what flex must equal."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=token_mask)


def _prefill_block_mask(inputs: Any, mask: str, dev: torch.device, window_fraction: float, tau: float,
                        config: dict[str, Any]) -> Any:
    """The flex block mask of :func:`measure_prefill` (sliding window or PSA blocks); its sizes go into ``config``."""
    seq_len, n_heads, block_size = config["seq_len"], config["heads"], config["block_size"]
    if mask == "sliding_window":
        window = max(1, int(round(window_fraction * seq_len)))
        config["window_tokens"] = window
        return flex_block_mask("sliding_window", seq_len, n_heads, dev, block_size, window=window)
    blocks = psa_block_tensor(inputs.q, inputs.k, block_size, tau)
    config["tau"] = tau
    config["psa_kept_fraction"] = float(blocks.sum() / ap.causal_block_mask(n_heads, blocks.shape[1]).sum())
    return flex_block_mask("blocks", seq_len, n_heads, dev, block_size, blocks=blocks)


def measure_prefill(
    seq_len: int = 1024,
    n_heads: int = 8,
    head_dim: int = 64,
    mask: str = "sliding_window",
    window_fraction: float = 0.1,
    tau: float = 0.9,
    block_size: int = 128,
    repeats: int = 5,
    warmup: int = 1,
    compile_flex: bool = True,
    eager_reference_max_len: int = 2048,
    device: str | torch.device = "auto",
    random_state: int = 0,
    callback: Callback | None = None,
) -> LatencyReport:
    """Dense vs causal SDPA vs block-masked flex attention for one sequence length.

    ``mask``: ``"sliding_window"`` (causal, ``window_fraction·seq_len`` tokens)
    or ``"psa"`` (PSA adaptive blocks from structured q/k, threshold ``tau``).
    If ``torch.compile`` fails, the reason is in ``notes`` and eager flex is
    timed instead, labelled reference only.
    """
    if seq_len % block_size:
        raise ValueError(f"seq_len ({seq_len}) must be a multiple of block_size ({block_size}).")
    if mask not in ("sliding_window", "psa"):
        raise ValueError("mask must be 'sliding_window' or 'psa'.")
    dev = resolve_device(device)
    from torch.nn.attention.flex_attention import flex_attention

    inputs = ap.make_attention_inputs(seq_len, 1, n_heads, head_dim, block_size, random_state=random_state)
    q, k, v = (t.unsqueeze(0).to(dev).contiguous() for t in (inputs.q, inputs.k, inputs.v))
    notes: list[str] = []
    config: dict[str, Any] = {"seq_len": seq_len, "heads": n_heads, "head_dim": head_dim, "mask": mask,
                              "block_size": block_size}
    t0 = time.perf_counter()
    block_mask = _prefill_block_mask(inputs, mask, dev, window_fraction, tau, config)
    compile_seconds = {"create_block_mask": time.perf_counter() - t0}
    config["block_density"] = round(1.0 - float(block_mask.sparsity()) / 100.0, 4)

    candidates: dict[str, Callable[[], Any]] = {
        "dense SDPA": lambda: F.scaled_dot_product_attention(q, k, v),
        "causal SDPA": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    }
    label = f"flex {'sliding window' if mask == 'sliding_window' else 'PSA blocks'}"
    flex_name = None
    if compile_flex:
        try:
            fn = _compiled_flex()
            t0 = time.perf_counter()
            with torch.inference_mode():
                fn(q, k, v, block_mask=block_mask)
                synchronize(dev)
            compile_seconds["flex compile (first call)"] = time.perf_counter() - t0
            flex_name = f"{label} (compiled)"
            candidates[flex_name] = lambda: fn(q, k, v, block_mask=block_mask)
        except Exception as exc:  # noqa: BLE001 - any compiler failure falls back, with the reason shown
            notes.append(f"torch.compile(flex_attention) failed on {dev.type}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:300] if str(exc) else ''}. Falling back to eager flex "
                         f"({REFERENCE_ONLY}).")
    if flex_name is None or seq_len <= eager_reference_max_len:
        eager_name = f"{label} (eager, reference only)"

        def eager() -> torch.Tensor:
            with warnings.catch_warnings():  # torch warns that eager flex is slow: that is the point of the label
                warnings.simplefilter("ignore")
                return flex_attention(q, k, v, block_mask=block_mask)

        candidates[eager_name] = eager
    timings, cancelled = time_paired(candidates, "dense SDPA", dev, repeats, warmup, callback)
    for t in timings:
        if "reference only" in t.name:
            t.note = REFERENCE_ONLY
    return LatencyReport("prefill", config, "dense SDPA", timings, environment(dev), compile_seconds,
                         notes=notes, cancelled=cancelled)


# --------------------------------------------------------------------------- decode
@dataclass
class KVCache:
    """Keys/values in blocks plus the per-block summaries selection needs (built once per cache)."""

    k_blocks: torch.Tensor  # [H, nb, bs, D]
    v_blocks: torch.Tensor
    k_min: torch.Tensor  # [H, nb, D]
    k_max: torch.Tensor
    k_mean: torch.Tensor

    @classmethod
    def build(cls, k: torch.Tensor, v: torch.Tensor, block_size: int) -> "KVCache":
        heads, seq, dim = k.shape
        if seq % block_size:
            raise ValueError(f"context length {seq} must be a multiple of block_size {block_size}.")
        kb = k.reshape(heads, seq // block_size, block_size, dim).contiguous()
        vb = v.reshape(heads, seq // block_size, block_size, dim).contiguous()
        return cls(kb, vb, kb.amin(2), kb.amax(2), kb.mean(2))

    @property
    def block_size(self) -> int:
        return int(self.k_blocks.shape[2])


def decode_dense(q: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """q ``[H, 1, D]`` against the whole cache."""
    h, nb, bs, d = cache.k_blocks.shape
    return F.scaled_dot_product_attention(q, cache.k_blocks.view(h, nb * bs, d), cache.v_blocks.view(h, nb * bs, d))


def _gather(cache: KVCache, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h, nb, bs, d = cache.k_blocks.shape
    flat = (idx + nb * torch.arange(h, device=idx.device)[:, None]).flatten()
    k = cache.k_blocks.view(h * nb, bs, d).index_select(0, flat).view(h, -1, d)
    v = cache.v_blocks.view(h * nb, bs, d).index_select(0, flat).view(h, -1, d)
    return k, v


def topk_block_indices(q: torch.Tensor, cache: KVCache, n_blocks: int) -> torch.Tensor:
    """Quest bound ``Σ_d max(q_d·kmin_d, q_d·kmax_d)`` per block, top ``n_blocks`` per head."""
    bound = torch.maximum(q * cache.k_min, q * cache.k_max).sum(-1)  # [H, nb]
    return bound.topk(min(n_blocks, bound.shape[1]), dim=-1).indices


def decode_topk(q: torch.Tensor, cache: KVCache, n_blocks: int) -> torch.Tensor:
    """Select (timed), gather, attend: the full cost a decode step would pay."""
    k, v = _gather(cache, topk_block_indices(q, cache, n_blocks))
    return F.scaled_dot_product_attention(q, k, v)


def psa_decode_budget(q: torch.Tensor, cache: KVCache, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Block order by estimated mass and per-head budgets reaching τ (our implementation of the PSA rule)."""
    d = q.shape[-1]
    est = torch.softmax((q * cache.k_mean).sum(-1) / math.sqrt(d), dim=-1)  # [H, nb]
    sorted_est, order = est.sort(dim=-1, descending=True)
    before = sorted_est.cumsum(-1) - sorted_est
    budget = (before < tau - 1e-6).sum(-1).clamp_min(1)  # [H]
    return order, budget


def decode_psa(q: torch.Tensor, cache: KVCache, tau: float) -> torch.Tensor:
    """Each head gathers and attends to its own budget of blocks.

    A head that needs 3 blocks costs 3 blocks even when another needs 100.
    Padding every head to the largest budget (one batched call) copied up to
    twice as much on the diffuse heads and was slower than dense on a CPU;
    a per-head segmented softmax was slower still (many tiny ops).
    """
    order, budget = psa_decode_budget(q, cache, tau)
    d = cache.k_blocks.shape[-1]
    outs = []
    for head, width in enumerate(budget.tolist()):
        idx = order[head, :width]
        k = cache.k_blocks[head].index_select(0, idx).view(1, -1, d)
        v = cache.v_blocks[head].index_select(0, idx).view(1, -1, d)
        outs.append(F.scaled_dot_product_attention(q[head:head + 1], k, v))
    return torch.cat(outs)


def measure_decode(
    context_len: int = 4096,
    n_heads: int = 8,
    head_dim: int = 64,
    block_size: int = 64,
    keep_fraction: float = 0.1,
    tau: float = 0.9,
    repeats: int = 20,
    warmup: int = 2,
    device: str | torch.device = "auto",
    random_state: int = 0,
    callback: Callback | None = None,
) -> LatencyReport:
    """One query vs a KV cache: dense, top-k blocks (``keep_fraction`` of blocks) and PSA adaptive blocks."""
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError("keep_fraction must be in (0, 1].")
    dev = resolve_device(device)
    inputs = ap.make_attention_inputs(context_len + block_size, 1, n_heads, head_dim, block_size,
                                      random_state=random_state)
    k, v = inputs.k[:, :context_len].to(dev), inputs.v[:, :context_len].to(dev)
    q = inputs.q[:, context_len:context_len + 1].to(dev).contiguous()  # the next token's query
    cache = KVCache.build(k, v, block_size)
    n_blocks_total = context_len // block_size
    n_keep = max(1, int(round(keep_fraction * n_blocks_total)))
    _, budget = psa_decode_budget(q, cache, tau)
    config = {"context_len": context_len, "heads": n_heads, "head_dim": head_dim, "block_size": block_size,
              "topk_blocks": n_keep, "keep_fraction": keep_fraction, "tau": tau,
              "psa_mean_kept_fraction": float(budget.float().mean() / n_blocks_total)}
    names = {"dense": "dense SDPA", "topk": f"top-{n_keep} blocks", "psa": "PSA adaptive blocks"}
    candidates = {
        names["dense"]: lambda: decode_dense(q, cache),
        names["topk"]: lambda: decode_topk(q, cache, n_keep),
        names["psa"]: lambda: decode_psa(q, cache, tau),
    }
    with torch.inference_mode():
        ref = decode_dense(q, cache)
        quality = {}
        for key in ("topk", "psa"):
            out = candidates[names[key]]()
            quality[names[key]] = {"output rel. error": float((out - ref).norm() / ref.norm())}
    timings, cancelled = time_paired(candidates, names["dense"], dev, repeats, warmup, callback)
    notes = ["Selection (bounds/estimates, top-k or sort) and the gather are inside the timed call.",
             "PSA budgets per head: " + ", ".join(str(int(b)) for b in budget) + f" of {n_blocks_total} blocks."]
    return LatencyReport("decode", config, names["dense"], timings, environment(dev), quality=quality,
                         notes=notes, cancelled=cancelled)


# --------------------------------------------------------------------------- block-sparse linear
def random_block_mask(rows: int, cols: int, sparsity: float, random_state: int = 0) -> torch.Tensor:
    """Exactly ``round(sparsity·rows·cols)`` blocks off, chosen at random."""
    gen = torch.Generator().manual_seed(random_state)
    n = rows * cols
    keep = torch.zeros(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=gen)[: n - int(round(sparsity * n))]] = True
    return keep.view(rows, cols)


def measure_block_sparse_linear(
    out_features: int = 2048,
    in_features: int = 2048,
    batch: int = 256,
    block_size: int = 32,
    sparsity: float = 0.9,
    block_mask: torch.Tensor | None = None,
    repeats: int = 10,
    warmup: int = 2,
    device: str | torch.device = "auto",
    random_state: int = 0,
    callback: Callback | None = None,
) -> LatencyReport:
    """``W @ X`` dense vs BSR ``torch.sparse.mm`` with the same block-pruned ``W``.

    ``block_mask`` (``[out/bs, in/bs]`` bool) — e.g. an SA++ mask — overrides
    the random mask at ``sparsity``.
    """
    if out_features % block_size or in_features % block_size:
        raise ValueError(f"Weight shape {out_features}×{in_features} must be divisible by block_size {block_size}.")
    dev = resolve_device(device)
    grid = (out_features // block_size, in_features // block_size)
    if block_mask is None:
        block_mask = random_block_mask(*grid, sparsity, random_state)
    elif tuple(block_mask.shape) != grid:
        raise ValueError(f"block_mask has shape {tuple(block_mask.shape)}, expected {grid}.")
    gen = torch.Generator().manual_seed(random_state)
    dense_mask = block_mask.repeat_interleave(block_size, 0).repeat_interleave(block_size, 1)
    w = (torch.randn(out_features, in_features, generator=gen) * dense_mask).to(dev)
    x = torch.randn(in_features, batch, generator=gen).to(dev)
    notes: list[str] = []
    try:
        with warnings.catch_warnings():  # "BSR support is in beta" — known, and we check the result
            warnings.simplefilter("ignore")
            w_bsr = w.to_sparse_bsr((block_size, block_size))
        err = float((torch.sparse.mm(w_bsr, x) - w @ x).abs().max())
    except (RuntimeError, NotImplementedError) as exc:
        raise ValueError(f"BSR matmul is not supported on {dev.type} with this torch build: {exc}") from exc
    actual = 1.0 - float(block_mask.float().mean())
    config = {"out_features": out_features, "in_features": in_features, "batch": batch, "block_size": block_size,
              "block_sparsity": round(actual, 4)}
    candidates = {"dense matmul": lambda: w @ x, "BSR sparse.mm": lambda: torch.sparse.mm(w_bsr, x)}
    timings, cancelled = time_paired(candidates, "dense matmul", dev, repeats, warmup, callback)
    notes.append(f"max |BSR − dense| = {err:.2e}")
    return LatencyReport("linear", config, "dense matmul", timings, environment(dev),
                         quality={"BSR sparse.mm": {"max abs diff": err}}, notes=notes, cancelled=cancelled)


# --------------------------------------------------------------------------- suite
def run_latency_suite(
    prefill_lens: tuple[int, ...] = (1024,),
    decode_lens: tuple[int, ...] = (4096,),
    linear_sparsities: tuple[float, ...] = (0.9,),
    prefill_mask: str = "sliding_window",
    window_fraction: float = 0.1,
    tau: float = 0.9,
    keep_fraction: float = 0.1,
    repeats: int = 5,
    linear_shape: tuple[int, int] = (2048, 2048),
    linear_block: int = 32,
    linear_batch: int = 256,
    num_threads: int | None = None,
    device: str | torch.device = "auto",
    callback: Callback | None = None,
) -> list[LatencyReport]:
    """Every requested case in turn; ``callback(done, total, message)`` may return True to cancel.

    Progress counts timing rounds over all cases. On cancel, the reports done
    so far come back, the interrupted one marked ``cancelled``.
    """
    cases: list[tuple[str, Any]] = ([("prefill", n) for n in prefill_lens] + [("decode", n) for n in decode_lens]
                                    + [("linear", s) for s in linear_sparsities])
    total = max(1, len(cases) * repeats)
    reports: list[LatencyReport] = []
    with torch_threads(num_threads):  # CPU threads, whatever the device (host-side work)
        for i, (kind, size) in enumerate(cases):
            stop = [False]

            def inner(r: int, _n: int, message: str, i=i, kind=kind, size=size) -> bool:
                wanted = bool(callback(i * repeats + r, total, f"{kind} {size}: {message}")) if callback else False
                stop[0] = stop[0] or wanted
                return wanted

            if callback is not None and callback(i * repeats, total, f"{kind} {size}: preparing"
                                                 + (" (compiling flex_attention: seconds to a minute)"
                                                    if kind == "prefill" else "")):
                break
            if kind == "prefill":
                rep = measure_prefill(int(size), mask=prefill_mask, window_fraction=window_fraction, tau=tau,
                                      repeats=repeats, device=device, callback=inner)
            elif kind == "decode":
                rep = measure_decode(int(size), keep_fraction=keep_fraction, tau=tau, repeats=repeats,
                                     device=device, callback=inner)
            else:
                rep = measure_block_sparse_linear(*linear_shape, batch=linear_batch, block_size=linear_block,
                                                  sparsity=float(size), repeats=repeats, device=device,
                                                  callback=inner)
            reports.append(rep)
            if stop[0]:
                break
    return reports


def reports_to_rows(reports: list[LatencyReport]) -> list[dict[str, Any]]:
    """All reports' rows in one flat table (for CSV downloads)."""
    return [row | {"load_average": str(r.env["load_average_1_5_15min"]), "threads": r.env["torch_threads"],
                   "device": r.env["device"], "cancelled": r.cancelled}
            for r in reports for row in r.rows()]
