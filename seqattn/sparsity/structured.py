"""SA++ over a transformer's structure: which heads, MLP blocks, residual dimensions and blocks to keep.

The block-pruning SA++ (:mod:`seqattn.sparsity.block_pruning`) puts one logit
on each weight block; here each **structural unit** gets one: every attention
head, every block of MLP hidden units, every block of residual (embedding)
dimensions and, optionally, every transformer block. As with feature groups
(:class:`seqattn.data.groups.FeatureGroups`), one logit gates several
columns: the unit's attention weight multiplies all of them (a head's output
channels, a block's hidden units, a block's residual dimensions).

Attention is ``n · softmax(L)`` (mean 1, :func:`block_pruning.mean_one_softmax`)
over **all units of a kind across the network** (``scope="global"``, the
default): units compete across layers, so a layer whose heads matter keeps
more of them, which is what Michel et al. (2019) found works better than a
fixed share per layer. ``scope="layer"`` normalises and prunes within each
layer instead (every layer keeps the same share, uniform shapes), as the
block SA++ does per weight matrix. ``scope="normalised"`` takes a softmax per
layer but ranks all units together, the counterpart of Michel et al.'s
per-layer normalisation of the gradient scores (the baselines then prune
globally, as with ``"global"``).

Training reuses SA++'s phases (:func:`block_pruning.plan_phases`): warm-up →
(sparsify → sparse → dense) × N → final sparsify → fine-tune, with the pruned
share of each kind following ``s(1−e^{−ct})/(1−e^{−c})``
(:func:`attention_patterns.exponential_schedule`, c = 4) inside sparsify
phases. The logits train whenever the support may change (warm-up, dense and
sparsify phases; the SA++ paper trains its softmax mask in the dense phases)
and are frozen while the mask is fixed (sparse, fine-tune). Masks keep the
units with the largest attention among those still alive; a dense phase
restores every unit (its weights were frozen while it was masked).

**What the logits learn from** (``logit_signal``; a deliberate deviation
from the block SA++, exercised by the planted test). On a *trained* network the gradient of the
loss with respect to a unit's gate at its current value (≈ 1) says whether a
little more or less of the unit would help, not what removing it costs: on
the planted model below, the most important head (removing it costs the
most) had a *positive* mean gate gradient, so plain SA++ lowered its
attention and removed it, and kept the planted dead heads (whose gradient is
exactly 0). SA's own signal is the slope at gate **0**: the first-order gain
of switching a unit (back) on, which is how SA scores its candidates. So by
default (``"switched-off"``) the logits learn only from units that are
switched off, through a straight-through gate (forward value 0, gradient the
loss's slope at 0): in warm-up and dense phases a random share of the alive
units is switched off at every step (the target fraction up to a half, its
complement above: a quarter at 75%, ``exploration_share``), in sparsify phases
the pruned units are (subnetworks of the final size at 75%, a quarter of the
units on, taught the logits worse: switching off a quarter instead lowered the
loss after the fine-tune by 0.019 nats/byte on the tuning seeds). In warm-up
and dense phases that signal comes from a second pass over the same batch
(``separate_logit_pass``, the logits' gradient only), and the weights train on the model as it is, every alive unit
on and scaled by ``A``, as in the SA++ paper's dense phase; training them on
the random subnetworks instead (structured dropout at the target fraction)
left the final model 0.011–0.015 nats/byte worse on the tuning seeds, while
SA++'s choice of units, replayed through the baselines' training, was as good
as gradient importance's. ``"all"`` is the plain variant: every unit's gate
gradient at ``A``.

Baselines get the same number of optimizer steps, the same final ramp and the
same fine-tune, and differ only in how units are scored: **magnitude** (ℓ2
norm of all the unit's weights), **gradient** (|∂loss/∂gate| summed over
batches and normalised per layer, Michel et al. 2019, "Are Sixteen Heads
Really Better than One?") and **random**.

:func:`remove_units` then builds a genuinely smaller :class:`TinyGPT` (fewer
heads → narrower qkv/output projections, narrower MLPs, a narrower residual
stream, fewer blocks) with the final gates folded into its weights; it
computes what the gated model computes (tested to float tolerance).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from seqattn.data.groups import FeatureGroups
from seqattn.device import resolve_device, torch_threads
from seqattn.sparsity.block_pruning import (
    Phase,
    keep_best,
    mean_one_softmax,
    method_phases,
    phase_schedule,
    phases_after,
    plan_phases,
    snapshot_label,
    snapshot_steps,
)
from seqattn.sparsity.transformer import (
    Corpus,
    Gates,
    TinyGPT,
    TransformerConfig,
    evaluate_loss,
    lm_loss,
    optimizer_for,
)

UNIT_KINDS = {"heads": "attention heads", "mlp": "MLP blocks", "embed": "embedding-dimension blocks",
              "layers": "transformer blocks"}
METHODS = ("SA++", "magnitude", "gradient", "random")
#: Not a pruning method: the dense model trained for the same steps (fraction 0), the fair reference.
DENSE_REFERENCE = "dense"
#: Per scope, the unit pools SA++'s softmax normalises over and the pools every method prunes within
#: (:meth:`UnitLayout.pools`): ``"network"`` is all units of a kind, ``"layer"`` each layer's units.
SCOPE_POOLS = {
    "global": {"softmax": "network", "pruning": "network"},
    "layer": {"softmax": "layer", "pruning": "layer"},
    "normalised": {"softmax": "layer", "pruning": "network"},
}
SCOPES = tuple(SCOPE_POOLS)
LOGIT_SIGNALS = ("switched-off", "all")
LOGIT_OPTIMIZERS = ("adam", "normalized-sgd")
EXPLORATION_SHARES = ("target", "mirrored")  # or a number: PruningSettings.exploration_share


# --------------------------------------------------------------------------- units
@dataclass(frozen=True)
class UnitLayout:
    """The units of one kind: groups of gated columns (one logit per group) and each unit's layer (−1: none)."""

    kind: str
    groups: FeatureGroups
    layer: np.ndarray
    column_shape: tuple[int, ...]  # the gate's shape: heads (L, H), mlp (L, M), embed (d,), layers (L,)

    @property
    def n_units(self) -> int:
        return self.groups.n_groups

    @property
    def names(self) -> tuple[str, ...]:
        return self.groups.names

    def pools(self, scope: str, use: str) -> list[np.ndarray]:
        """Index sets SA++'s softmax (``use="softmax"``) or a pruning step (``use="pruning"``) runs over under
        ``scope`` (:data:`SCOPE_POOLS`); a kind without layers (embed) is one pool either way."""
        if scope not in SCOPE_POOLS or use not in SCOPE_POOLS[scope]:
            raise ValueError(f"Unknown scope {scope!r} or use {use!r}; scopes: {SCOPES}, uses: softmax, pruning.")
        if SCOPE_POOLS[scope][use] == "network" or (self.layer < 0).all():
            return [np.arange(self.n_units)]
        return [np.flatnonzero(self.layer == l) for l in np.unique(self.layer)]


