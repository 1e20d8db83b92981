"""Activation patching: batched sweeps equal the one-at-a-time reference, the properties patching must
have, agreement with TransformerLens on the same weights, and clear errors on bad input."""

from __future__ import annotations

import pytest
import torch

import interp
from circuits import patching
from circuits.patching.activation import patched_metric
from circuits.patching.sites import grid, site_interventions
from interp.bench import transformer_lens_gpt2
from interp.errors import InterpError
from tests.tiny_models import VOCAB, make

N_POS, CORRUPT_AT = 8, 3


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.HookedModel(make("gpt2"))


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.randint(0, VOCAB, (2, N_POS), generator=torch.Generator().manual_seed(1))
    corrupted = clean.clone()
    corrupted[:, CORRUPT_AT] = (corrupted[:, CORRUPT_AT] + 5) % VOCAB  # differs at one position only
    return clean, corrupted


METRIC = patching.logit_diff(answer=5, wrong=7, position=-1)


def reference(model, clean, corrupted, hook, per, mode="denoise", positions=None) -> torch.Tensor:
    """The slow loop: one `run_with_interventions` per site."""
    source, target = (clean, corrupted) if mode == "denoise" else (corrupted, clean)
    _, cache = model.run_with_cache(source)
    g = grid(model, hook, per, N_POS, clean.shape[0], positions=positions)
    values = [
        patched_metric(model, target, site_interventions(g, s, cache[g.kind.hook(s.layer)]), METRIC)
        for s in g.sites
    ]
    return torch.tensor(values).reshape(g.shape)


CASES = [
    ("resid_pre", "position"),
    ("resid_mid", "position"),
    ("attn_out", "position"),
    ("mlp_out", "layer"),
    ("z", "head"),
    ("z", "position_head"),
    ("q", "head"),
    ("k", "position"),
    ("v", "head"),
    ("pattern", "position_head"),
    ("mlp_post", "position"),
]


@pytest.mark.parametrize(("hook", "per"), CASES)
def test_batched_equals_one_at_a_time(model, pair, hook, per):
    got = patching.activation_patching(model, *pair, METRIC, hook, per, normalise_metric=False)
    torch.testing.assert_close(got.values, reference(model, *pair, hook, per), atol=1e-5, rtol=0)
    assert got.dims[0] == "layer" and got.values.shape == reference(model, *pair, hook, per).shape
    assert model.hooks_installed() == 0


def test_noising_and_named_positions_equal_reference(model, pair):
    got = patching.activation_patching(
        model, *pair, METRIC, "resid_pre", mode="noise", normalise_metric=False
    )
    torch.testing.assert_close(
        got.values, reference(model, *pair, "resid_pre", "position", "noise"), atol=1e-5, rtol=0
    )
    named = {"A": torch.tensor([CORRUPT_AT, CORRUPT_AT]), "B": torch.tensor([2, 6])}  # B differs per example
    got = patching.activation_patching(
        model, *pair, METRIC, "z", "position_head", positions=named, normalise_metric=False
    )
    assert got.labels["position"] == ("A", "B")
    where = torch.tensor([[False, True, False], [True, False, False]])
    patch = patching.PatchWhere(
        "blocks.0.attn.hook_z", value=torch.ones(2, 3, 4, 16), heads=(1,), where=where
    )
    assert interp.Intervention.from_json(patch.to_json()) == patch
    edited = patch.apply(torch.zeros(2, 3, 4, 16))
    assert edited.sum() == 2 * 16 and edited[0, 1, 1].sum() == 16 and edited[1, 0, 1].sum() == 16
    torch.testing.assert_close(
        got.values, reference(model, *pair, "z", "position_head", positions=named), atol=1e-5, rtol=0
    )


def test_a_sweep_takes_few_forward_passes(model, pair):
    kinds = ("resid_pre", "attn_out", "mlp_out", "z")
    full = patching.patching_sweep(model, *pair, METRIC, kinds, prefix_reuse=False)
    sites = sum(r.values.numel() for r in full.values())
    first = next(iter(full.values()))
    assert sites == 3 * 2 * N_POS + 2 * 4 and first.meta["intervention_sets"] == sites
    assert first.meta["forward_passes"] <= 3  # 2 baselines + 1 batched pass for all 56 patches
    # by default the per-position kinds reuse prefixes and z runs in full: same numbers, few passes
    mixed = patching.patching_sweep(model, *pair, METRIC, kinds)
    for kind in kinds:  # two code paths (prefix reuse vs full runs): equal up to float32 rounding
        torch.testing.assert_close(mixed[kind].values, full[kind].values, atol=1e-4, rtol=0)
    assert mixed["z"].meta["forward_passes"] <= 2 + 3 + 3


