"""Hooks on several parts of one fused projection (q, k and v of GPT-2's `c_attn`, NeoX's interleaved
`query_key_value`, Falcon's grouped layout, Phi-3's `gate_up_proj`) are applied through one split and
one join: the result must equal writing each part back with its own setter, one after another."""

from __future__ import annotations

import pytest
import torch

import interp
from interp import hook_points
from interp.adapters.layouts import fused_layout, fused_part
from tests import tiny_models

CASES = {
    "gpt2": ("attn.hook_q", "attn.hook_k", "attn.hook_v"),
    "neox-parallel": ("attn.hook_q", "attn.hook_k", "attn.hook_v"),
    "falcon-new": ("attn.hook_q", "attn.hook_k", "attn.hook_v"),
    "phi3": ("attn.hook_q", "attn.hook_k", "attn.hook_v", "mlp.hook_pre"),
}


@pytest.mark.parametrize("family", list(CASES))
def test_replacing_fused_parts_together_equals_one_at_a_time(family, monkeypatch):
    model = interp.HookedModel(tiny_models.make(family).double())
    tokens = torch.randint(0, tiny_models.VOCAB, (2, 6), generator=torch.Generator().manual_seed(0))
    names = [f"blocks.1.{kind}" for kind in CASES[family] if f"blocks.1.{kind}" in model.hook_names()]
    assert len(names) == len(CASES[family])
    scales = {n: 1.5 + i for i, n in enumerate(names)}
    embed = model.hf_model.get_input_embeddings().weight

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        seen = {}

        def hook(x, name):
            seen[name] = x.detach().clone()
            return x * scales[name] + 0.25

        embed.grad = None
        logits = model.run_with_hooks(tokens, fwd_hooks=[(n, hook) for n in names])
        logits[:, -1].square().sum().backward()
        return logits.detach(), seen, embed.grad.clone()

    ours, seen, grad = run()
    monkeypatch.setattr(hook_points, "_fused_part", lambda point, dims: None)  # one setter per part
    reference, expected_seen, expected_grad = run()
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)  # same kernels: bitwise
    for n in names:
        torch.testing.assert_close(seen[n], expected_seen[n], rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)  # summation order may differ


LAYOUTS = [("blocked", 4, 2), ("blocked", 4, 4), ("interleaved", 4, 4), ("grouped", 4, 2), ("halves", 4, 4)]


@pytest.mark.parametrize(("layout", "h", "kv"), LAYOUTS)
def test_join_of_split_parts_is_the_tensor_and_setters_agree(layout, h, kv):
    dh = 3
    width = {"blocked": (h + 2 * kv) * dh, "interleaved": 3 * h * dh, "grouped": kv * (h // kv + 2) * dh}
    t = torch.randn(2, 5, width.get(layout, 8), dtype=torch.float64)
    fused = fused_layout(layout, h, kv, dh)
    parts = fused.split(t)
    assert torch.equal(fused.join(t, parts), t)
    for i in range(len(parts)):
        get, set_ = fused_part(layout, i, h, kv, dh)
        new = torch.randn_like(get(t))
        replaced = set_(t, new)
        assert torch.equal(get(replaced), new)
        for j, other in enumerate(fused.split(replaced)):
            if j != i:
                assert torch.equal(other, parts[j])


@pytest.mark.parametrize(("h", "kv"), [(4, 4), (4, 2), (4, 1)])
def test_blocked_split_gives_views_of_the_slices(h, kv):
    """The blocked split gives views of the tensor, not copies, laid out as the plain slices
    [q | k | v], for equal widths and for grouped-query widths alike."""
    dh = 3
    t = torch.randn(2, 5, (h + 2 * kv) * dh)
    q, k, v = fused_layout("blocked", h, kv, dh).split(t)
    bounds = (0, h * dh, (h + kv) * dh, (h + 2 * kv) * dh)
    for part, heads, start, stop in zip((q, k, v), (h, kv, kv), bounds[:-1], bounds[1:], strict=True):
        expected = t[..., start:stop].unflatten(-1, (heads, dh))
        assert part.shape == (2, 5, heads, dh)
        assert part.stride() == expected.stride() and part.storage_offset() == expected.storage_offset()
        assert part.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
        assert torch.equal(part, expected)