def unit_layouts(config: TransformerConfig, kinds: Sequence[str], mlp_block: int = 32,
                 embed_block: int = 16) -> dict[str, UnitLayout]:
    """Units of each requested kind for a dense model whose layers are alike."""
    unknown = [k for k in kinds if k not in UNIT_KINDS]
    if unknown:
        raise ValueError(f"Unknown unit kinds {unknown}; choose from {', '.join(UNIT_KINDS)}.")
    if len(set(config.heads)) != 1 or len(set(config.mlp_hidden)) != 1:
        raise ValueError("Structured SA++ prunes a dense model whose layers all have the same shape.")
    n_layer, n_head, width, d = config.n_layer, config.heads[0], config.mlp_hidden[0], config.d_model
    for name, size, block in (("MLP width", width, mlp_block), ("d_model", d, embed_block)):
        if block < 1 or size % block:
            raise ValueError(f"{name} ({size}) must be a multiple of its unit block size ({block}).")
    layouts = {}
    for kind in kinds:
        if kind == "heads":
            names = [f"L{l}.H{h}" for l in range(n_layer) for h in range(n_head)]
            cols = [(i,) for i in range(n_layer * n_head)]
            layer, shape = np.repeat(np.arange(n_layer), n_head), (n_layer, n_head)
        elif kind == "mlp":
            per = width // mlp_block
            names = [f"L{l}.MLP[{b * mlp_block}:{(b + 1) * mlp_block}]" for l in range(n_layer) for b in range(per)]
            cols = [tuple(range(l * width + b * mlp_block, l * width + (b + 1) * mlp_block))
                    for l in range(n_layer) for b in range(per)]
            layer, shape = np.repeat(np.arange(n_layer), per), (n_layer, width)
        elif kind == "embed":
            names = [f"D[{a}:{a + embed_block}]" for a in range(0, d, embed_block)]
            cols = [tuple(range(a, a + embed_block)) for a in range(0, d, embed_block)]
            layer, shape = np.full(len(names), -1), (d,)
        else:
            names, cols = [f"L{l}" for l in range(n_layer)], [(l,) for l in range(n_layer)]
            layer, shape = np.arange(n_layer), (n_layer,)
        groups = FeatureGroups.from_lists(names, cols, int(np.prod(shape)))
        layouts[kind] = UnitLayout(kind, groups, layer, shape)
    return layouts


