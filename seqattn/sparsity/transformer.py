"""A small byte-level GPT on the Python standard library's own source: the model SA++ prunes.

Why this model and corpus: a decoder-only language model is where structured
pruning (heads, MLP blocks, residual width, whole blocks) buys real latency,
and the Python standard library's top-level ``*.py`` files are on every
machine that runs this package, so nothing is downloaded. Bytes (vocabulary
256) keep the tokenizer out of the picture and make the loss *bits per byte*.

* :func:`stdlib_corpus` — sorted files, a fixed byte budget, every
  ``val_every``-th 32 KiB chunk held out; its SHA-256 keys the model cache.
* :class:`TinyGPT` — nanoGPT's shape: token + position embeddings, pre-LN
  blocks of multi-head causal self-attention and a GELU MLP, a final LN and an
  (untied) output layer; no biases in the linear layers, so a sub-layer whose
  units are all removed contributes exactly nothing. Layers may differ in
  their number of heads and MLP width (a physically pruned model does).
* :class:`Gates` — optional multipliers on structural units (each head's
  output, each MLP hidden unit, each residual dimension, each block's
  output). Residual dimensions whose gate is 0 are excluded from every
  LayerNorm's statistics, so a gated model computes exactly what the smaller
  model without those units computes (``structured.remove_units``).
* :class:`KVCache` — preallocated keys/values for per-token decoding;
  ``TinyGPT.prefill`` / ``decode_step`` run a lean functional copy of
  ``forward`` (same code for dense and pruned models, so latency ratios stay fair).
* :func:`load_or_train` — trains once and caches the ``state_dict`` under a
  key of the config, the training settings and the corpus hash
  (``torch.save`` / ``torch.load(weights_only=True)``: tensors only).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqattn.data import DataError
from seqattn.device import resolve_device, torch_threads

Callback = Callable[[int, int, str], Any]
CHUNK_BYTES = 32 * 1024
CACHE_ENV = "SEQATTN_CACHE_DIR"


# --------------------------------------------------------------------------- corpus
@dataclass(frozen=True, eq=False)
class Corpus:
    """Train and validation bytes, where they came from, and their SHA-256 (the cache key)."""

    train: np.ndarray  # uint8
    val: np.ndarray
    source: str
    n_files: int
    digest: str

    @classmethod
    def from_bytes(cls, data: bytes, source: str, n_files: int = 1, val_every: int = 10) -> "Corpus":
        """Split into 32 KiB chunks (smaller for short texts); every ``val_every``-th chunk is validation."""
        if val_every < 2:
            raise ValueError("val_every must be at least 2 (one chunk in val_every is held out).")
        if len(data) < 2048:
            raise DataError(f"The corpus holds {len(data)} bytes; at least 2048 are needed for a train/val split.")
        chunk = min(CHUNK_BYTES, len(data) // (2 * val_every))
        chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]
        val = b"".join(c for i, c in enumerate(chunks) if i % val_every == val_every - 1)
        train = b"".join(c for i, c in enumerate(chunks) if i % val_every != val_every - 1)
        digest = hashlib.sha256(data).hexdigest()
        return cls(np.frombuffer(train, np.uint8).copy(), np.frombuffer(val, np.uint8).copy(), source, n_files,
                   digest)

    def window_batch(self, split: str, batch_size: int, context: int, generator: torch.Generator,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows of ``context + 1`` bytes: inputs and next-byte targets."""
        data = self.train if split == "train" else self.val
        if len(data) <= context + 1:
            raise DataError(f"The {split} split ({len(data)} bytes) is shorter than one window ({context + 1}).")
        starts = torch.randint(0, len(data) - context - 1, (batch_size,), generator=generator).numpy()
        windows = torch.from_numpy(np.stack([data[s:s + context + 1] for s in starts]).astype(np.int64))
        windows = windows.to(device)
        return windows[:, :-1], windows[:, 1:]

    def val_windows(self, n_windows: int, context: int) -> torch.Tensor:
        """``n_windows`` fixed, evenly spaced validation windows (``[n, context + 1]``): the same every call."""
        if len(self.val) <= context + 1:
            raise DataError(f"The validation split ({len(self.val)} bytes) is shorter than one window.")
        starts = np.linspace(0, len(self.val) - context - 1, n_windows).astype(np.int64)
        return torch.from_numpy(np.stack([self.val[s:s + context + 1] for s in starts]).astype(np.int64))

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "files": self.n_files, "train_bytes": int(len(self.train)),
                "val_bytes": int(len(self.val)), "sha256": self.digest}


