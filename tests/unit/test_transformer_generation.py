"""TinyGPT's lean generation path (prefill / decode_step → _generate) against the module forward pass: the
same logits and the same KV cache for dense, physically pruned and unstructured (dense-kernel and CSR)
models, the one position check both paths share, and the GELU kernel choice. Tiny configs only."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqattn.device import torch_threads
from seqattn.sparsity.structured import remove_units, unit_gates, unit_layouts
from seqattn.sparsity.structured_latency import unstructured_copy
from seqattn.sparsity.transformer import ONEDNN_GELU_FROM, TinyGPT, TransformerConfig, gelu_2d
from tests.unit.test_structured_pruning import random_model

CONFIG = TransformerConfig.uniform(n_layer=3, n_head=4, d_model=32, context=40)


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def pruned_model() -> TinyGPT:
    """Heads and MLP blocks removed unevenly: layers of 3, 1 and 4 heads, MLP widths 96, 32 and 0."""
    layouts = unit_layouts(CONFIG, ("heads", "mlp"), mlp_block=32)
    heads = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1], dtype=torch.float32)
    mlp = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0], dtype=torch.float32)
    small = remove_units(random_model(CONFIG), unit_gates(layouts, {"heads": heads, "mlp": mlp}))
    assert small.config.heads == (3, 1, 4) and small.config.mlp_hidden == (96, 32, 0)
    return small


def models() -> dict[str, TinyGPT]:
    dense = random_model(CONFIG)
    return {"dense": dense, "pruned": pruned_model(), "unstructured": unstructured_copy(dense, 0.5),
            "unstructured CSR": unstructured_copy(dense, 0.5, csr=True)}


@pytest.mark.parametrize("name", ["dense", "pruned", "unstructured", "unstructured CSR"])
@pytest.mark.parametrize("prompt", [1, 7, 32])
def test_prefill_and_decoding_give_the_forward_pass_logits_and_cache(name, prompt):
    model = models()[name]
    x = torch.randint(0, 256, (2, CONFIG.context), generator=torch.Generator().manual_seed(prompt))
    with torch.no_grad():
        full = model(x)
        reference_cache = model.new_cache(2)
        model(x[:, :prompt], cache=reference_cache)
    last, cache = model.prefill(x[:, :prompt])
    torch.testing.assert_close(last, full[:, prompt - 1], atol=1e-5, rtol=1e-4)
    for ours, theirs in zip(cache.kv, reference_cache.kv):  # the keys and values generation continues from
        torch.testing.assert_close(ours[..., :prompt, :], theirs[..., :prompt, :], atol=1e-5, rtol=1e-4)
    steps = [model.decode_step(x[:, t:t + 1], cache) for t in range(prompt, prompt + 5)]
    torch.testing.assert_close(torch.stack(steps, 1), full[:, prompt:prompt + 5], atol=1e-5, rtol=1e-4)
    assert cache.length == prompt + 5


def test_generation_leaves_the_prompt_and_the_weights_untouched():
    """The residual stream is updated in place: it must be a tensor of its own, never the embedding table."""
    model = random_model(CONFIG)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, 256, (1, 12))
    kept = x.clone()
    first = model.prefill(x)[0]
    torch.testing.assert_close(model.prefill(x)[0], first, atol=0, rtol=0)
    assert torch.equal(x, kept)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_forward_and_generation_refuse_the_same_positions():
    model = random_model(CONFIG)
    x = torch.randint(0, 256, (1, CONFIG.context + 1))
    for run in (lambda: model(x), lambda: model.prefill(x)):
        with pytest.raises(ValueError, match="exceed the model's context of 40"):
            run()
    _, cache = model.prefill(x[:, :5])
    for run in (lambda: model(x[:, :2], cache=cache), lambda: model.decode_step(x[:, :2], cache)):
        with pytest.raises(ValueError, match="several tokens"):
            run()
    assert cache.length == 5  # the refused calls wrote nothing
    short = model.new_cache(1, max_len=4)
    for t in range(4):
        model.decode_step(x[:, t:t + 1], short)
    with pytest.raises(ValueError, match="cache holds 4 positions"):
        model.decode_step(x[:, 4:5], short)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("shape", [(32, 96), (7, 224), (1, 512), (64, 512), (256, 512)])
def test_gelu_2d_is_exact_gelu_and_small_inputs_skip_onednn(shape):
    h = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 3
    out = gelu_2d(h)
    assert out.shape == h.shape and out.is_contiguous()
    torch.testing.assert_close(out, F.gelu(h), atol=3e-6, rtol=1e-5)
    with torch.backends.mkldnn.flags(enabled=False):  # torch's own kernel, bit for bit
        native = F.gelu(h)
    if h.numel() < ONEDNN_GELU_FROM and shape[0] > 1:
        assert torch.equal(out, native)
    else:
        assert torch.equal(out, F.gelu(h))