def unit_gates(layouts: dict[str, UnitLayout], values: dict[str, torch.Tensor]) -> Gates:
    """Per-unit values (``[n_units]`` per kind) → the model's :class:`Gates` (each unit's value on its columns)."""
    gates = Gates()
    for kind, layout in layouts.items():
        index = torch.as_tensor(layout.groups.column_group(), device=values[kind].device)
        cols = values[kind][index].view(layout.column_shape)
        if kind in ("heads", "mlp"):
            setattr(gates, kind, list(cols.unbind(0)))
        else:
            setattr(gates, kind, cols)
    return gates


# --------------------------------------------------------------------------- scores
@torch.no_grad()
def magnitude_scores(model: TinyGPT, layouts: dict[str, UnitLayout]) -> dict[str, torch.Tensor]:
    """ℓ2 norm of every weight that belongs to the unit (its rows and columns in every matrix it touches)."""
    cfg = model.config
    hd, out = cfg.head_dim, {}
    blocks = list(model.blocks)
    for kind, layout in layouts.items():
        if kind == "heads":
            sq = []
            for b in blocks:
                qkv = b.attn.qkv.weight.view(3, cfg.heads[0], hd, -1).pow(2).sum(dim=(0, 2, 3))
                proj = b.attn.proj.weight.view(-1, cfg.heads[0], hd).pow(2).sum(dim=(0, 2))
                sq.append(qkv + proj)
            col = torch.cat(sq)
        elif kind == "mlp":
            col = torch.cat([b.mlp.fc.weight.pow(2).sum(1) + b.mlp.fc2.weight.pow(2).sum(0) for b in blocks])
        elif kind == "embed":
            col = (model.tok_emb.weight.pow(2).sum(0) + model.pos_emb.weight.pow(2).sum(0)
                   + model.lm_head.weight.pow(2).sum(0))
            for b in blocks:
                col = col + b.attn.qkv.weight.pow(2).sum(0) + b.attn.proj.weight.pow(2).sum(1)
                col = col + b.mlp.fc.weight.pow(2).sum(0) + b.mlp.fc2.weight.pow(2).sum(1)
        else:
            col = torch.stack([sum(p.pow(2).sum() for p in b.parameters() if p.dim() == 2) for b in blocks])
        out[kind] = torch.as_tensor(layout.groups.aggregate(col.cpu().numpy(), "sum")).sqrt().to(col.device)
    return out


def layer_normalised(scores: torch.Tensor, layout: UnitLayout) -> torch.Tensor:
    """Divide each layer's scores by their ℓ2 norm (Michel et al.: makes layers comparable for global pruning)."""
    out = scores.clone()
    for pool in layout.pools("layer", "pruning"):  # each layer's units
        idx = torch.as_tensor(pool, device=scores.device)
        out[idx] = scores[idx] / (scores[idx].norm() + 1e-20)
    return out


