"""Structured SA++ on a small transformer: exact physical removal, KV-cache decoding, the cache on disk,
the planted answer, the baselines' scores, unstructured copies and the study's tables. Tiny configs only."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqattn.data import DataError
from seqattn.device import torch_threads
from seqattn.sparsity.structured import (
    PruningSettings,
    UnitPruner,
    baseline_dense_steps,
    layer_normalised,
    magnitude_scores,
    prune_transformer,
    remove_units,
    train_dense_prefix,
    unit_gates,
    unit_layouts,
)
from seqattn.sparsity.structured_latency import (
    UNSTRUCTURED_CSR,
    measure_structured_latency,
    unstructured_copy,
    weight_bytes,
)
from seqattn.sparsity.structured_study import structured_pruning_study, timing_clock
from seqattn.sparsity.transformer import (
    PRESETS,
    Corpus,
    ModelPreset,
    TinyGPT,
    TrainSettings,
    TransformerConfig,
    evaluate_loss,
    load_or_train,
    stdlib_corpus,
    train_model,
)

TINY = TransformerConfig.uniform(n_layer=3, n_head=4, d_model=32, context=32)


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return stdlib_corpus(120_000)


def random_model(config: TransformerConfig = TINY, seed: int = 0) -> TinyGPT:
    """Random weights, with non-trivial LayerNorm parameters so masked statistics are exercised."""
    torch.manual_seed(seed)
    model = TinyGPT(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.3)
    return model


def random_values(layouts, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    values = {}
    for kind, layout in layouts.items():
        v = torch.rand(layout.n_units, generator=gen) + 0.5
        v[torch.randperm(layout.n_units, generator=gen)[: layout.n_units // 2]] = 0.0
        values[kind] = v
    return values


# ------------------------------------------------------------------ exact removal and decoding
@pytest.mark.parametrize("kinds", [("heads",), ("mlp",), ("embed",), ("heads", "mlp", "embed", "layers")])
def test_physically_pruned_model_computes_what_the_gated_model_computes(kinds):
    model = random_model()
    layouts = unit_layouts(TINY, kinds, mlp_block=16, embed_block=8)
    values = random_values(layouts)
    if "layers" in values:
        values["layers"] = torch.tensor([1.3, 0.0, 0.7])  # the middle block goes, the others are scaled
    gates = unit_gates(layouts, values)
    small = remove_units(model, gates)
    x = torch.randint(0, 256, (2, TINY.context), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x, gates), atol=2e-5, rtol=1e-4)
    # and it is genuinely smaller, in the shapes the gates say
    if "heads" in kinds:
        kept = (values["heads"] != 0).view(3, 4).sum(1).tolist()
        if "layers" in kinds:
            kept = [kept[0], kept[2]]
        assert list(small.config.heads) == kept
        assert small.blocks[0].attn.qkv.weight.shape[0] == 3 * kept[0] * TINY.head_dim
    if "embed" in kinds:
        assert small.config.d_model == int((values["embed"] != 0).sum()) * 8
    assert small.n_parameters() < model.n_parameters()


def test_all_ones_gates_leave_the_model_unchanged():
    model = random_model()
    layouts = unit_layouts(TINY, ("heads", "mlp", "embed"), mlp_block=16, embed_block=8)
    gates = unit_gates(layouts, {k: torch.ones(l.n_units) for k, l in layouts.items()})
    x = torch.randint(0, 256, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(model(x, gates), model(x), atol=1e-6, rtol=1e-5)
    assert remove_units(model, gates).config == TINY


def test_kv_cache_decoding_matches_the_full_forward_pass():
    layouts = unit_layouts(TINY, ("heads", "mlp"), mlp_block=16)
    small = remove_units(random_model(), unit_gates(layouts, random_values(layouts)))
    x = torch.randint(0, 256, (2, TINY.context), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = small(x)
        last, cache = small.prefill(x[:, :10])
        steps = [last] + [small.decode_step(x[:, t:t + 1], cache) for t in range(10, TINY.context)]
    torch.testing.assert_close(torch.stack(steps[:-1], 1), full[:, 9:-1], atol=1e-5, rtol=1e-4)
    assert cache.length == TINY.context
    with pytest.raises(ValueError, match="context"):
        small.decode_step(x[:, :1], cache)
    # a pruned model's cache holds only its kept heads
    assert small.new_cache().nbytes < random_model().new_cache().nbytes


def test_lean_generation_path_computes_what_forward_computes_with_empty_sublayers():
    """prefill/decode_step run a functional copy of ``forward`` (fewer operator calls): same logits, also for
    a block without attention, a block without MLP and a batch of two."""
    config = TransformerConfig(32, 8, (4, 0, 2), (64, 96, 0), 32)
    model = random_model(config, seed=3)
    assert model.blocks[1].attn is None and model.blocks[2].mlp is None
    x = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = model(x)
    last, cache = model.prefill(x[:, :12])
    torch.testing.assert_close(last, full[:, 11], atol=1e-5, rtol=1e-4)
    steps = [model.decode_step(x[:, t:t + 1], cache) for t in range(12, 20)]
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 12:], atol=1e-5, rtol=1e-4)
    assert cache.length == 20 and cache.kv[1].shape[2] == 0  # no heads: nothing cached
    with pytest.raises(ValueError, match="several tokens"):
        model.decode_step(x[:, :2], cache)
    # a later weight update in place is seen; a moved model forgets its cached weight list
    with torch.no_grad():
        model.blocks[0].mlp.fc.weight.mul_(2.0)
        model.lm_head.weight.mul_(2.0)
        torch.testing.assert_close(model.prefill(x)[0], model(x)[:, -1], atol=1e-5, rtol=1e-4)
    model.to(torch.float64)
    assert model._inference_weights()[1][0][1].dtype == torch.float64
    # a deep copy reads its own weights, not views of the original's
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.lm_head.weight.mul_(0.5)
        torch.testing.assert_close(twin.prefill(x)[0], twin(x)[:, -1], atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------ corpus and cache
def test_stdlib_corpus_is_deterministic_with_a_fixed_split(tmp_path):
    a, b = stdlib_corpus(50_000), stdlib_corpus(50_000)
    assert a.digest == b.digest and np.array_equal(a.train, b.train)
    assert len(a.train) + len(a.val) == 50_000
    assert 0.08 < len(a.val) / 50_000 < 0.12  # every tenth chunk
    (tmp_path / "b.py").write_text("print('b')\n" * 400)
    (tmp_path / "a.py").write_text("print('a')\n" * 400)
    local = stdlib_corpus(6_000, folder=tmp_path)
    data = np.concatenate([local.train, local.val]).tobytes()
    assert local.n_files == 2 and b"print('a')" in data and b"print('b')" in data
    with pytest.raises(DataError, match="No \\*.py files"):
        stdlib_corpus(folder=tmp_path / "missing")
    with pytest.raises(DataError, match="at least 2048"):
        Corpus.from_bytes(b"x" * 100, "short")


def test_model_is_cached_as_a_state_dict_and_loaded_back(tmp_path, corpus):
    preset = ModelPreset(TransformerConfig.uniform(1, 2, 16, 16), 120_000,
                         TrainSettings(steps=5, batch_size=4, warmup_steps=1), "test")
    first = load_or_train(preset, corpus, cache_dir=tmp_path, device="cpu")
    second = load_or_train(preset, corpus, cache_dir=tmp_path, device="cpu")
    assert not first.from_cache and second.from_cache
    assert sorted(p.name for p in first.path.iterdir()) == ["meta.json", "model.pt"]
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key])
    assert second.record["val_loss"] == pytest.approx(first.record["val_loss"])
    meta = json.loads((first.path / "meta.json").read_text())
    assert meta["corpus"]["sha256"] == corpus.digest
    # another recipe is another cache entry
    other = ModelPreset(preset.config, preset.corpus_bytes, TrainSettings(steps=6, batch_size=4, warmup_steps=1), "x")
    assert not load_or_train(other, corpus, cache_dir=tmp_path, device="cpu").from_cache
    assert len(list(tmp_path.iterdir())) == 2


def test_training_reduces_the_validation_loss(corpus):
    config = TransformerConfig.uniform(1, 2, 16, 16)
    untrained = evaluate_loss(TinyGPT(config), corpus.val_windows(16, 16))
    model, record = train_model(config, corpus, TrainSettings(steps=60, batch_size=8, warmup_steps=5,
                                                               learning_rate=3e-3), device="cpu")
    assert untrained > 5.0  # ≈ ln 256 before training
    assert record["val_loss"] < untrained - 1.5 and not record["stopped_early"]
    stopped, record = train_model(config, corpus, TrainSettings(steps=60, batch_size=8), device="cpu",
                                  callback=lambda step, total, msg: step >= 6)
    assert record["stopped_early"] and record["steps_done"] <= 6


# ------------------------------------------------------------------ scores and masks
def test_magnitude_scores_are_the_norm_of_each_units_weights():
    model = random_model()
    layouts = unit_layouts(TINY, ("heads", "mlp"), mlp_block=16)
    scores = magnitude_scores(model, layouts)
    attn, hd = model.blocks[1].attn, TINY.head_dim
    head2 = torch.cat([attn.qkv.weight.view(3, 4, hd, -1)[:, 2].flatten(),
                       attn.proj.weight.view(-1, 4, hd)[:, 2].flatten()])
    assert float(scores["heads"][1 * 4 + 2]) == pytest.approx(float(head2.detach().norm()), rel=1e-5)
    mlp = model.blocks[0].mlp
    block1 = torch.cat([mlp.fc.weight[16:32].flatten(), mlp.fc2.weight[:, 16:32].flatten()])
    assert float(scores["mlp"][1]) == pytest.approx(float(block1.detach().norm()), rel=1e-5)


def test_layer_normalisation_makes_each_layers_scores_unit_length():
    layout = unit_layouts(TINY, ("heads",))["heads"]
    normed = layer_normalised(torch.arange(1.0, 13.0), layout).view(3, 4)
    torch.testing.assert_close(normed.norm(dim=1), torch.ones(3))


def test_pruning_keeps_the_best_alive_units_globally_or_per_layer():
    layouts = unit_layouts(TINY, ("heads",))
    for scope, per_layer in (("global", None), ("layer", [2, 2, 2])):
        pruner = UnitPruner(layouts, scope, "SA++", 0)
        with torch.no_grad():
            pruner.logits["heads"].copy_(torch.arange(12.0))  # later heads score higher
        pruner.prune_to("heads", 0.5, random_model())
        kept = pruner.mask("heads").view(3, 4)
        assert int(kept.sum()) == 6
        if per_layer is None:
            assert kept[0].sum() == 0 and kept[2].sum() == 4  # globally the last six heads win
        else:
            assert kept.sum(1).tolist() == per_layer
        assert float(pruner.attention("heads").detach().mean()) == pytest.approx(1.0)


def test_normalised_scope_takes_a_softmax_per_layer_and_ranks_all_units_together():
    layouts = unit_layouts(TINY, ("heads",))
    pruner = UnitPruner(layouts, "normalised", "SA++", 0)
    with torch.no_grad():  # layer 0: one strong head among weak ones; layers 1 and 2: four equal heads
        pruner.logits["heads"].copy_(torch.tensor([3.0, 0, 0, 0, 5, 5, 5, 5, 9, 9, 9, 9]))
    attention = pruner.attention("heads").detach().view(3, 4)
    torch.testing.assert_close(attention.mean(1), torch.ones(3))  # mean 1 within every layer, not overall
    torch.testing.assert_close(attention[1:], torch.ones(2, 4))  # equal logits: 1, however large they are
    pruner.prune_to("heads", 0.5, random_model())
    kept = pruner.mask("heads").view(3, 4)
    # ranked together: layer 0's strong head (A ≈ 3.5) and five of the eight heads at A = 1 stay, layer 0's weak
    # heads (A ≈ 0.17) go; a per-layer pruning would keep two per layer, one softmax over all twelve logits none of
    # layer 0's
    assert kept[0].tolist() == [1, 0, 0, 0] and int(kept[1:].sum()) == 5


def test_each_scope_names_the_pools_its_softmax_and_its_pruning_run_over():
    heads, embed = (unit_layouts(TINY, ("heads", "embed"))[k] for k in ("heads", "embed"))
    per_layer = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    expected = {("global", "softmax"): [list(range(12))], ("global", "pruning"): [list(range(12))],
                ("layer", "softmax"): per_layer, ("layer", "pruning"): per_layer,
                ("normalised", "softmax"): per_layer, ("normalised", "pruning"): [list(range(12))]}
    assert {key: [p.tolist() for p in heads.pools(*key)] for key in expected} == expected
    assert [p.tolist() for p in embed.pools("layer", "pruning")] == [list(range(embed.n_units))]  # no layers
    with pytest.raises(ValueError, match="scope"):
        heads.pools("row", "softmax")
    with pytest.raises(ValueError, match="use"):
        heads.pools("global", "ranking")


@pytest.mark.parametrize("separate", [True, False])
def test_weights_train_on_the_whole_model_while_the_logits_learn_from_switched_off_units(corpus, separate):
    from seqattn.sparsity.block_pruning import Phase
    from seqattn.sparsity.structured import _train_step

    model, layouts = random_model().train(), unit_layouts(TINY, ("heads",))
    pruner = UnitPruner(layouts, "global", "SA++", 0)
    opt, logit_opt = torch.optim.SGD(model.parameters(), lr=0.0), torch.optim.SGD(pruner.logits.parameters(), lr=0.0)
    settings = PruningSettings(kinds=("heads",), separate_logit_pass=separate)
    _train_step(model, pruner, opt, logit_opt, Phase("dense", 1, 0, 10), corpus, torch.Generator().manual_seed(0),
                settings, torch.device("cpu"), fraction=0.5)
    hd, n_head = TINY.head_dim, TINY.heads[0]
    value_grads = torch.stack([b.attn.qkv.weight.grad.view(3, n_head, hd, -1)[2].abs().sum(dim=(1, 2))
                               for b in model.blocks]).flatten()  # one entry per head
    logit_grads = pruner.logits["heads"].grad
    assert int((logit_grads.abs() > 0).sum()) >= 6  # the six switched-off heads (and, through the softmax, others)
    if separate:  # every head's value weights learn: the weights saw the whole model
        assert bool((value_grads > 0).all())
    else:  # the six switched-off heads' value weights get nothing: the weights saw the explored subnetwork
        assert int((value_grads == 0).sum()) == 6


def test_exploring_while_pruning_switches_off_what_the_ramp_still_has_to_remove():
    from seqattn.sparsity.block_pruning import Phase
    from seqattn.sparsity.structured import _exploration_share

    ramp, sparse, dense = Phase("final sparsify", 2, 0, 10), Phase("sparse", 1, 0, 10), Phase("dense", 1, 0, 10)
    on = PruningSettings(explore_while_pruning=True)
    assert _exploration_share(dense, PruningSettings(), 0.75, 0.0) == 0.25  # default: a quarter off at 75%
    assert _exploration_share(ramp, PruningSettings(), 0.75, 0.5) == 0.0  # default: only the pruned units are off
    assert _exploration_share(ramp, on, 0.75, 0.5) == pytest.approx(0.5)  # half of the alive half goes: 1/4 remains
    assert _exploration_share(ramp, on, 0.75, 0.75) == 0.0 and _exploration_share(sparse, on, 0.75, 0.75) == 0.0


def test_the_exploration_share_follows_the_target_mirrors_it_above_a_half_or_is_capped():
    from seqattn.sparsity.block_pruning import Phase
    from seqattn.sparsity.structured import _exploration_share

    warm_up, dense = Phase("warm-up", 0, 0, 10), Phase("dense", 1, 0, 10)
    target, mirrored, capped = (PruningSettings(exploration_share=s) for s in ("target", "mirrored", 0.3))
    assert _exploration_share(dense, target, 0.75, 0.0) == 0.75  # random subnetworks of the final size
    assert _exploration_share(dense, mirrored, 0.75, 0.0) == 0.25  # above a half: the complement
    assert _exploration_share(warm_up, mirrored, 0.5, 0.0) == _exploration_share(warm_up, target, 0.5, 0.0) == 0.5
    assert _exploration_share(warm_up, mirrored, 0.2, 0.0) == 0.2
    assert _exploration_share(dense, capped, 0.75, 0.0) == 0.3 and _exploration_share(dense, capped, 0.2, 0.0) == 0.2
    pruner = UnitPruner(unit_layouts(TINY, ("heads",)), "global", "SA++", 0)
    explored = pruner.explore_values(_exploration_share(dense, mirrored, 0.75, 0.0), torch.Generator().manual_seed(0))
    assert int((explored["heads"].detach() == 0).sum()) == 3  # a quarter of the twelve heads is off
    for bad in (0.0, 1.5, "final"):
        with pytest.raises(ValueError, match="exploration_share"):
            PruningSettings(exploration_share=bad).check()


# ------------------------------------------------------------------ the planted answer
def plant_dead_heads(model: TinyGPT, dead: list[tuple[int, int]]) -> None:
    """Zero the value rows and output columns of these heads: their output is 0 and, with zero
    gradients on both, stays 0 while the rest of the network trains."""
    hd, n_head = model.config.head_dim, model.config.heads[0]
    with torch.no_grad():
        for layer, head in dead:
            attn = model.blocks[layer].attn
            attn.qkv.weight.view(3, n_head, hd, -1)[2, head] = 0.0
            attn.proj.weight.view(-1, n_head, hd)[:, head] = 0.0


@pytest.mark.slow
def test_sapp_removes_the_planted_dead_heads_first():
    tiny = PRESETS["tiny"]  # 2 layers × 4 heads
    # numpy's own sources (pinned in requirements.txt), not the standard library: Python builds ship different
    # stdlib files, and on some of them (Debian's 3.11) a live head of this tiny model ends up doing nothing
    config, corpus = tiny.config, stdlib_corpus(tiny.corpus_bytes, folder=Path(np.__file__).parent)
    torch.manual_seed(0)
    model = TinyGPT(config)
    dead = [(0, 1), (1, 2), (1, 3)]
    plant_dead_heads(model, dead)  # dead from the start: the other five heads learn the work
    model, _ = train_model(config, corpus, tiny.train, device="cpu", model=model)
    # the construction holds: removing any live head costs validation loss, removing a dead one costs nothing
    layouts, windows = unit_layouts(config, ("heads",)), corpus.val_windows(16, 64)
    base = evaluate_loss(model, windows)
    costs = [evaluate_loss(model, windows, unit_gates(layouts, {"heads": 1.0 - torch.eye(8)[i]})) - base
             for i in range(8)]
    dead_units = {l * 4 + h for l, h in dead}
    assert all(costs[i] == pytest.approx(0.0, abs=1e-6) for i in dead_units)
    assert all(costs[i] > 1e-4 for i in range(8) if i not in dead_units), costs
    settings = PruningSettings(kinds=("heads",), steps=42, eval_windows=8, snapshot_windows=2)
    run = prune_transformer("SA++", model, corpus, 3 / 8, settings, seed=0, device="cpu")
    removed = {divmod(int(i), 4) for i in np.flatnonzero(~run.masks["heads"])}
    assert removed == set(dead)
    # the planted heads also have the lowest attention at the end, and they were gone from the first prune on
    assert set(np.argsort(run.scores["heads"])[:3]) == dead_units
    first_prune = next(s for s in run.snapshots if s.mask["heads"].sum() < 8)
    assert {divmod(int(i), 4) for i in np.flatnonzero(~first_prune.mask["heads"])} <= set(dead)
    # the gradient importance of a dead head is exactly zero, so that baseline finds them too
    grad_run = prune_transformer("gradient", model, corpus, 3 / 8, settings, seed=0, device="cpu")
    assert {divmod(int(i), 4) for i in np.flatnonzero(~grad_run.masks["heads"])} == set(dead)


def test_baselines_continuing_from_the_shared_dense_steps_match_runs_that_train_them_again(corpus):
    """The study trains the baselines' common dense steps once per seed: same losses, masks and scores."""
    model = random_model()
    settings = PruningSettings(steps=14, batch_size=2, eval_windows=4, snapshot_windows=2, mlp_block=16)
    prefix = train_dense_prefix(model, corpus, settings, seed=1, device="cpu")
    assert prefix.steps == baseline_dense_steps(settings) == 8
    for method, fraction in (("gradient", 0.5), ("magnitude", 0.5), ("dense", 0.0), ("gradient", 0.25)):
        alone = prune_transformer(method, model, corpus, fraction, settings, seed=1, device="cpu")
        shared = prune_transformer(method, model, corpus, fraction, settings, seed=1, device="cpu", prefix=prefix)
        assert shared.val_loss == pytest.approx(alone.val_loss, rel=1e-6, abs=1e-7), method
        for kind in alone.masks:
            assert np.array_equal(shared.masks[kind], alone.masks[kind])
            np.testing.assert_allclose(shared.scores[kind], alone.scores[kind], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="prefix"):
        prune_transformer("SA++", model, corpus, 0.5, settings, seed=1, device="cpu", prefix=prefix)
    with pytest.raises(ValueError, match="prefix"):
        prune_transformer("random", model, corpus, 0.5, settings, seed=2, device="cpu", prefix=prefix)


