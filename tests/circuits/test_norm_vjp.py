"""Which attention norms get the closed-form VJP: the table's kinds when the formula checks out
against autograd, and never a norm whose forward differs from its kind's formula."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm

import interp
from circuits.discovery.architecture import describe
from circuits.discovery.norm_vjp import closed_form
from tests import tiny_models


class _ScaledRMSNorm(LlamaRMSNorm):
    """Looks like Llama's RMSNorm to the kind table, but computes something else."""

    def forward(self, hidden_states):
        return 2.0 * super().forward(hidden_states)


def _randomised(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


@pytest.mark.parametrize(
    ("module", "centred", "offset"),
    [
        (nn.LayerNorm(16), True, False),
        (nn.LayerNorm(16, elementwise_affine=False), True, False),
        (LlamaRMSNorm(16), False, False),
        (GemmaRMSNorm(16), False, True),
    ],
)
def test_table_norms_get_the_closed_form(module, centred, offset):
    form = closed_form(_randomised(module).double())
    assert form is not None and (form.centred, form.offset) == (centred, offset)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    u = torch.randn(4, 3, 5, 16, dtype=torch.float64)
    _, pullback = torch.func.vjp(module, x)
    expected = torch.vmap(pullback)(u)[0]
    got = form.vjp(x, u @ form.fold(torch.eye(16, dtype=torch.float64)))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)  # Llama's norm runs in float32 inside


def test_grouped_sum_equals_per_copy_vjps():
    form = closed_form(_randomised(LlamaRMSNorm(16)).double())
    x = torch.randn(3 * 2, 5, 16, dtype=torch.float64)  # 3 stacked copies of a batch of 2
    w = form.fold(torch.randn(4, 8, 16, dtype=torch.float64))  # [n, c, d_model]
    g = torch.randn(4, 6 * 5, 8, dtype=torch.float64)  # [n, batch * pos, c]
    per_copy = form.vjp(x, torch.bmm(g, w).unflatten(1, (6, 5)))  # [n, 6, 5, 16]
    expected = per_copy.unflatten(1, (3, 2)).sum(1)
    torch.testing.assert_close(form.vjp_summed(x, g, w, groups=3), expected)


def test_a_norm_that_does_not_match_its_kind_keeps_the_generic_path():
    assert closed_form(_randomised(_ScaledRMSNorm(16))) is None
    assert closed_form(LlamaRMSNorm(16).half()) is None  # half precision: autograd's upcast is kept
    assert closed_form(nn.Identity()) is None


@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma", "neox"])
def test_zoo_families_use_the_closed_form(family):
    model = interp.HookedModel(tiny_models.make(family))
    assert all(closed_form(norm) is not None for norm in describe(model).attn_norms)