# --------------------------------------------------------------------------- state
class UnitPruner(nn.Module):
    """Logits, masks and score accumulators for every unit kind of one run."""

    def __init__(self, layouts: dict[str, UnitLayout], scope: str, method: str, random_state: int):
        super().__init__()
        self.layouts, self.scope, self.method = layouts, scope, method
        self.logits = nn.ParameterDict({k: nn.Parameter(torch.zeros(l.n_units)) for k, l in layouts.items()})
        for kind, layout in layouts.items():
            self.register_buffer(f"mask_{kind}", torch.ones(layout.n_units))
            self.register_buffer(f"grad_{kind}", torch.zeros(layout.n_units))
        gen = torch.Generator().manual_seed(random_state + 7919)
        self.random_priority = {k: torch.rand(l.n_units, generator=gen) for k, l in layouts.items()}

    def mask(self, kind: str) -> torch.Tensor:
        return getattr(self, f"mask_{kind}")

    def attention(self, kind: str) -> torch.Tensor:
        """Mean-1 softmax of the kind's logits, over all its units or per layer (``scope``)."""
        logits = self.logits[kind]
        pools = self.layouts[kind].pools(self.scope, "softmax")
        if len(pools) == 1:
            return mean_one_softmax(logits)
        out = torch.empty_like(logits)
        for pool in pools:
            idx = torch.as_tensor(pool, device=logits.device)
            out = out.index_copy(0, idx, mean_one_softmax(logits[idx]))
        return out

    def unit_values(self, probe: bool = False) -> dict[str, torch.Tensor]:
        """Gate value per unit: ``A ⊙ mask`` for SA++, the 0/1 mask otherwise (a leaf with grad when probing)."""
        values = {}
        for kind in self.layouts:
            if self.method == "SA++":
                values[kind] = self.attention(kind) * self.mask(kind)
            else:
                v = self.mask(kind).clone()
                values[kind] = v.requires_grad_(True) if probe else v
        return values

    def explore_values(self, share: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """SA++'s training gates: ``A`` on the units that are on, 0 on those off, and a logit gradient only from
        the units that are off (straight-through: the loss's slope at gate 0, the first-order gain of switching
        the unit back on, which is SA's selection signal). ``share`` of the alive units is switched off at
        random on top of the mask."""
        values = {}
        for kind in self.layouts:
            attention, on = self.attention(kind), self.mask(kind).clone()
            alive = torch.nonzero(on).flatten()
            n_off = int(round(share * len(alive)))
            if n_off:
                pick = torch.randperm(len(alive), generator=generator)[:n_off].to(on.device)
                on[alive[pick]] = 0.0
            values[kind] = attention.detach() * on + (1.0 - on) * (attention - attention.detach())
        return values

    def scores(self, kind: str, model: TinyGPT) -> torch.Tensor:
        if self.method == "SA++":
            return self.attention(kind).detach()
        if self.method == "magnitude":
            return magnitude_scores(model, {kind: self.layouts[kind]})[kind]
        if self.method == "gradient":
            return layer_normalised(getattr(self, f"grad_{kind}"), self.layouts[kind])
        return self.random_priority[kind].to(self.mask(kind).device)

    @torch.no_grad()
    def prune_to(self, kind: str, fraction: float, model: TinyGPT) -> None:
        """Keep the best-scoring alive units so that ``round(fraction · n)`` are pruned (per pool)."""
        scores, mask = self.scores(kind, model), self.mask(kind)
        new = mask.clone()
        for pool in self.layouts[kind].pools(self.scope, "pruning"):
            idx = torch.as_tensor(pool, device=mask.device)
            n_keep = max(1, len(pool) - int(round(fraction * len(pool))))
            if n_keep < int(mask[idx].sum()):
                new[idx] = keep_best(scores[idx], mask[idx], n_keep)
        mask.copy_(new)

    @torch.no_grad()
    def accumulate_gradients(self, values: dict[str, torch.Tensor]) -> None:
        for kind, v in values.items():
            if v.grad is not None:
                getattr(self, f"grad_{kind}").add_(v.grad.abs() * self.mask(kind))


# --------------------------------------------------------------------------- physical removal
@torch.no_grad()
def remove_units(model: TinyGPT, gates: Gates) -> TinyGPT:
    """A smaller model without the units whose gate is 0, the other gates folded into the weights.

    ``model`` must be a dense model with alike layers (gated by :func:`unit_gates`).
    """
    cfg, hd = model.config, model.config.head_dim
    dev = next(model.parameters()).device
    ones = lambda n: torch.ones(n, device=dev)  # noqa: E731
    g = gates.embed if gates.embed is not None else ones(cfg.d_model)
    keep_d = torch.nonzero(g).flatten()
    if len(keep_d) == 0:
        raise ValueError("Every residual dimension is gated off; nothing would remain.")
    lam = gates.layers if gates.layers is not None else ones(cfg.n_layer)
    plan = []
    for l, block in enumerate(model.blocks):
        if lam[l] == 0:
            continue
        hg = gates.heads[l] if gates.heads is not None else ones(cfg.heads[l])
        mg = gates.mlp[l] if gates.mlp is not None else ones(cfg.mlp_hidden[l])
        plan.append((block, lam[l], hg, torch.nonzero(hg).flatten(), mg, torch.nonzero(mg).flatten()))
    new_cfg = TransformerConfig(len(keep_d), hd, tuple(len(p[3]) for p in plan), tuple(len(p[5]) for p in plan),
                                cfg.context, cfg.vocab_size)
    with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten: leave the global RNG alone
        small = TinyGPT(new_cfg).to(dev)
    gd = g[keep_d]
    small.tok_emb.weight.copy_(model.tok_emb.weight[:, keep_d] * gd)
    small.pos_emb.weight.copy_(model.pos_emb.weight[:, keep_d] * gd)
    for new, (old, lam_l, hg, kh, mg, km) in zip(small.blocks, plan):
        write = (gd * lam_l)[:, None]  # every residual write: residual gate × block gate
        for a, b in ((new.ln1, old.ln1), (new.ln2, old.ln2)):
            a.weight.copy_(b.weight[keep_d])
            a.bias.copy_(b.bias[keep_d])
        if len(kh):
            qkv = old.attn.qkv.weight.view(3, cfg.heads[0], hd, cfg.d_model)[:, kh][..., keep_d]
            new.attn.qkv.weight.copy_(qkv.reshape(-1, len(keep_d)))
            proj = old.attn.proj.weight.view(cfg.d_model, cfg.heads[0], hd)[keep_d][:, kh] * hg[kh][None, :, None]
            new.attn.proj.weight.copy_(proj.reshape(len(keep_d), -1) * write)
        if len(km):
            new.mlp.fc.weight.copy_(old.mlp.fc.weight[km][:, keep_d])
            new.mlp.fc2.weight.copy_(old.mlp.fc2.weight[keep_d][:, km] * mg[km] * write)
    small.ln_f.weight.copy_(model.ln_f.weight[keep_d])
    small.ln_f.bias.copy_(model.ln_f.bias[keep_d])
    small.lm_head.weight.copy_(model.lm_head.weight[:, keep_d])
    return small.eval()


# --------------------------------------------------------------------------- results
@dataclass
class UnitSnapshot:
    """Attention and mask of every unit kind at one moment of an SA++ run (for the animation)."""

    label: str
    phase: str
    step: int
    target: float
    val_loss: float
    attention: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]