def test_patching_properties(model, pair):
    # whole residual stream at any layer: denoising restores clean exactly, noising gives corrupted
    whole = patching.activation_patching(model, *pair, METRIC, "resid_pre", per="layer")
    torch.testing.assert_close(whole.values, torch.ones(2), atol=1e-4, rtol=0)
    noised = patching.activation_patching(model, *pair, METRIC, "resid_pre", per="layer", mode="noise")
    torch.testing.assert_close(noised.values, torch.zeros(2), atol=1e-4, rtol=0)
    # layer 0: only the differing position carries the difference
    res = patching.activation_patching(model, *pair, METRIC, "resid_pre")
    expected = torch.zeros(N_POS)
    expected[CORRUPT_AT] = 1.0
    torch.testing.assert_close(res.values[0], expected, atol=1e-4, rtol=0)
    back = patching.activation_patching(model, *pair, METRIC, "resid_pre", mode="noise")
    torch.testing.assert_close(back.values[0], 1.0 - expected, atol=1e-4, rtol=0)
    # positions before the corruption carry nothing at any layer (causal attention)
    torch.testing.assert_close(res.values[:, :CORRUPT_AT], torch.zeros(2, CORRUPT_AT), atol=1e-5, rtol=0)
    assert res.meta["mode"] == "denoise" and res.meta["metric_clean"] != res.meta["metric_corrupted"]
    # the last layer's attn_out + mlp_out (per position, all layers summed) add up to resid_post at the end
    assert res.labels["position"][0].startswith("0 ")


def test_metrics():
    logits = torch.randn(3, 5, 11)
    ref = logits[:, 4].log_softmax(-1)
    torch.testing.assert_close(patching.kl_div(logits, 4)(logits), torch.tensor(0.0), atol=1e-6, rtol=0)
    assert float(patching.kl_div(logits, 4)(torch.zeros_like(logits))) == pytest.approx(
        float((ref.exp() * (ref + torch.log(torch.tensor(11.0)))).sum(-1).mean()), abs=1e-5
    )
    pos = torch.tensor([4, 2, 0])
    diff = patching.logit_diff(torch.tensor([1, 2, 3]), 0, pos)(logits)
    expected = torch.stack(
        [logits[i, p, a] - logits[i, p, 0] for i, (p, a) in enumerate(zip(pos, [1, 2, 3], strict=True))]
    ).mean()
    torch.testing.assert_close(diff, expected)
    assert float(patching.prob(3, -1)(logits)) == pytest.approx(float(logits[:, -1].softmax(-1)[:, 3].mean()))
    torch.testing.assert_close(
        patching.normalise(torch.tensor([2.0, 4.0]), 4.0, 2.0), torch.tensor([0.0, 1.0])
    )


def test_bad_input_is_refused(model, pair):
    clean, corrupted = pair
    with pytest.raises(InterpError, match="same shape"):
        patching.activation_patching(model, clean, corrupted[:, :-1], METRIC)
    with pytest.raises(InterpError, match="scalar"):
        patching.activation_patching(model, clean, corrupted, lambda logits: logits[:, -1, 0])
    with pytest.raises(InterpError, match="out of range"):
        patching.activation_patching(model, clean, corrupted, METRIC, positions=[0, N_POS])
    with pytest.raises(InterpError, match="out of range"):
        patching.activation_patching(model, clean, corrupted, METRIC, positions={"END": torch.tensor([9, 1])})
    with pytest.raises(InterpError, match="layer 5"):
        patching.activation_patching(model, clean, corrupted, METRIC, layers=[5])
    with pytest.raises(InterpError, match="unknown hook kind"):
        patching.activation_patching(model, clean, corrupted, METRIC, "resid_pr")
    with pytest.raises(InterpError, match="per-head"):
        patching.activation_patching(model, clean, corrupted, METRIC, "resid_pre", per="head")
    with pytest.raises(InterpError, match="mode"):
        patching.activation_patching(model, clean, corrupted, METRIC, mode="restore")
    with pytest.raises(InterpError, match="both clean and corrupted"):
        patching.activation_patching(model, clean, clean, METRIC)
    assert model.hooks_installed() == 0


# -- TransformerLens -----------------------------------------------------------------------------
def tl_model(hf_model):
    return transformer_lens_gpt2(hf_model)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (("resid_pre", "position"), "get_act_patch_resid_pre"),
        (("resid_mid", "position"), "get_act_patch_resid_mid"),
        (("attn_out", "position"), "get_act_patch_attn_out"),
        (("mlp_out", "position"), "get_act_patch_mlp_out"),
        (("z", "head"), "get_act_patch_attn_head_out_all_pos"),
        (("v", "head"), "get_act_patch_attn_head_v_all_pos"),
        (("pattern", "head"), "get_act_patch_attn_head_pattern_all_pos"),
        (("z", "position_head"), "get_act_patch_attn_head_out_by_pos"),
    ],
)
def test_agrees_with_transformer_lens(model, pair, ours, theirs):
    tl_patching = pytest.importorskip("transformer_lens.patching")
    tl = tl_model(model.hf_model)
    clean, corrupted = pair
    with torch.no_grad():
        _, clean_cache = tl.run_with_cache(clean)
        expected = getattr(tl_patching, theirs)(tl, corrupted, clean_cache, METRIC)
    got = patching.activation_patching(model, clean, corrupted, METRIC, *ours, normalise_metric=False)
    torch.testing.assert_close(got.values, expected.float(), atol=1e-4, rtol=0)
