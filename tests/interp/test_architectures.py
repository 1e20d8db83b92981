"""Per-family equality with the plain Hugging Face model, on random-init tiny configs."""

from __future__ import annotations

import pytest
import torch

import interp
from tests.tiny_models import ALL_FAMILIES, VOCAB, make

LAYERS = (0, 1)


@pytest.fixture(scope="module", params=ALL_FAMILIES)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def model(family) -> interp.HookedModel:
    return interp.HookedModel(make(family))


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (3, 12), generator=torch.Generator().manual_seed(1))


def hf_output(hooked: interp.HookedModel, ids: torch.Tensor) -> torch.Tensor:
    """The plain HF forward, called as HookedModel calls it (no key-value cache: some families'
    cached and uncached paths differ in the last bits)."""
    extra = {"use_cache": False} if getattr(hooked.hf_model.config, "use_cache", None) is not None else {}
    out = hooked.hf_model(input_ids=ids, **extra)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def test_no_hooks_is_bitwise_hf(model, tokens):
    assert torch.equal(model(tokens), hf_output(model, tokens))


def test_sdpa_no_hooks_is_bitwise_hf(family, tokens):
    if family == "gemma2":
        pytest.skip("transformers' sdpa path rejects Gemma 2's attention softcapping")
    model = interp.HookedModel(make(family, attn="sdpa"))
    assert torch.equal(model(tokens), hf_output(model, tokens))
    _, cache = model.run_with_cache(tokens, names=lambda n: "pattern" not in n)
    assert model.hf_model.config._attn_implementation == "sdpa"
    assert len(cache) > 20


def test_identity_hooks_everywhere_are_bitwise_hf(model, tokens):
    identity = {name: (lambda t, name: t) for name in model.hook_names()}
    with model.hooks(identity):
        hooked = model(tokens)
    assert torch.equal(hooked, hf_output(model, tokens))
    assert model.hooks_installed() == 0


def test_cache_everything_keeps_logits(model, tokens):
    logits, cache = model.run_with_cache(tokens)
    assert torch.equal(logits, hf_output(model, tokens))
    assert set(cache) == set(model.hook_names())


def test_resid_post_matches_hf_hidden_states(model, tokens):
    _, cache = model.run_with_cache(tokens, names="blocks.*.hook_resid_post")
    hidden = model.hf_model(input_ids=tokens, output_hidden_states=True).hidden_states
    # hidden_states[l + 1] is block l's output, except the last, which HF takes after the final norm
    last = len(hidden) - 2 if model.cfg.family != "bert" else len(hidden) - 1
    for layer in range(last):
        assert torch.equal(cache[f"blocks.{layer}.hook_resid_post"], hidden[layer + 1]), layer