@dataclass
class MethodRun:
    """One method at one fraction and seed: the kept units, the pruned model's quality and shape."""

    method: str
    fraction: float
    seed: int
    val_loss: float
    seconds: float
    masks: dict[str, np.ndarray]  # kind -> kept (bool per unit)
    scores: dict[str, np.ndarray]  # kind -> the method's final unit scores
    pruned_config: TransformerConfig
    n_parameters: int
    snapshots: list[UnitSnapshot] = field(default_factory=list)
    schedule: np.ndarray = field(default_factory=lambda: np.zeros(0))
    model: TinyGPT | None = field(default=None, repr=False)

    def row(self, dense_loss: float) -> dict[str, Any]:
        return {"method": self.method, "fraction removed": self.fraction, "seed": self.seed,
                "val loss (nats/byte)": round(self.val_loss, 4),
                "bits/byte": round(self.val_loss / math.log(2), 4),
                "Δ loss vs dense": round(self.val_loss - dense_loss, 4),
                "heads per layer": " ".join(map(str, self.pruned_config.heads)),
                "MLP width per layer": " ".join(map(str, self.pruned_config.mlp_hidden)),
                "d_model": self.pruned_config.d_model, "layers": self.pruned_config.n_layer,
                "parameters": self.n_parameters, "train seconds": round(self.seconds, 1)}


@dataclass
class PruningSettings:
    """Everything one pruning run depends on (besides the dense model and corpus)."""

    kinds: tuple[str, ...] = ("heads", "mlp")
    steps: int = 280
    n_cycles: int = 1
    batch_size: int = 4
    learning_rate: float = 5e-4
    weight_decay: float = 0.1
    # Adam on the logits; seed 0 at 50% removed (tuning seed; benchmarks/README.md): 0.05 → val loss 2.060,
    # 0.01 → 2.011, 0.002 → 2.001 (larger steps drive A far from 1 and distort the surviving units)
    logit_learning_rate: float = 0.002
    mlp_block: int = 32
    embed_block: int = 16
    scope: str = "global"
    eval_windows: int = 64
    snapshot_windows: int = 8
    grad_clip: float = 1.0
    logit_signal: str = "switched-off"  # or "all": every unit's gate gradient at its current value (see module doc)
    # "adam" moves each logit by about the same step whenever its signal is consistent (per-unit normalised);
    # "normalized-sgd" (momentum 0.9, each step's gradient divided by its RMS over the kind's units) keeps how much
    # larger one unit's signal is than another's. Seeds 0–2 (benchmarks/README.md): +0.023 nats/byte at 50%, −0.003
    # at 75%; not adopted.
    logit_optimizer: str = "adam"
    # keep switching off random alive units during the sparsify ramps, so the logits of the units that are still
    # in go on learning in the shrinking network (the recipe's "re-adjust the attention after pruning"); off by
    # default: it moved the loss by less than the seeds' spread (benchmarks/README.md)
    explore_while_pruning: bool = False
    # Warm-up and dense steps: the logits learn from a second pass over the same batch with random units switched
    # off, the weights from the model as it is (every alive unit on, scaled by A: the SA++ paper's dense phase).
    # False trains the weights on the explored subnetworks themselves (structured dropout at the target fraction):
    # one pass per step and ~15% less CPU, but 0.015 / 0.011 nats/byte worse at 50% / 75% removed (tuning seeds
    # 0–2; worse on five of the six seed × fraction pairs, benchmarks/README.md).
    separate_logit_pass: bool = True
    # Share of the alive units SA++ switches off at random in warm-up and dense steps, for a target fraction f:
    # "target": f (explored subnetworks of the final size); "mirrored": min(f, 1 − f) (the same at 50%, a quarter at
    # 75%); a number c: min(f, c). Tuning seeds 0–2 (benchmarks/README.md): at 75% a quarter gave 2.0728 against the
    # target's 2.0917 (every seed better); at 50% a quarter lost 0.012, so above a half only.
    exploration_share: str | float = "mirrored"

    @classmethod
    def quick(cls, **changes: Any) -> "PruningSettings":
        """A fifth of the steps: the app page's default (51–70 CPU-seconds for every method at 50% and 75% with
        the timing, on the cached standard model; benchmarks/README.md)."""
        return cls(**{"steps": 56, **changes})

    def check(self) -> None:
        if self.logit_signal not in LOGIT_SIGNALS:
            raise ValueError(f"logit_signal must be one of {LOGIT_SIGNALS}, got {self.logit_signal!r}.")
        if self.logit_optimizer not in LOGIT_OPTIMIZERS:
            raise ValueError(f"logit_optimizer must be one of {LOGIT_OPTIMIZERS}, got {self.logit_optimizer!r}.")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}.")
        if not self.kinds:
            raise ValueError("Name at least one unit kind to prune.")
        if self.batch_size < 1 or self.steps < 1 or self.n_cycles < 0:
            raise ValueError("steps and batch_size must be positive and n_cycles non-negative.")
        if not (self.learning_rate > 0 and self.logit_learning_rate > 0):
            raise ValueError("Learning rates must be positive.")
        share = self.exploration_share
        if share not in EXPLORATION_SHARES and not (isinstance(share, (int, float)) and 0.0 < share <= 1.0):
            raise ValueError(f"exploration_share must be one of {EXPLORATION_SHARES} or a number in (0, 1], "
                             f"got {share!r}.")


