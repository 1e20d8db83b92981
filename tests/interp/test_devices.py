"""Models split across devices by accelerate (CPU + disk offload), caches on a chosen device, and bf16.

The split model runs each layer through accelerate's hooks (weights of "disk" modules live on the meta
device until their forward loads them), so agreement with the single-device run checks that the
toolkit's hooks, caches and interventions see the real activations wherever a module executes.
"""

from __future__ import annotations

import pytest
import torch

import interp
from interp.errors import InterpError
from tests.tiny_models import VOCAB, make

SPLIT = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.norm": "cpu",
    "lm_head": "disk",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama")
    make("llama").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def single(folder) -> interp.HookedModel:
    return interp.load(str(folder))


@pytest.fixture(scope="module")
def split(folder, tmp_path_factory) -> interp.HookedModel:
    offload = tmp_path_factory.mktemp("offload")
    return interp.load(str(folder), device_map=SPLIT, offload_folder=str(offload), cache_device="cpu")


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(3))


def test_split_model_really_offloads(split):
    assert split.hf_model.hf_device_map["model.layers.1"] == "disk"
    offloaded = split.hf_model.model.layers[1].mlp.down_proj.weight
    assert offloaded.device.type == "meta"  # loaded from disk only while the layer runs
    assert split.device == torch.device("cpu")


def test_split_hooks_and_logits_equal_single_device(single, split, tokens):
    want_logits, want = single.run_with_cache(tokens)
    got_logits, got = split.run_with_cache(tokens)
    assert list(got) == list(want) == single.hook_names()
    torch.testing.assert_close(got_logits, want_logits, atol=1e-5, rtol=0)
    for name in want:
        assert got[name].device == torch.device("cpu")
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=0, msg=name)


def test_split_interventions_batched_runs_and_patching(single, split, tokens):
    corrupted = tokens.flip(-1)
    _, clean_cache = single.run_with_cache(tokens, names="blocks.1.attn.hook_z")
    sets = [
        [interp.Patch("blocks.1.attn.hook_z", clean_cache, heads=[h])] for h in range(single.cfg.n_heads)
    ] + [[interp.Ablate("blocks.1.hook_mlp_out"), interp.Scale("blocks.0.hook_resid_post", 0.5)]]
    for ivs in sets:
        torch.testing.assert_close(
            split.run_with_interventions(corrupted, ivs),
            single.run_with_interventions(corrupted, ivs),
            atol=1e-5,
            rtol=0,
        )
    torch.testing.assert_close(
        split.run_batched(corrupted, sets), single.run_batched(corrupted, sets), atol=1e-5, rtol=0
    )
    from circuits.patching import activation_patching

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1, 5].mean() - logits[:, -1, 7].mean()

    want = activation_patching(single, tokens, corrupted, metric, hook="resid_pre", per="position")
    got = activation_patching(split, tokens, corrupted, metric, hook="resid_pre", per="position")
    torch.testing.assert_close(torch.as_tensor(got.values), torch.as_tensor(want.values), atol=1e-5, rtol=0)


def test_dispatch_an_in_memory_model(tmp_path, tokens):
    reference = interp.HookedModel(make("gpt2"))
    want_logits, want = reference.run_with_cache(tokens, names="blocks.*.hook_resid_post")
    device_map = {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.h.0": "cpu"}
    device_map |= {"transformer.h.1": "disk", "transformer.ln_f": "cpu", "lm_head": "cpu"}
    split = interp.load(make("gpt2"), device_map=device_map, offload_folder=str(tmp_path))
    got_logits, got = split.run_with_cache(tokens, names="blocks.*.hook_resid_post")
    torch.testing.assert_close(got_logits, want_logits, atol=1e-5, rtol=0)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=0)


def test_cache_device_routes_every_activation(folder, tokens):
    model = interp.load(str(folder), cache_device="meta")  # a device nothing runs on: proves the move
    _, cache = model.run_with_cache(tokens, names="blocks.*.hook_resid_post")
    assert {t.device.type for t in cache.values()} == {"meta"}
    _, here = model.run_with_cache(tokens, names="blocks.0.hook_resid_post", device="cpu")
    assert here["blocks.0.hook_resid_post"].device.type == "cpu"


def test_device_map_errors_name_the_fix(folder, split):
    with pytest.raises(InterpError, match="offload_folder"):
        interp.load(str(folder), device_map=SPLIT)
    with pytest.raises(InterpError, match="not understood"):
        interp.load(str(folder), device_map="everywhere")
    with pytest.raises(InterpError, match="device_map"):
        split.to("cpu")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_hooks_are_bitwise_the_forward(dtype, tokens):
    hf = make("llama").to(dtype)
    model = interp.HookedModel(hf)
    with torch.no_grad():
        out = hf(input_ids=tokens, output_hidden_states=True, use_cache=False)
    logits, cache = model.run_with_cache(tokens)
    assert logits.dtype == dtype and torch.equal(logits, out.logits)
    assert torch.equal(cache["blocks.0.hook_resid_pre"], out.hidden_states[0])
    assert torch.equal(cache["blocks.0.hook_resid_post"], out.hidden_states[1])
    assert all(t.dtype == dtype for t in cache.values() if t.is_floating_point())
    with model.hooks({"*": lambda x, name: x}):  # identity edits at every hook point change nothing
        assert torch.equal(model(tokens), out.logits)