def stdlib_corpus(n_bytes: int = 3_000_000, val_every: int = 10, folder: str | Path | None = None) -> Corpus:
    """The first ``n_bytes`` of the standard library's top-level ``*.py`` files, in sorted order.

    Deterministic for one Python installation; another Python version ships
    other files, so its corpus (and hash, and cached model) differ. ``folder``
    replaces the standard library (tests).
    """
    root = Path(folder) if folder is not None else Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if not files:
        raise DataError(f"No *.py files in {root}; pass another folder or use Corpus.from_bytes.")
    parts, total, used = [], 0, 0
    for path in files:
        if total >= n_bytes:
            break
        data = path.read_bytes()[: n_bytes - total]
        parts.append(data + b"\n")
        total += len(data) + 1
        used += 1
    return Corpus.from_bytes(b"".join(parts)[:n_bytes], f"{root} (top-level *.py, sorted)", used, val_every)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TransformerConfig:
    """Shape of a (possibly pruned) model: per-layer head counts and MLP widths, residual width."""

    d_model: int = 128
    head_dim: int = 16
    heads: tuple[int, ...] = (8, 8, 8, 8)
    mlp_hidden: tuple[int, ...] = (512, 512, 512, 512)
    context: int = 256
    vocab_size: int = 256

    def __post_init__(self) -> None:
        if len(self.heads) != len(self.mlp_hidden):
            raise ValueError(f"{len(self.heads)} head counts for {len(self.mlp_hidden)} MLP widths.")
        if self.d_model < 1 or self.head_dim < 1 or self.context < 1 or self.vocab_size < 2:
            raise ValueError("d_model, head_dim, context must be positive and vocab_size at least 2.")
        if any(h < 0 for h in self.heads) or any(m < 0 for m in self.mlp_hidden):
            raise ValueError("Head counts and MLP widths cannot be negative.")

    @classmethod
    def uniform(cls, n_layer: int = 4, n_head: int = 8, d_model: int = 128, context: int = 256,
                mlp_ratio: int = 4, vocab_size: int = 256) -> "TransformerConfig":
        """Every layer alike; ``head_dim = d_model / n_head``."""
        if n_layer < 1 or n_head < 1 or d_model % n_head:
            raise ValueError(f"d_model ({d_model}) must be a positive multiple of n_head ({n_head}); n_layer ≥ 1.")
        return cls(d_model, d_model // n_head, (n_head,) * n_layer, (mlp_ratio * d_model,) * n_layer, context,
                   vocab_size)

    @property
    def n_layer(self) -> int:
        return len(self.heads)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TransformerConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# --------------------------------------------------------------------------- gates and cache
@dataclass
class Gates:
    """Multipliers on structural units; ``None`` leaves a kind ungated.

    ``heads[l]`` (``[H_l]``) scales each head's output before the output
    projection, ``mlp[l]`` (``[M_l]``) each MLP hidden unit after the GELU,
    ``embed`` (``[d_model]``) the residual stream (embeddings and every
    sub-layer's write; a 0 also removes the dimension from LayerNorm
    statistics), ``layers`` (``[L]``) each block's two residual writes.
    """

    heads: list[torch.Tensor] | None = None
    mlp: list[torch.Tensor] | None = None
    embed: torch.Tensor | None = None
    layers: torch.Tensor | None = None