# --------------------------------------------------------------------------- the baselines' shared start
@dataclass
class DensePrefix:
    """The dense training every baseline and the dense reference begin with, done once per seed.

    Magnitude, gradient, random (at every fraction) and *dense + same steps* all train the unpruned model
    with the same batches for the first :func:`baseline_dense_steps` steps, so those steps are identical
    in every run; :func:`prune_transformer` continues from copies of this state (model, optimizer,
    batch generator, the gradient method's |∂loss/∂gate| sums), with the same result as training them again.
    """

    model: TinyGPT
    optimizer: torch.optim.Optimizer
    generator_state: torch.Tensor
    gate_gradients: dict[str, torch.Tensor]
    steps: int
    seed: int
    seconds: float


def run_phases(method: str, settings: PruningSettings) -> list[Phase]:
    """The phases ``method`` trains through (:func:`block_pruning.method_phases`): SA++'s whole alternation; a
    baseline's dense steps until SA++'s final ramp, then the same ramp and fine-tune; the dense reference's
    dense steps throughout. Every method gets ``settings.steps`` optimizer steps."""
    return method_phases(method, plan_phases(settings.steps, settings.n_cycles), dense=DENSE_REFERENCE)


def baseline_dense_steps(settings: PruningSettings) -> int:
    """Length of the baselines' first (dense) phase: the steps a :class:`DensePrefix` holds."""
    return run_phases("magnitude", settings)[0].steps


def train_dense_prefix(dense: TinyGPT, corpus: Corpus, settings: PruningSettings, seed: int = 0,
                       device: str | torch.device = "auto", progress: Callable[[str], None] | None = None,
                       num_threads: int | None = 1) -> DensePrefix:
    """Train a copy of ``dense`` for the baselines' shared dense steps, probing the gate gradients as the
    gradient method does (that changes no weight: the gates are 1)."""
    dev, layouts = _prepare(dense, settings, device)
    phases = run_phases("gradient", settings)[:1]
    model = copy.deepcopy(dense).to(dev).train()
    pruner, opt, _, gen = _start_run("gradient", model, layouts, settings, seed, dev)
    steps = phases[0].steps

    def after_step(phase: Phase, step: int, current: float) -> None:
        if progress is not None:
            progress(f"dense steps shared by the baselines: step {step + 1}/{steps}")

    start = time.perf_counter()
    with torch_threads(num_threads, dev):
        _train_phases(model, pruner, opt, None, phases, 0.0, corpus, gen, settings, dev, after_step)
    grads = {k: getattr(pruner, f"grad_{k}").clone() for k in layouts}
    return DensePrefix(model, opt, gen.get_state(), grads, steps, seed, time.perf_counter() - start)


