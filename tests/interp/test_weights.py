"""Weight access and the architecture description, checked against each family's real forward."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.errors import InterpError
from tests.tiny_models import ALL_FAMILIES, VOCAB, make

TOL = dict(atol=2e-5, rtol=2e-5)


@pytest.fixture(scope="module", params=ALL_FAMILIES)
def model(request) -> interp.HookedModel:
    return interp.HookedModel(make(request.param))


@pytest.fixture(scope="module")
def cached(model):
    tokens = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(5))
    outputs: dict[int, torch.Tensor] = {}
    handles = [
        model.module(model.arch.o.path, layer).register_forward_hook(
            lambda m, a, out, layer=layer: outputs.__setitem__(layer, out.detach())
        )
        for layer in range(model.cfg.n_layers)
    ]
    try:
        _, cache = model.run_with_cache(tokens, names=lambda n: "pattern" not in n)
    finally:
        for handle in handles:
            handle.remove()
    return cache, outputs


def _norm(model, path, layer, x):
    return x if path is None else model.module(path, layer)(x)


def _attn_input(model, cache, layer):
    arch = model.arch
    pre = cache[f"blocks.{layer}.hook_resid_pre"]
    return pre if arch.residual == "post_norm" else _norm(model, arch.attn_norm, layer, pre)


def _mlp_input(model, cache, layer):
    arch = model.arch
    if arch.residual == "parallel":
        pre = cache[f"blocks.{layer}.hook_resid_pre"]
        return _norm(model, arch.mlp_norm or arch.attn_norm, layer, pre)
    mid = cache[f"blocks.{layer}.hook_resid_mid"]
    return mid if arch.residual == "post_norm" else _norm(model, arch.mlp_norm, layer, mid)


@pytest.mark.parametrize("layer", [0, 1])
def test_qkv_weights_reproduce_hooks(model, cached, layer):
    cache, _ = cached
    x = _attn_input(model, cache, layer)  # [batch, pos, d_model]
    group = model.cfg.n_heads // model.cfg.n_kv_heads
    for kind in ("q", "k", "v"):
        W, b = model.weight(f"W_{kind.upper()}", layer), model.weight(f"b_{kind.upper()}", layer)
        assert W.shape == (model.cfg.n_heads, model.cfg.d_model, model.cfg.d_head)
        got = torch.einsum("bpd,hde->bphe", x, W) + b  # [batch, pos, head, d_head]
        hooked = cache[f"blocks.{layer}.attn.hook_{kind}"]
        if kind != "q":
            hooked = hooked.repeat_interleave(group, dim=2)  # grouped-query heads expanded
        torch.testing.assert_close(got, hooked, **TOL, msg=kind)


@pytest.mark.parametrize("layer", [0, 1])
def test_z_through_W_O_is_the_output_projection_and_attn_out(model, cached, layer):
    cache, o_outputs = cached
    arch = model.arch
    z = cache[f"blocks.{layer}.attn.hook_z"]  # [batch, pos, head, d_head]
    projected = torch.einsum("bphe,hed->bpd", z, model.W_O[layer]) + model.b_O[layer]
    torch.testing.assert_close(projected, o_outputs[layer], **TOL)
    if arch.residual == "post_norm":  # BERT: the norm sees attention + residual
        pre = cache[f"blocks.{layer}.hook_resid_pre"]
        expected = model.module(arch.attn_norm, layer)(projected + pre) - pre
    else:
        expected = arch.attn_scale * _norm(model, arch.attn_post_norm, layer, projected)
    torch.testing.assert_close(expected, cache[f"blocks.{layer}.hook_attn_out"], **TOL)


@pytest.mark.parametrize("layer", [0, 1])
def test_mlp_weights_reproduce_hooks(model, cached, layer):
    arch = model.arch
    if arch.mlp_out is None:
        with pytest.raises(InterpError, match="MoE"):
            model.weight("W_in", layer)
        return
    cache, _ = cached
    x = _mlp_input(model, cache, layer)
    first = "W_gate" if arch.mlp_gate is not None else "W_in"
    pre = x @ model.weight(first, layer) + model.weight("b" + first[1:], layer)
    torch.testing.assert_close(pre, cache[f"blocks.{layer}.mlp.hook_pre"], **TOL)
    out = cache[f"blocks.{layer}.mlp.hook_post"] @ model.W_out[layer] + model.b_out[layer]
    if arch.residual == "post_norm":
        mid = cache[f"blocks.{layer}.hook_resid_mid"]
        expected = model.module(arch.mlp_norm, layer)(out + mid) - mid
    else:
        expected = arch.mlp_scale * _norm(model, arch.mlp_post_norm, layer, out)
    torch.testing.assert_close(expected, cache[f"blocks.{layer}.hook_mlp_out"], **TOL)


def test_embedding_and_unembedding(model, cached):
    cache, _ = cached
    tokens = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(5))
    assert model.W_E.shape == (VOCAB, model.cfg.d_model)
    torch.testing.assert_close(cache["hook_embed"], model.module(model.arch.embed)(tokens))
    if model.cfg.is_encoder:
        return
    assert model.W_U.shape == (model.cfg.d_model, VOCAB)
    final = cache["ln_final.hook_normalized"]
    logits = model.scale_logits(final @ model.W_U + model.b_U)
    torch.testing.assert_close(logits, model(tokens), **TOL)
    torch.testing.assert_close(
        model.unembed(cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]), model(tokens), **TOL
    )


def test_per_head_access_and_range_errors(model):
    layer, head = 1, model.cfg.n_heads - 1
    assert torch.equal(model.weight("W_O", layer, head), model.W_O[layer, head])
    assert torch.equal(model.weight("W_K", layer, head), model.W_K[layer, head])
    with pytest.raises(InterpError, match="layer 2 out of range"):
        model.weight("W_Q", 2)
    with pytest.raises(InterpError, match=f"head {model.cfg.n_heads} out of range"):
        model.weight("W_Q", 0, model.cfg.n_heads)
    with pytest.raises(InterpError, match="unknown weight"):
        model.weight("W_q", 0)
    with pytest.raises(InterpError, match="no module"):
        model.module("layers.0.nonexistent")
    with pytest.raises(InterpError, match="out of range"):
        model.module(model.arch.attn, layer=model.cfg.n_layers)
    assert model.module(model.arch.attn, layer=0) is model.base_model.get_submodule(
        model.arch.attn.format(l=0)
    )
