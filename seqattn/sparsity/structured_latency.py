"""What structured pruning buys in time and memory: dense vs physically pruned transformers, side by side.

Every candidate is a real model on the current device: the dense
:class:`TinyGPT`, the smaller models :func:`structured.remove_units` built,
and, for comparison at the *same* sparsity without structure, the dense model
with the same share of each block matrix zeroed by magnitude (unstructured),
run either with its dense kernels (the zeros cost as much as any weight) or
with the matrices stored as ``torch.sparse`` CSR.

* **prefill** — one prompt of ``seq_len`` tokens through the model, filling a
  fresh KV cache (``TinyGPT.prefill``), per sequence length.
* **decode** — one new token against a cache holding ``decode_context`` tokens
  (``TinyGPT.decode_step``; the cache is rewound before each call, so every
  call does the same work).
* **memory** — weight bytes (CSR: values + indices) and KV-cache bytes per
  token, counted from the tensors; on CUDA also the peak memory allocated
  during a prefill.

Timing is :func:`seqattn.sparsity.latency.time_paired`: interleaved rounds in
a rotating order, medians, the p25–p75 spread and per-round ratios to the
dense model; threads, device and load travel with every report.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Callable

import torch
from torch import nn

from seqattn.device import resolve_device, synchronize, torch_threads
from seqattn.sparsity.latency import LatencyReport, environment, time_paired
from seqattn.sparsity.transformer import TinyGPT, project

Callback = Callable[[int, int, str], Any]
DENSE = "dense"
UNSTRUCTURED_DENSE = "unstructured {:.0%}, dense kernels"
UNSTRUCTURED_CSR = "unstructured {:.0%}, CSR"


# --------------------------------------------------------------------------- unstructured comparison
class CSRLinear(nn.Module):
    """A bias-free linear layer whose weight is stored as CSR and applied with ``torch.sparse.mm``."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": known, and the output is tested
            warnings.simplefilter("ignore")
            self.register_buffer("weight", weight.detach().to_sparse_csr())
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return project(x.reshape(-1, self.in_features), self.weight).reshape(*x.shape[:-1], self.out_features)

    def nbytes(self) -> int:
        w = self.weight
        return sum(t.numel() * t.element_size() for t in (w.values(), w.crow_indices(), w.col_indices()))


def _block_linears(model: TinyGPT) -> list[tuple[nn.Module, str]]:
    pairs = []
    for block in model.blocks:
        if block.attn is not None:
            pairs += [(block.attn, "qkv"), (block.attn, "proj")]
        if block.mlp is not None:
            pairs += [(block.mlp, "fc"), (block.mlp, "fc2")]
    return pairs


@torch.no_grad()
def unstructured_copy(dense: TinyGPT, fraction: float, csr: bool = False) -> TinyGPT:
    """The dense model with the smallest-|w| ``fraction`` of every block matrix set to 0 (optionally as CSR)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}.")
    model = copy.deepcopy(dense)
    for owner, name in _block_linears(model):
        w = getattr(owner, name).weight
        n_zero = int(round(fraction * w.numel()))
        if n_zero:
            threshold = w.abs().flatten().kthvalue(n_zero).values
            w.masked_fill_(w.abs() <= threshold, 0.0)
        if csr:
            setattr(owner, name, CSRLinear(w))
    model.layers_replaced()
    return model.eval()


def weight_bytes(model: TinyGPT) -> int:
    """Bytes of all weights (CSR layers: values and both index arrays)."""
    total = 0
    for module in model.modules():
        if isinstance(module, CSRLinear):
            total += module.nbytes()
        else:
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return total


# --------------------------------------------------------------------------- measurements
def candidate_models(dense: TinyGPT, pruned: dict[str, TinyGPT],
                     unstructured_fraction: float | None) -> dict[str, TinyGPT]:
    """Dense first (the baseline), then the pruned models, then the unstructured copies (no CSR copy on
    Apple MPS, which has no sparse CSR kernels)."""
    models = {DENSE: dense, **pruned}
    if unstructured_fraction is not None:
        models[UNSTRUCTURED_DENSE.format(unstructured_fraction)] = unstructured_copy(dense, unstructured_fraction)
        if next(dense.parameters()).device.type != "mps":
            models[UNSTRUCTURED_CSR.format(unstructured_fraction)] = unstructured_copy(dense, unstructured_fraction,
                                                                                      True)
    return models


def _prompt(models: dict[str, TinyGPT], length: int, shortest: int, batch: int, device: torch.device | None,
            random_state: int) -> tuple[torch.device, torch.Tensor]:
    """The device and ``[batch, length]`` random bytes, after checking the length fits every model's context."""
    dev = device or next(next(iter(models.values())).parameters()).device
    context = min(m.config.context for m in models.values())
    if not shortest <= length <= context:
        raise ValueError(f"seq_len / context_len must be in {shortest}..{context} (the models' context), got {length}.")
    gen = torch.Generator().manual_seed(random_state)
    return dev, torch.randint(0, 256, (batch, length), generator=gen).to(dev)