def test_block_identity(model, tokens):
    _, cache = model.run_with_cache(tokens, names=lambda n: "resid" in n or n.endswith("_out"))
    for layer in LAYERS:
        total = sum(cache[f"blocks.{layer}.{k}"] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out"))
        torch.testing.assert_close(total, cache[f"blocks.{layer}.hook_resid_post"], atol=1e-5, rtol=1e-5)
        mid = f"blocks.{layer}.hook_resid_mid"
        if mid in cache:
            torch.testing.assert_close(
                cache[f"blocks.{layer}.hook_resid_pre"] + cache[f"blocks.{layer}.hook_attn_out"], cache[mid]
            )


def _attn_out_from_z(
    model: interp.HookedModel, layer: int, z: torch.Tensor, resid_pre: torch.Tensor
) -> torch.Tensor:
    """Push hook_z [batch, pos, head, d_head] through the real output projection (and whatever follows)."""
    arch = model.arch
    projected = model.module(arch.o.path, layer)(z.flatten(-2))
    if arch.residual == "post_norm":
        return model.module(arch.attn_norm, layer)(projected + resid_pre) - resid_pre
    if arch.attn_post_norm is not None:
        projected = model.module(arch.attn_post_norm, layer)(projected)
    return projected * arch.attn_scale if arch.attn_scale != 1.0 else projected


def test_z_through_output_projection_is_attn_out(model, tokens):
    _, cache = model.run_with_cache(tokens)
    for layer in LAYERS:
        z = cache[f"blocks.{layer}.attn.hook_z"]
        assert z.shape[2:] == (model.cfg.n_heads, model.cfg.d_head)
        rebuilt = _attn_out_from_z(model, layer, z, cache[f"blocks.{layer}.hook_resid_pre"])
        torch.testing.assert_close(rebuilt, cache[f"blocks.{layer}.hook_attn_out"], atol=1e-5, rtol=1e-5)


def _output_projection(model: interp.HookedModel, layer: int) -> tuple[torch.nn.Parameter, int]:
    """The attention output projection's weight and the weight dim that indexes its input features."""
    module = model.module(model.arch.o.path, layer)
    return module.weight, 0 if type(module).__name__ == "Conv1D" else 1


@pytest.mark.parametrize("head", [0, 3])
def test_ablating_a_head_equals_zeroing_its_output_weights(model, tokens, head):
    layer, d_head = 1, model.cfg.d_head
    ablated = model.run_with_interventions(
        tokens, [interp.Ablate(f"blocks.{layer}.attn.hook_z", heads=(head,))]
    )
    weight, dim = _output_projection(model, layer)
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.narrow(dim, head * d_head, d_head).zero_()
    try:
        reference = hf_output(model, tokens)
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    torch.testing.assert_close(ablated, reference, atol=1e-5, rtol=1e-5)


def test_patching_restores_clean(model, tokens):
    corrupted = torch.randint(0, VOCAB, tokens.shape, generator=torch.Generator().manual_seed(2))
    clean_logits, cache = model.run_with_cache(tokens)
    everything = [interp.Patch(n, value=cache) for n in model.hook_names() if n != "hook_pos_embed"]
    torch.testing.assert_close(model.run_with_interventions(corrupted, everything), clean_logits)
    # any single full cut of the residual stream restores the clean output on its own
    for name in (
        "blocks.0.hook_resid_pre",
        "blocks.1.hook_resid_pre",
        "blocks.1.hook_resid_mid",
        "blocks.1.hook_resid_post",
    ):
        if name in model.hook_names():
            patched = model.run_with_interventions(corrupted, [interp.Patch(name, value=cache)])
            torch.testing.assert_close(patched, clean_logits, atol=1e-5, rtol=1e-5, msg=name)


def test_run_batched_equals_one_at_a_time(model, tokens):
    corrupted = torch.randint(0, VOCAB, tokens.shape, generator=torch.Generator().manual_seed(3))
    _, cache = model.run_with_cache(tokens)
    mlp_hidden = (
        "blocks.1.mlp.hook_post"
        if "blocks.1.mlp.hook_post" in model.hook_names()
        else "blocks.1.hook_mlp_out"
    )
    sets = [
        [],
        [interp.Patch("blocks.0.hook_resid_pre", value=cache, positions=(3,))],
        [
            interp.Ablate("blocks.1.attn.hook_z", heads=(2,)),
            interp.Scale("blocks.0.hook_mlp_out", factor=0.5),
        ],
        [interp.Patch("blocks.1.attn.hook_pattern", value=cache, heads=(1,))],
        [
            interp.Ablate("blocks.0.hook_attn_out", kind="mean"),
            interp.Ablate(mlp_hidden, kind="resample", seed=4),
        ],
        [
            interp.Patch(
                "blocks.0.attn.hook_k", value=cache, heads=(model.cfg.n_kv_heads - 1,), positions=(0, 5)
            )
        ],
    ]
    batched = model.run_batched(corrupted, sets, memory_budget=1)  # budget of 1 byte: one set per pass
    batched_all = model.run_batched(corrupted, sets)
    for index, interventions in enumerate(sets):
        single = model.run_with_interventions(corrupted, interventions)
        torch.testing.assert_close(batched[index], single, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched_all[index], single, atol=1e-5, rtol=1e-5)


def test_detection_reports_family(model, family):
    expected = {"bert": "bert", "gpt2": "gpt2", "qwen3": "llama"}.get(family, family.split("-")[0])
    expected = {
        "neox": "gpt_neox",
        "mistral": "llama",
        "qwen2": "llama",
        "gemma": "llama",
        "gemma2": "llama",
    }.get(expected, expected)
    assert model.cfg.family == expected
    assert model.cfg.matched == ("structure" if family == "qwen3" else "table")
