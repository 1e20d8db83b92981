"""Agreement with TransformerLens on the same GPT-2 weights (converted offline, no hub)."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.bench import transformer_lens_gpt2
from tests.tiny_models import VOCAB, make

transformer_lens = pytest.importorskip("transformer_lens")


@pytest.fixture(scope="module")
def pair():
    hf = make("gpt2")
    return interp.HookedModel(hf), transformer_lens_gpt2(hf)


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
