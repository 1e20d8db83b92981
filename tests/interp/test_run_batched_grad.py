"""`run_batched` runs its passes without autograd unless asked (the graph held ~3x the memory budget)."""

from __future__ import annotations

import torch
import transformers as T

import interp


def _model() -> interp.HookedModel:
    torch.manual_seed(0)
    cfg = T.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=50, n_positions=16)
    return interp.HookedModel(T.GPT2LMHeadModel(cfg).eval())


def test_no_graph_by_default_and_gradients_on_request():
    model = _model()
    ids = torch.randint(0, 50, (2, 8))
    sets = [[interp.Scale("blocks.0.hook_resid_post", factor=f)] for f in (0.5, 2.0)]
    plain = model.run_batched(ids, sets)  # [set, batch, pos, vocab]
    assert not plain.requires_grad
    with_grad = model.run_batched(ids, sets, grad=True)
    assert with_grad.requires_grad
    torch.testing.assert_close(plain, with_grad.detach(), rtol=0, atol=0)  # same kernels
    with_grad[:, :, -1, 0].sum().backward()
    weight = model.hf_model.transformer.h[0].mlp.c_fc.weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    with torch.no_grad():  # an outer no_grad wins
        assert not model.run_batched(ids, sets, grad=True).requires_grad
