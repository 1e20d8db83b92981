"""Agreement with TransformerLens on the same GPT-2 weights (converted offline, no hub)."""

from __future__ import annotations

import pytest
import torch

import interp
from tests.tiny_models import VOCAB, make

transformer_lens = pytest.importorskip("transformer_lens")


def tl_model(hf_model) -> object:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights

    c = hf_model.config
    cfg = HookedTransformerConfig(
        n_layers=c.n_layer,
        d_model=c.n_embd,
        n_heads=c.n_head,
        d_head=c.n_embd // c.n_head,
        d_mlp=4 * c.n_embd,
        n_ctx=c.n_positions,
        d_vocab=c.vocab_size,
        act_fn="gelu_new",
        normalization_type="LN",
        default_prepend_bos=False,
        eps=c.layer_norm_epsilon,
    )
    model = HookedTransformer(cfg)
    model.load_state_dict(convert_gpt2_weights(hf_model, cfg), strict=False)
    return model.eval()


@pytest.fixture(scope="module")
def pair():
    hf = make("gpt2")
    return interp.HookedModel(hf), tl_model(hf)


NAMES = [
    "hook_embed",
    "hook_pos_embed",
    *[
        f"blocks.{layer}.{kind}"
        for layer in (0, 1)
        for kind in (
            "hook_resid_pre",
            "hook_resid_mid",
            "hook_resid_post",
            "hook_attn_out",
            "hook_mlp_out",
            "attn.hook_q",
            "attn.hook_k",
            "attn.hook_v",
            "attn.hook_z",
            "attn.hook_pattern",
            "mlp.hook_pre",
            "mlp.hook_post",
        )
    ],
]


def test_cached_activations_agree(pair):
    ours, theirs = pair
    tokens = torch.randint(0, VOCAB, (3, 16), generator=torch.Generator().manual_seed(5))
    our_logits, our_cache = ours.run_with_cache(tokens)
    with torch.no_grad():
        their_logits, their_cache = theirs.run_with_cache(tokens)
    torch.testing.assert_close(our_logits, their_logits, atol=1e-4, rtol=0)
    for name in NAMES:
        torch.testing.assert_close(
            our_cache[name].expand_as(their_cache[name]), their_cache[name], atol=1e-4, rtol=0, msg=name
        )


def test_head_ablation_agrees(pair):
    ours, theirs = pair
    tokens = torch.randint(0, VOCAB, (2, 10), generator=torch.Generator().manual_seed(6))

    def zero_head(z, hook):
        z[:, :, 2] = 0
        return z

    with torch.no_grad():
        their = theirs.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_z", zero_head)])
    our = ours.run_with_interventions(tokens, [interp.Ablate("blocks.1.attn.hook_z", heads=(2,))])
    torch.testing.assert_close(our, their, atol=1e-4, rtol=0)