class KVCache:
    """Preallocated keys and values per layer (``kv[l]``: ``[2, B, H_l, max_len, head_dim]``) and the filled length.

    Keys and values of a layer share one tensor so that a step writes both with one copy (at 32-token
    prompts each operator call is a visible share of a layer's time).
    """

    def __init__(self, config: TransformerConfig, batch: int, max_len: int, device: torch.device,
                 dtype: torch.dtype = torch.float32):
        self.kv = [torch.empty((2, batch, h, max_len, config.head_dim), device=device, dtype=dtype)
                   for h in config.heads]  # only [..., :length, :] is read
        self.length = 0
        self.max_len = max_len

    def write(self, layer: int, kv: torch.Tensor) -> int:
        """Store ``kv`` (``[2, B, H, T, hd]``: keys, values) after the filled part; returns the new filled length."""
        end = self.length + kv.shape[3]
        if end > self.max_len:
            raise ValueError(f"The cache holds {self.max_len} positions; {end} were asked for.")
        self.kv[layer].narrow(3, self.length, kv.shape[3]).copy_(kv)
        return end

    def extend(self, layer: int, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`write`, then every key and value so far (``[B, H, length + T, hd]`` each)."""
        return self.kv[layer].narrow(3, 0, self.write(layer, kv)).unbind(0)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.kv)


# --------------------------------------------------------------------------- model
def masked_layer_norm(x: torch.Tensor, norm: nn.LayerNorm, keep: torch.Tensor | None) -> torch.Tensor:
    """LayerNorm over the kept residual dimensions only (outputs 0 elsewhere): what the narrower model computes."""
    if keep is None:
        return norm(x)
    k = keep.to(x.dtype)
    n = k.sum()
    mean = (x * k).sum(-1, keepdim=True) / n
    centred = (x - mean) * k
    var = (centred * centred).sum(-1, keepdim=True) / n
    return centred * torch.rsqrt(var + norm.eps) * norm.weight + norm.bias * k


def matmul_operand(weight: torch.Tensor) -> torch.Tensor:
    """What :func:`project` multiplies by: ``weightᵀ`` (a view) for a dense weight, a sparse CSR weight as is."""
    return weight if weight.layout == torch.sparse_csr else weight.t()


def project(x: torch.Tensor, operand: torch.Tensor) -> torch.Tensor:
    """``x @ Wᵀ`` for 2-D ``x`` and ``operand = matmul_operand(W)``: ``mm`` for a dense weight, ``torch.sparse.mm``
    for CSR (``structured_latency.CSRLinear``)."""
    if operand.layout == torch.sparse_csr:
        return torch.sparse.mm(operand, x.t()).t()
    return torch.mm(x, operand)


def project_into(residual: torch.Tensor, x: torch.Tensor, operand: torch.Tensor) -> torch.Tensor:
    """``residual += x @ Wᵀ`` in place (``Tensor.addmm_``'s signature) for dense or CSR weights."""
    if operand.layout == torch.sparse_csr:
        return residual.add_(torch.sparse.mm(operand, x.t()).t())
    return residual.addmm_(x, operand)


ONEDNN_GELU_FROM = 32 * 1024  # elements; crossover on one AVX-512 core: 32 × 512 ties, 64 × 512 favours oneDNN


def gelu_2d(h: torch.Tensor) -> torch.Tensor:
    """``F.gelu`` (exact, erf) of a 2-D tensor; below 32 Ki elements on CPU with torch's kernel, not oneDNN's.

    Torch hands every contiguous float32 CPU tensor to oneDNN, whose GELU has a fixed cost per call that
    dominates small inputs: the four GELUs of a 32-token prefill at the MLP widths (512, 224, 96, 192) took
    44 µs against 31 µs with torch's kernel (hot loop, one thread), and more inside a whole prefill. Torch keeps a
    non-contiguous input to itself, hence the transposed view (the result, transposed back, is contiguous;
    one row transposed is contiguous too and stays with oneDNN). The kernels agree to ~1e-6.
    """
    if h.device.type == "cpu" and h.numel() < ONEDNN_GELU_FROM:
        return F.gelu(h.t()).t()
    return F.gelu(h)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, head_dim: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        self.qkv = nn.Linear(d_model, 3 * n_heads * head_dim, bias=False)
        self.proj = nn.Linear(n_heads * head_dim, d_model, bias=False)

    def forward(self, x: torch.Tensor, head_gate: torch.Tensor | None = None, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        b, t, _ = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # [3, B, H, T, hd]
        start = 0 if cache is None else cache.length  # TinyGPT.first_position checked it
        k, v = (qkv[1], qkv[2]) if cache is None else cache.extend(layer, qkv[1:])
        q = qkv[0]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=start == 0 and t > 1)  # [B, H, T, hd]
        if head_gate is not None:
            y = y * head_gate.view(1, -1, 1, 1)
        return self.proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.fc = nn.Linear(d_model, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor, unit_gate: torch.Tensor | None = None) -> torch.Tensor:
        h = F.gelu(self.fc(x))
        return self.fc2(h if unit_gate is None else h * unit_gate)


class Block(nn.Module):
    """Pre-LN: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``; a sub-layer with no units is absent."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int, mlp_hidden: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, head_dim) if n_heads else None
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_hidden) if mlp_hidden else None

    def forward(self, x: torch.Tensor, layer: int, gates: Gates | None, keep: torch.Tensor | None,
                cache: KVCache | None) -> torch.Tensor:
        scale = None
        if gates is not None:
            parts = [g for g in (gates.embed, None if gates.layers is None else gates.layers[layer]) if g is not None]
            scale = math.prod(parts) if parts else None  # residual writes: block gate × residual gate
        if self.attn is not None:
            head_gate = gates.heads[layer] if gates is not None and gates.heads is not None else None
            a = self.attn(masked_layer_norm(x, self.ln1, keep), head_gate, cache, layer)
            x = x + (a if scale is None else a * scale)
        if self.mlp is not None:
            unit_gate = gates.mlp[layer] if gates is not None and gates.mlp is not None else None
            m = self.mlp(masked_layer_norm(x, self.ln2, keep), unit_gate)
            x = x + (m if scale is None else m * scale)
        return x


class TinyGPT(nn.Module):
    """nanoGPT-style byte-level language model; ``forward(idx)`` returns next-byte logits ``[B, T, vocab]``."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, d)
        self.pos_emb = nn.Embedding(config.context, d)
        self.blocks = nn.ModuleList(Block(d, h, config.head_dim, m) for h, m in zip(config.heads, config.mlp_hidden))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False)
        self._weights_cache: tuple | None = None
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's: N(0, 0.02), residual output projections scaled by 1/√(2L)."""
        for name, p in self.named_parameters():
            if p.dim() == 2:
                residual = name.endswith(("proj.weight", "fc2.weight"))
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if residual else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx: torch.Tensor, gates: Gates | None = None, cache: KVCache | None = None,
                last_only: bool = False) -> torch.Tensor:
        """Next-byte logits ``[B, T, vocab]`` (``last_only``: ``[B, 1, vocab]``, the last position's only)."""
        b, t = idx.shape
        start = self.first_position(t, cache)
        x = self.tok_emb(idx) + self.pos_emb.weight[start:start + t]  # a slice: no index tensor, no gather
        keep = None
        if gates is not None and gates.embed is not None:
            x = x * gates.embed
            nonzero = gates.embed != 0
            keep = None if bool(nonzero.all()) else nonzero
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, gates, keep, cache)
        if cache is not None:
            cache.length += t
        if last_only:  # generation needs only the next byte: skip the final LN and output layer elsewhere
            x = x[:, -1:]
        return self.lm_head(masked_layer_norm(x, self.ln_f, keep))

    def first_position(self, n_tokens: int, cache: KVCache | None) -> int:
        """Where ``n_tokens`` new positions start (the cache's filled length, else 0), after checking they fit the
        context and that a filled cache grows one token at a time (the one check ``forward`` and generation share)."""
        start = 0 if cache is None else cache.length
        if start + n_tokens > self.config.context:
            raise ValueError(f"{start + n_tokens} positions exceed the model's context of {self.config.context}.")
        if start and n_tokens > 1:
            raise ValueError("Extending a filled cache by several tokens at once is not supported; decode one by one.")
        return start

    def new_cache(self, batch: int = 1, max_len: int | None = None) -> KVCache:
        w = self.tok_emb.weight  # not next(self.parameters()): walking the modules cost ~10 µs per prefill
        return KVCache(self.config, batch, max_len or self.config.context, w.device, w.dtype)

    @torch.inference_mode()
    def prefill(self, idx: torch.Tensor, gates: Gates | None = None) -> tuple[torch.Tensor, KVCache]:
        """Run the prompt, filling a fresh cache; returns the last position's logits and the cache.

        Only the last position goes through the final LayerNorm and the output layer (what generation
        needs); keys and values of every position go to the cache.
        """
        cache = self.new_cache(idx.shape[0])
        if gates is None:
            return self._generate(idx, cache), cache
        return self(idx, gates, cache, last_only=True)[:, -1], cache

    @torch.inference_mode()
    def decode_step(self, token: torch.Tensor, cache: KVCache, gates: Gates | None = None) -> torch.Tensor:
        """One new token per sequence (``[B, 1]``) against the cache; returns its logits ``[B, vocab]``."""
        if gates is None:
            return self._generate(token, cache)
        return self(token, gates, cache, last_only=True)[:, -1]

    def _generate(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Ungated prefill or decode step: what ``forward`` computes, with fewer operator and Python calls.

        At 32-token prompts a prefill takes 1–2 ms, and what does not shrink with the model (module dispatch,
        attribute lookups, views, copies, per-call set-up of kernels) is a large share of it, more so for a
        pruned model. Here the weights are read once (:meth:`_inference_weights`), the residual stream stays
        ``[B·T, d]`` and is updated in place (``addmm_``: no copy of it per write), every projection is one
        product, a prompt attends to its own keys and values (the cache is only written), small GELUs skip
        oneDNN (:func:`gelu_2d`), and nothing goes through ``Module.__call__``. Dense and pruned models run
        this same code (benchmarks/README.md: what each step bought).
        """
        b, t = idx.shape
        start = self.first_position(t, cache)
        shape, hd = (self.config.d_model,), self.config.head_dim
        (tok, pos), blocks, (ln_f, head), (mm, addmm_) = self._inference_weights()
        x = torch.embedding(tok, idx).add_(pos[start:start + t]).view(b * t, shape[0])
        for layer, (ln1, qkv_w, proj_w, heads, ln2, fc_w, fc2_w) in enumerate(blocks):
            if heads:
                qkv = mm(torch.layer_norm(x, shape, *ln1), qkv_w).view(b, t, 3, heads, hd).permute(2, 0, 3, 1, 4)
                if start:
                    q, (k, v) = qkv[0], cache.extend(layer, qkv[1:])
                else:
                    cache.write(layer, qkv[1:])
                    q, k, v = qkv.unbind(0)
                y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)  # decoding: t = 1
                addmm_(x, y.transpose(1, 2).reshape(b * t, heads * hd), proj_w)
            if fc_w is not None:
                addmm_(x, gelu_2d(mm(torch.layer_norm(x, shape, *ln2), fc_w)), fc2_w)
        cache.length += t
        return mm(torch.layer_norm(x.view(b, t, -1)[:, -1], shape, *ln_f), head)

    def _inference_weights(self) -> tuple:
        """((token, position embeddings), per block (LN1 weight, bias, eps), qkv, proj, heads, (LN2 …), fc, fc2,
        (final LN, output layer), (product, in-place residual product)); projections as :func:`matmul_operand`
        (``None``/0 where a sub-layer is absent); the products are ``torch.mm`` / ``Tensor.addmm_``, or
        :func:`project` / :func:`project_into` when some weight is CSR.

        Cached: reading them through ``Module.__getattr__`` cost 60–200 µs a call, a tenth of a short
        prefill. The entries are the parameters or views of them, so training and ``load_state_dict`` (in
        place) show through; moving or copying the model (``.to``, ``deepcopy``) clears the cache; code that
        *replaces* a layer or a parameter afterwards calls :meth:`layers_replaced`.
        """
        if self._weights_cache is None:
            self._weights_cache = self._read_inference_weights()
        return self._weights_cache

    def layers_replaced(self) -> None:
        """Forget the cached weights of :meth:`_inference_weights` (after swapping a sub-module or parameter)."""
        self._weights_cache = None

    def _apply(self, fn, recurse: bool = True):  # .to(), .cuda(), .float(), …: tensors may be new objects
        self._weights_cache = None
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:  # copy.deepcopy / pickle: the copy's views would point at the old weights
        return {**super().__getstate__(), "_weights_cache": None}

    def _read_inference_weights(self) -> tuple:
        norm = lambda ln: (ln.weight, ln.bias, ln.eps)  # noqa: E731
        op = lambda module: None if module is None else matmul_operand(module.weight)  # noqa: E731
        blocks = [(norm(b.ln1), op(b.attn and b.attn.qkv), op(b.attn and b.attn.proj),
                   0 if b.attn is None else b.attn.n_heads, norm(b.ln2), op(b.mlp and b.mlp.fc),
                   op(b.mlp and b.mlp.fc2)) for b in self.blocks]
        operands = [w for block in blocks for w in (block[1], block[2], block[5], block[6])] + [op(self.lm_head)]
        sparse = any(w is not None and w.layout == torch.sparse_csr for w in operands)
        products = (project, project_into) if sparse else (torch.mm, torch.Tensor.addmm_)
        return (self.tok_emb.weight, self.pos_emb.weight), blocks, (norm(self.ln_f), op(self.lm_head)), products

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainSettings:
    """How the dense model is trained (part of the cache key)."""

    steps: int = 2000
    batch_size: int = 4  # × context 256 = 1,024 bytes a step: many small steps learn fastest per second here
    learning_rate: float = 2e-3  # 4e-3 learnt slower (train loss 2.41 vs 2.25 at step 800)
    min_lr_fraction: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    random_state: int = 0


@dataclass(frozen=True)
class ModelPreset:
    """A named model shape, corpus size and training recipe."""

    config: TransformerConfig
    corpus_bytes: int
    train: TrainSettings
    description: str


PRESETS: dict[str, ModelPreset] = {
    "standard": ModelPreset(TransformerConfig.uniform(4, 8, 128, 256), 3_000_000, TrainSettings(),
                            "4 layers × 8 heads (head dim 16), d_model 128, MLP 512, context 256; 0.89 M parameters"),
    "tiny": ModelPreset(TransformerConfig.uniform(2, 4, 32, 64), 300_000,
                        TrainSettings(steps=150, batch_size=16, learning_rate=3e-3, warmup_steps=10),
                        "2 layers × 4 heads (head dim 8), d_model 32, MLP 128, context 64; tests, a quick look"),
}


def optimizer_for(model: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not LayerNorm or biases)."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": matrices, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.95))


def lm_loss(model: TinyGPT, x: torch.Tensor, y: torch.Tensor, gates: Gates | None = None) -> torch.Tensor:
    logits = model(x, gates)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate_loss(model: TinyGPT, windows: torch.Tensor, gates: Gates | None = None, batch_size: int = 32) -> float:
    """Mean next-byte cross-entropy (nats per byte) over fixed validation windows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        w = windows[i:i + batch_size].to(device)
        total += float(lm_loss(model, w[:, :-1], w[:, 1:], gates)) * w[:, 1:].numel()
        count += w[:, 1:].numel()
    model.train(was_training)
    return total / count


def bits_per_byte(nats: float) -> float:
    return nats / math.log(2)


def train_model(config: TransformerConfig, corpus: Corpus, settings: TrainSettings = TrainSettings(),
                device: str | torch.device = "auto", num_threads: int | None = None, eval_windows: int = 64,
                callback: Callback | None = None, model: TinyGPT | None = None) -> tuple[TinyGPT, dict[str, Any]]:
    """Train (AdamW, warm-up then cosine decay, gradient clipping); returns the model and a record.

    From scratch, or ``model`` (of this ``config``) in place, e.g. one with
    planted structure. ``callback(step, total, message)`` may return True to
    stop: the model trained so far comes back with ``record["stopped_early"] = True``.
    """
    if settings.steps < 1 or settings.batch_size < 1:
        raise ValueError("steps and batch_size must be positive.")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(settings.random_state)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.random_state)
            model = TinyGPT(config)
    elif model.config != config:
        raise ValueError(f"The model's config {model.config} is not {config}.")
    model = model.to(dev).train()
    opt = optimizer_for(model, settings.learning_rate, settings.weight_decay)
    windows = corpus.val_windows(eval_windows, config.context)
    start, history, stopped = time.perf_counter(), [], False
    report_every = max(1, settings.steps // 100)
    with torch_threads(num_threads, dev):
        for step in range(settings.steps):
            for group in opt.param_groups:
                group["lr"] = settings.learning_rate * _lr_factor(step, settings)
            x, y = corpus.window_batch("train", settings.batch_size, config.context, gen, dev)
            loss = lm_loss(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt.step()
            if (step + 1) % report_every == 0 or step + 1 == settings.steps:
                value = float(loss.detach())
                history.append((step + 1, value))
                if callback is not None and callback(step + 1, settings.steps,
                                                     f"training the dense model: step {step + 1}/{settings.steps}, "
                                                     f"train loss {value:.3f}"):
                    stopped = True
                    break
        val = evaluate_loss(model, windows)
    record = {"val_loss": val, "val_bits_per_byte": bits_per_byte(val), "train_seconds": time.perf_counter() - start,
              "steps_done": history[-1][0] if history else 0, "history": history, "stopped_early": stopped,
              "device": str(dev), "eval_windows": eval_windows}
    return model.eval(), record


def _lr_factor(step: int, s: TrainSettings) -> float:
    if step < s.warmup_steps:
        return (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    return s.min_lr_fraction + (1 - s.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------- cache
@dataclass
class TrainedModel:
    """A dense model, its corpus and what its training measured (``from_cache``: loaded, not trained)."""

    model: TinyGPT
    corpus: Corpus
    record: dict[str, Any]
    from_cache: bool
    path: Path | None = None
    preset: ModelPreset | None = None
    name: str = "custom"  # the preset's name in PRESETS

    @property
    def config(self) -> TransformerConfig:
        return self.model.config


def default_cache_dir() -> Path:
    """``$SEQATTN_CACHE_DIR``, else ``~/.cache/seqattn``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "seqattn")


def cache_key(config: TransformerConfig, settings: TrainSettings, corpus: Corpus) -> str:
    text = json.dumps({"config": config.to_dict(), "train": asdict(settings), "corpus": corpus.digest,
                       "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_or_train(preset: str | ModelPreset = "standard", corpus: Corpus | None = None,
                  cache_dir: str | Path | None = None, device: str | torch.device = "auto",
                  num_threads: int | None = None, callback: Callback | None = None) -> TrainedModel:
    """The preset's trained model: from the cache when this config, recipe and corpus were trained before.

    A training stopped early is returned but not cached.
    """
    name = preset if isinstance(preset, str) else next((k for k, v in PRESETS.items() if v == preset), "custom")
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"Unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}.")
        preset = PRESETS[preset]
    corpus = corpus if corpus is not None else stdlib_corpus(preset.corpus_bytes)
    dev = resolve_device(device)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"tinygpt-{cache_key(preset.config, preset.train, corpus)}"
    weights, meta = path / "model.pt", path / "meta.json"
    if weights.exists() and meta.exists():
        model = TinyGPT(preset.config)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        record = json.loads(meta.read_text())["record"]
        return TrainedModel(model.to(dev).eval(), corpus, record, True, path, preset, name)
    model, record = train_model(preset.config, corpus, preset.train, dev, num_threads, callback=callback)
    if not record["stopped_early"]:
        _save_atomically(path, model, {"config": preset.config.to_dict(), "train": asdict(preset.train),
                                       "corpus": corpus.describe(), "record": record})
    return TrainedModel(model, corpus, record, False, path, preset, name)


def _save_atomically(path: Path, model: TinyGPT, meta: dict[str, Any]) -> None:
    """Write into a temporary folder beside ``path`` and rename it: readers never see half a cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=path.parent))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, tmp / "model.pt")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        os.replace(tmp, path)
    except OSError:  # another process cached the same model first: keep theirs
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