# --------------------------------------------------------------------------- one run
def prune_transformer(method: str, dense: TinyGPT, corpus: Corpus, fraction: float, settings: PruningSettings,
               seed: int = 0, device: str | torch.device = "auto", progress: Callable[[str], None] | None = None,
               record_snapshots: bool = True, num_threads: int | None = 1,
               prefix: DensePrefix | None = None) -> MethodRun:
    """Prune a copy of ``dense`` with one method to ``fraction`` of every kind's units and fine-tune it.

    ``method="dense"`` with ``fraction=0`` trains the same number of steps
    without pruning: the reference every pruned model should be held against.
    ``num_threads`` pins torch's CPU threads (``None``: leave them). A baseline
    or the dense reference continues from ``prefix`` (:func:`train_dense_prefix`
    with these settings and seed) instead of repeating its dense steps; its
    ``seconds`` include the prefix's.
    """
    if method == DENSE_REFERENCE:
        if fraction != 0.0:
            raise ValueError("The dense reference prunes nothing: pass fraction=0.")
    elif method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose from {', '.join(METHODS)} (or {DENSE_REFERENCE!r}).")
    elif not 0.0 < fraction < 1.0:
        raise ValueError(f"The fraction removed must be in (0, 1), got {fraction}.")
    dev, layouts = _prepare(dense, settings, device)
    if prefix is not None and (method == "SA++" or prefix.seed != seed
                               or prefix.steps != baseline_dense_steps(settings)):
        raise ValueError("A dense prefix serves the baselines and the dense reference of its own seed and settings.")
    with torch_threads(num_threads, dev):
        if prefix is None:
            model, opt = copy.deepcopy(dense).to(dev).train(), None
        else:  # one deepcopy keeps the optimizer's state tied to the copied parameters
            model, opt = copy.deepcopy((prefix.model, prefix.optimizer))
        return _prune(method, model, layouts, corpus, fraction, settings, seed, dev, progress, record_snapshots,
                      opt, prefix)


def _prepare(dense: TinyGPT, settings: PruningSettings,
             device: str | torch.device) -> tuple[torch.device, dict[str, UnitLayout]]:
    """Checked settings → the device and the units of every kind (what every run and the dense prefix start from)."""
    settings.check()
    return resolve_device(device), unit_layouts(dense.config, settings.kinds, settings.mlp_block, settings.embed_block)


def _start_run(method: str, model: TinyGPT, layouts: dict[str, UnitLayout], settings: PruningSettings, seed: int,
               dev: torch.device, opt: torch.optim.Optimizer | None = None, prefix: DensePrefix | None = None):
    """A run's pruner, weight and logit optimizers and batch generator; restored from ``prefix`` when given."""
    pruner = UnitPruner(layouts, settings.scope, method, seed).to(dev)
    if opt is None:
        opt = optimizer_for(model, settings.learning_rate, settings.weight_decay)
    logit_opt = (torch.optim.Adam(pruner.logits.parameters(), lr=settings.logit_learning_rate)
                 if settings.logit_optimizer == "adam"
                 else torch.optim.SGD(pruner.logits.parameters(), lr=settings.logit_learning_rate, momentum=0.9))
    gen = torch.Generator().manual_seed(seed)
    if prefix is not None:
        gen.set_state(prefix.generator_state)
        for kind in layouts:
            getattr(pruner, f"grad_{kind}").copy_(prefix.gate_gradients[kind])
    return pruner, opt, logit_opt, gen


def _prune(method: str, model: TinyGPT, layouts: dict[str, UnitLayout], corpus: Corpus, fraction: float,
           settings: PruningSettings, seed: int, dev: torch.device, progress: Callable[[str], None] | None,
           record_snapshots: bool, opt: torch.optim.Optimizer | None = None,
           prefix: DensePrefix | None = None) -> MethodRun:
    """The training run of :func:`prune_transformer` (``model`` is the caller's copy, trained in place)."""
    pruner, opt, logit_opt, gen = _start_run(method, model, layouts, settings, seed, dev, opt, prefix)
    phases = run_phases(method, settings)
    if prefix is not None:  # its steps are done: continue after them
        phases = phases_after(phases, prefix.steps)
    snap_windows = corpus.val_windows(settings.snapshot_windows, model.config.context)
    snapshots: list[UnitSnapshot] = []

    def after_step(phase: Phase, step: int, current: float) -> None:
        if record_snapshots and method == "SA++" and step in snapshot_steps(phase):
            snapshots.append(_snapshot(pruner, model, phase, step, current, snap_windows))
        if progress is not None:
            progress(f"{method}, {fraction:.0%} removed: {phase.name} step {step + 1}/{settings.steps}")

    start = time.perf_counter()
    schedule = _train_phases(model, pruner, opt, logit_opt, phases, fraction, corpus, gen, settings, dev, after_step)
    seconds = time.perf_counter() - start + (prefix.seconds if prefix is not None else 0.0)
    with torch.no_grad():
        values = {k: v.detach() for k, v in pruner.unit_values().items()}
        small = remove_units(model, unit_gates(layouts, values))
    windows = corpus.val_windows(settings.eval_windows, model.config.context)
    return MethodRun(
        method, fraction, seed, evaluate_loss(small, windows), seconds,
        masks={k: pruner.mask(k).cpu().numpy().astype(bool) for k in layouts},
        scores={k: pruner.scores(k, model).detach().cpu().numpy() for k in layouts},
        pruned_config=small.config, n_parameters=small.n_parameters(), snapshots=snapshots, schedule=schedule,
        model=small)