def measure_prefill_models(models: dict[str, TinyGPT], seq_len: int, batch: int = 1, repeats: int = 15,
                           warmup: int = 2, device: torch.device | None = None, random_state: int = 0,
                           callback: Callback | None = None, clock: str = "wall") -> LatencyReport:
    """Prompt of ``seq_len`` bytes through each model (fresh KV cache each call); baseline: the first model."""
    dev, idx = _prompt(models, seq_len, 1, batch, device, random_state)
    candidates = {name: (lambda m=m: m.prefill(idx)) for name, m in models.items()}
    baseline = next(iter(models))
    timings, cancelled = time_paired(candidates, baseline, dev, repeats, warmup, callback, clock)
    config = {"seq_len": seq_len, "batch": batch, "clock": clock}
    return LatencyReport("prefill", config, baseline, timings, environment(dev), quality=_memory(models, dev, idx),
                         cancelled=cancelled)


def measure_decode_models(models: dict[str, TinyGPT], context_len: int, batch: int = 1, repeats: int = 30,
                          warmup: int = 3, device: torch.device | None = None, random_state: int = 0,
                          callback: Callback | None = None, clock: str = "wall") -> LatencyReport:
    """One new token per call against a cache of ``context_len − 1`` tokens (rewound before every call)."""
    dev, idx = _prompt(models, context_len, 2, batch, device, random_state)
    candidates = {}
    for name, m in models.items():
        _, cache = m.prefill(idx[:, :-1])

        def step(m=m, cache=cache) -> torch.Tensor:
            cache.length = context_len - 1
            return m.decode_step(idx[:, -1:], cache)

        candidates[name] = step
    baseline = next(iter(models))
    timings, cancelled = time_paired(candidates, baseline, dev, repeats, warmup, callback, clock)
    return LatencyReport("decode", {"context_len": context_len, "batch": batch, "clock": clock}, baseline, timings,
                         environment(dev), cancelled=cancelled)


def _memory(models: dict[str, TinyGPT], dev: torch.device, idx: torch.Tensor) -> dict[str, dict[str, float]]:
    """Weight MiB, KV-cache KiB per token (and, on CUDA, peak MiB during this prefill) per model."""
    out = {}
    for name, m in models.items():
        row = {"weights MiB": weight_bytes(m) / 2**20,
               "KV cache KiB/token": m.new_cache(1, 1).nbytes / 2**10}
        if dev.type == "cuda":
            synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            with torch.inference_mode():
                m.prefill(idx)
            synchronize(dev)
            row["prefill peak MiB (CUDA)"] = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
        out[name] = row
    return out


def measure_structured_latency(
    dense: TinyGPT,
    pruned: dict[str, TinyGPT],
    seq_lens: tuple[int, ...] = (64, 128, 256),
    decode_context: int | None = None,
    unstructured_fraction: float | None = None,
    repeats: int = 15,
    num_threads: int | None = None,
    device: str | torch.device = "auto",
    callback: Callback | None = None,
    clock: str = "wall",
) -> list[LatencyReport]:
    """Prefill at each length, then decode, for the dense model, the pruned ones and the unstructured copies.

    ``callback(done, total, message)`` counts timing rounds; returning True
    stops after the current round (the report is marked ``cancelled``).
    ``clock="thread_cpu"`` (CPU, ``num_threads=1``) times the thread's CPU
    time, which a busy shared machine does not inflate.
    """
    if clock == "thread_cpu" and num_threads != 1:
        raise ValueError("clock='thread_cpu' counts one thread's work: pass num_threads=1.")
    dev = resolve_device(device)
    models = {name: m.to(dev).eval() for name, m in
              candidate_models(dense, pruned, unstructured_fraction).items()}
    decode_context = decode_context or max(seq_lens)
    cases = [("prefill", n) for n in seq_lens] + [("decode", decode_context)]
    decode_repeats = 2 * repeats
    total = repeats * len(seq_lens) + decode_repeats
    reports: list[LatencyReport] = []
    done = [0]
    with torch_threads(num_threads, dev):
        for kind, size in cases:
            stop = [False]

            def inner(r: int, n: int, message: str, kind=kind, size=size) -> bool:
                wanted = bool(callback(done[0] + r, total, f"{kind} {size} tokens: {message}")) if callback else False
                stop[0] = stop[0] or wanted
                return wanted

            if kind == "prefill":
                rep = measure_prefill_models(models, size, repeats=repeats, device=dev, callback=inner, clock=clock)
                done[0] += repeats
            else:
                rep = measure_decode_models(models, size, repeats=decode_repeats, device=dev, callback=inner,
                                            clock=clock)
                done[0] += decode_repeats
            reports.append(rep)
            if stop[0]:
                break
    return reports