# ------------------------------------------------------------------ unstructured copies and latency
def test_unstructured_copies_zero_the_same_share_and_csr_computes_the_same():
    model = random_model()
    x = torch.randint(0, 256, (1, 24))
    model.prefill(x)  # caches the dense model's weight list, which a copy with CSR layers must not reuse
    zeroed = unstructured_copy(model, 0.5)
    csr = unstructured_copy(model, 0.5, csr=True)
    w = zeroed.blocks[0].mlp.fc.weight
    assert float((w == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    with torch.no_grad():
        torch.testing.assert_close(csr(x), zeroed(x), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(csr.prefill(x)[0], zeroed(x)[:, -1], atol=1e-5, rtol=1e-4)
    assert csr._inference_weights()[1][0][1].layout == torch.sparse_csr
    assert weight_bytes(csr) > weight_bytes(model) * 0.9  # at 50% CSR's indices cost about what the zeros saved


def test_latency_reports_time_every_model_paired_with_memory():
    dense = random_model()
    layouts = unit_layouts(TINY, ("heads", "mlp"), mlp_block=16)
    small = remove_units(dense, unit_gates(layouts, random_values(layouts)))
    reports = measure_structured_latency(dense, {"half": small}, seq_lens=(8, 32), unstructured_fraction=0.5,
                                         repeats=3, device="cpu")
    assert [r.kind for r in reports] == ["prefill", "prefill", "decode"]
    names = ["dense", "half", "unstructured 50%, dense kernels", UNSTRUCTURED_CSR.format(0.5)]
    for report in reports:
        assert [t.name for t in report.timings] == names and report.baseline == "dense"
        assert all(len(t.times) == report_rounds(report) and min(t.times) > 0 for t in report.timings)
        assert report.env["load_average_1_5_15min"] is not None
    memory = reports[0].quality
    assert memory["half"]["KV cache KiB/token"] == pytest.approx(memory["dense"]["KV cache KiB/token"] / 2)
    assert memory["half"]["weights MiB"] < memory["dense"]["weights MiB"]
    with pytest.raises(ValueError, match="seq_len"):
        measure_structured_latency(dense, {}, seq_lens=(64,), repeats=1, device="cpu")


def report_rounds(report) -> int:
    return 3 if report.kind == "prefill" else 6


# ------------------------------------------------------------------ the study
@pytest.mark.slow
def test_study_end_to_end_on_the_tiny_preset(tmp_path):
    settings = PruningSettings(steps=14, batch_size=4, eval_windows=4, snapshot_windows=2, mlp_block=16,
                               embed_block=8)
    messages = []
    result = structured_pruning_study("tiny", fractions=(0.5,), settings=settings, cache_dir=tmp_path,
                                      device="cpu", latency_repeats=2, num_threads=1,
                                      callback=lambda s, t, m: messages.append((s, t, m)))
    assert not result.stopped_early and result.methods == ["SA++", "magnitude", "gradient", "random"]
    assert any("training the dense model" in m for _, _, m in messages)  # the first call trains
    assert messages[-1][0] == messages[-1][1] and messages[-1][2] == "done"
    summary = {row["method"]: row for row in result.summary()}
    assert set(summary) == {"dense (as trained)", "dense + same steps", "SA++", "magnitude", "gradient", "random"}
    for method in ("SA++", "magnitude", "gradient", "random"):
        run = result.run(method, 0.5)
        assert run.masks["heads"].sum() == 4 and run.masks["mlp"].sum() == 8  # half of 8 heads, of 16 MLP blocks
        assert sum(run.pruned_config.heads) == 4 and sum(run.pruned_config.mlp_hidden) == 128
        ratio = summary[method]["prefill ratio (longest)"]
        assert np.isfinite(ratio) and ratio > 0  # timed; its size is the benchmark's business
    assert result.settings["latency_clock"] == "thread_cpu"  # one CPU thread: its CPU time, not the waiting
    assert all(r.config["clock"] == "thread_cpu" for r in result.latency)
    assert result.run("SA++", 0.5).snapshots and not result.run("random", 0.5).snapshots
    assert result.survivors("SA++", 0.5).shape == (2, 4)
    json.dumps(result.to_dict())
    # a second study reuses the cached model; Stop keeps what finished
    again = structured_pruning_study("tiny", fractions=(0.5, 0.75), settings=settings, cache_dir=tmp_path,
                                     device="cpu", latency=False,
                                     callback=lambda s, t, m: "0.75" in m or "75%" in m)
    assert again.model["from_cache"] and again.stopped_early
    assert {r.fraction for r in again.runs} == {0.0, 0.5}


def test_bad_settings_are_refused(corpus):
    model = random_model()
    with pytest.raises(ValueError, match="fraction"):
        prune_transformer("SA++", model, corpus, 1.0, PruningSettings(), device="cpu")
    with pytest.raises(ValueError, match="Unknown method"):
        prune_transformer("lasso", model, corpus, 0.5, PruningSettings(), device="cpu")
    with pytest.raises(ValueError, match="scope"):
        prune_transformer("SA++", model, corpus, 0.5, PruningSettings(scope="row"), device="cpu")
    with pytest.raises(ValueError, match="logit_optimizer"):
        prune_transformer("SA++", model, corpus, 0.5, PruningSettings(logit_optimizer="sgd"), device="cpu")
    with pytest.raises(ValueError, match="Unknown unit kinds"):
        unit_layouts(TINY, ("neurons",))
    with pytest.raises(ValueError, match="multiple"):
        unit_layouts(TINY, ("mlp",), mlp_block=24)
    with pytest.raises(ValueError, match="same shape"):
        unit_layouts(TransformerConfig(32, 8, (4, 2), (128, 128), 32), ("heads",))
    with pytest.raises(ValueError, match="preset"):
        structured_pruning_study("huge")
    with pytest.raises(ValueError, match="Fractions"):
        structured_pruning_study("tiny", fractions=(0.0,))
    assert set(PRESETS) >= {"standard", "tiny"}


def test_thread_cpu_clock_leaves_out_waiting():
    """The CPU clock counts the thread's work, not the time it waits (here: sleeping), unlike the wall clock."""
    import time

    from seqattn.sparsity.latency import time_paired

    candidates = {"sleep": lambda: time.sleep(0.02), "work": lambda: sum(i * i for i in range(200_000))}
    cpu = torch.device("cpu")
    wall, _ = time_paired(candidates, "work", cpu, repeats=2)
    thread, _ = time_paired(candidates, "work", cpu, repeats=2, clock="thread_cpu")
    assert min(wall[0].times) >= 0.02 and max(thread[0].times) < 0.005
    assert min(thread[1].times) > 0.001
    with pytest.raises(ValueError, match="clock"):
        time_paired(candidates, "work", cpu, clock="sundial")
    with pytest.raises(ValueError, match="num_threads=1"):
        measure_structured_latency(random_model(), {}, seq_lens=(8,), repeats=1, device="cpu", clock="thread_cpu")
    # the study's "auto": one CPU thread is timed by its CPU time; several threads or an accelerator by the wall
    assert timing_clock("auto", cpu, 1) == "thread_cpu"
    assert timing_clock("auto", cpu, 2) == timing_clock("auto", torch.device("cuda"), 1) == "wall"
    assert timing_clock("wall", cpu, 1) == "wall"
    with pytest.raises(ValueError, match="clock"):
        structured_pruning_study("tiny", clock="sundial", device="cpu")  # refused before anything trains