def _train_phases(model: TinyGPT, pruner: UnitPruner, opt, logit_opt, phases: list[Phase], fraction: float,
                  corpus: Corpus, gen: torch.Generator, settings: PruningSettings, dev: torch.device,
                  after_step: Callable[[Phase, int, float], None]) -> np.ndarray:
    """Train through ``phases``: restore every unit where a phase says so, prune on the schedule, one optimizer
    step per step; ``after_step(phase, step, share pruned)``. Returns the share pruned at every step."""
    schedule = np.zeros(settings.steps)
    for phase in phases:
        if phase.restores:
            for kind in pruner.layouts:
                pruner.mask(kind).fill_(1.0)
        for step, current, update_mask in phase_schedule(phase, fraction):
            if update_mask:
                for kind in pruner.layouts:
                    pruner.prune_to(kind, current, model)
            schedule[step] = current
            _train_step(model, pruner, opt, logit_opt, phase, corpus, gen, settings, dev, fraction, current)
            after_step(phase, step, current)
    return schedule


def _train_step(model: TinyGPT, pruner: UnitPruner, opt, logit_opt, phase: Phase, corpus: Corpus,
                gen: torch.Generator, settings: PruningSettings, dev: torch.device, fraction: float = 0.0,
                current: float = 0.0) -> None:
    x, y = corpus.window_batch("train", settings.batch_size, model.config.context, gen, dev)
    probe = pruner.method == "gradient" and phase.name in ("dense", "final sparsify")
    learns = pruner.method == "SA++" and phase.name in ("warm-up", "dense", "sparsify", "final sparsify")
    opt.zero_grad(set_to_none=True)  # before the logits' own pass, which writes their gradients
    if logit_opt is not None:
        logit_opt.zero_grad(set_to_none=True)
    share = _exploration_share(phase, settings, fraction, current) if learns else 0.0
    if learns and settings.logit_signal == "switched-off" and share > 0 and settings.separate_logit_pass:
        _logit_gradients(model, pruner, x, y, pruner.explore_values(share, gen))
        values = {k: v.detach() for k, v in pruner.unit_values().items()}  # the weights see the model as it is
    elif learns and settings.logit_signal == "switched-off":
        values = pruner.explore_values(share, gen)
    else:
        values = pruner.unit_values(probe=probe)
    loss = lm_loss(model, x, y, unit_gates(pruner.layouts, values))
    loss.backward()
    if probe:
        pruner.accumulate_gradients(values)
    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
    opt.step()
    if learns:
        if settings.logit_optimizer == "normalized-sgd":
            for p in pruner.logits.values():
                if p.grad is not None:
                    p.grad.div_(p.grad.pow(2).mean().sqrt() + 1e-12)
        logit_opt.step()


def _logit_gradients(model: TinyGPT, pruner: UnitPruner, x: torch.Tensor, y: torch.Tensor,
                     explored: dict[str, torch.Tensor]) -> None:
    """The logits' gradient from a pass over the explored subnetwork (no weight gradients are computed)."""
    loss = lm_loss(model, x, y, unit_gates(pruner.layouts, explored))
    params = list(pruner.logits.values())
    for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True)):
        p.grad = g


def _exploration_share(phase: Phase, settings: PruningSettings, fraction: float, current: float) -> float:
    """Share of the alive units SA++ switches off at random this step (the logits learn from the units that are off).

    Warm-up and dense phases: ``settings.exploration_share`` of the target fraction (by default the target up to a
    half, its complement above, so at least half of the units are on). Sparsify ramps: none
    (only the pruned units are off), or with ``explore_while_pruning`` the share of the alive units the ramp
    still has to remove, so the explored subnetworks keep the final size.
    """
    if phase.name in ("warm-up", "dense"):
        if settings.exploration_share == "target":
            return fraction
        return min(fraction, 1.0 - fraction if settings.exploration_share == "mirrored" else settings.exploration_share)
    if settings.explore_while_pruning and phase.prunes:
        return max(0.0, (fraction - current) / (1.0 - current))
    return 0.0


def _snapshot(pruner: UnitPruner, model: TinyGPT, phase: Phase, step: int, target: float,
              windows: torch.Tensor) -> UnitSnapshot:
    label = snapshot_label(phase, step)
    with torch.no_grad():
        values = {k: v.detach() for k, v in pruner.unit_values().items()}
        loss = evaluate_loss(model, windows, unit_gates(pruner.layouts, values))
        attention = {k: pruner.attention(k).detach().cpu().numpy() for k in pruner.layouts}
    model.train()
    return UnitSnapshot(label, phase.name, step, target, loss, attention,
                        {k: pruner.mask(k).cpu().numpy().astype(bool) for k in pruner.layouts})
