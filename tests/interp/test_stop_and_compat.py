"""stop_at_layer, module(), run_with_hooks, to_str_tokens and generate with hooks."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.errors import InterpError
from tests.tiny_models import VOCAB, make

FAMILIES = ["gpt2", "llama", "gemma2", "neox-parallel", "bert", "opt", "mixtral", "granite"]


@pytest.fixture(scope="module", params=FAMILIES)
def model(request) -> interp.HookedModel:
    return interp.HookedModel(make(request.param))


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(3))


def _count_block_calls(model: interp.HookedModel):
    calls: list[int] = []
    blocks = model.module(model.adapter.layers)
    handles = [b.register_forward_pre_hook(lambda m, a, i=i: calls.append(i)) for i, b in enumerate(blocks)]
    return calls, handles


def test_stop_at_layer_returns_the_stream_and_runs_only_early_blocks(model, tokens):
    _, full = model.run_with_cache(tokens, names="blocks.*.hook_resid_*")
    for stop in (1, 2):
        calls, handles = _count_block_calls(model)
        try:
            resid, cache = model.run_with_cache(tokens, names="blocks.*.hook_resid_post", stop_at_layer=stop)
        finally:
            for handle in handles:
                handle.remove()
        assert calls == list(range(stop))
        assert torch.equal(resid, full[f"blocks.{stop - 1}.hook_resid_post"])
        assert set(cache) == {f"blocks.{i}.hook_resid_post" for i in range(stop)}
        assert torch.equal(model(tokens, stop_at_layer=stop), resid)
    assert torch.equal(model(tokens, stop_at_layer=0), full["blocks.0.hook_resid_pre"])
    assert torch.equal(model(tokens, stop_at_layer=-1), full["blocks.0.hook_resid_post"])
    assert model.hooks_installed() == 0


def test_stop_at_layer_sees_interventions(model, tokens):
    name = "blocks.0.hook_attn_out"
    with model.hooks({name: lambda x, n: x * 0}):
        stopped = model(tokens, stop_at_layer=1)
    _, cache = model.run_with_cache(tokens, names="blocks.0.hook_resid_*")
    assert not torch.equal(stopped, cache["blocks.0.hook_resid_post"])
    edited = model.run_with_interventions(tokens, [interp.Ablate(name)], stop_at_layer=1)
    torch.testing.assert_close(edited, stopped)


@pytest.mark.parametrize("bad", [3, -3, 1.5, "1", True])
def test_stop_at_layer_out_of_range(model, tokens, bad):
    with pytest.raises(InterpError, match="stop_at_layer"):
        model(tokens, stop_at_layer=bad)


def test_run_with_hooks_passes_hook_objects_with_names(model, tokens):
    seen: list[str] = []

    def ablate(x, hook):
        seen.append(hook.name)
        return torch.zeros_like(x)

    logits = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_mlp_out", ablate)])
    expected = model.run_with_interventions(tokens, [interp.Ablate("blocks.1.hook_mlp_out")])
    assert seen == ["blocks.1.hook_mlp_out"]
    assert torch.equal(logits, expected)
    assert model.hooks_installed() == 0


def test_to_str_tokens_and_generate_with_hooks():
    model = interp.load("ioi-tiny")
    text = "When Mary and John went to the store"
    pieces = model.to_str_tokens(text)
    assert "".join(pieces).replace(" ", "").endswith("store".replace(" ", ""))
    assert len(pieces) == model.to_tokens(text)[0].shape[1]
    assert model.to_str_tokens([text, "When Mary"])[1][:2] == pieces[:2]
    plain = model.generate(text, max_new_tokens=4)
    ids = model.to_tokens(text)[0]
    assert plain.shape == (1, ids.shape[1] + 4) and torch.equal(plain[:, : ids.shape[1]], ids)
    # greedy generation equals repeated argmax of the model's own forward
    running = ids
    for _ in range(4):
        running = torch.cat([running, model(running)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(plain, running)
    # with a hook active at every step, generation follows the hooked forward
    kill = {"blocks.*.hook_mlp_out": lambda x, name: x * 0}
    hooked = model.generate(text, max_new_tokens=4, hooks=kill)
    running = ids
    with model.hooks(kill):
        for _ in range(4):
            running = torch.cat([running, model(running)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(hooked, running)
    assert model.hooks_installed() == 0
    with pytest.raises(InterpError, match="max_new_tokens"):
        model.generate(text, max_new_tokens=0)
