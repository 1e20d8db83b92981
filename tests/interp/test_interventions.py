"""Interventions: selection, composition, JSON, gradients, errors, and hook hygiene."""

from __future__ import annotations

import pytest
import torch

import interp
from interp import Ablate, Add, Intervention, Patch, Project, Scale
from interp.attention import PATTERN_HOOKS_ATTR
from interp.hook_points import is_toolkit_hook
from tests.tiny_models import VOCAB, make


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.HookedModel(make("gpt2"))


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))


def edited(model, tokens, interventions, hook):
    """The activation at `hook` as the forward pass saw it, after `interventions` were applied."""
    seen = {}
    hooks = [(iv.hook, iv.apply) for iv in interventions] + [
        (hook, lambda t: seen.setdefault("v", t.detach()))
    ]
    installation = model._install(hooks, read_only=False)  # hooks at one site run in list order
    try:
        model(tokens)
    finally:
        installation.remove()
    return seen["v"]


ALL = [
    Patch("blocks.0.hook_resid_post", value=torch.ones(2, 8, 64), positions=(1, 2)),
    Ablate("blocks.1.attn.hook_z", heads=(0, 2)),
    Ablate("blocks.0.hook_mlp_out", kind="mean", positions=(0,)),
    Ablate("blocks.0.hook_mlp_out", kind="resample", seed=3, reference=torch.randn(5, 8, 64)),
    Add("blocks.1.hook_resid_pre", vector=torch.randn(64), coeff=2.5),
    Scale("blocks.0.attn.hook_pattern", factor=0.0, heads=(1,)),
    Project("blocks.1.hook_resid_mid", basis=torch.randn(3, 64), keep=True),
]


@pytest.mark.parametrize("iv", ALL, ids=lambda iv: type(iv).__name__)
def test_json_round_trip(iv: Intervention):
    back = Intervention.from_json(iv.to_json())
    assert back == iv and type(back) is type(iv)
    assert back.to_json() == iv.to_json()


def test_selection_touches_only_selected(model, tokens):
    _, cache = model.run_with_cache(tokens, names="blocks.1.attn.hook_z")
    z = cache["blocks.1.attn.hook_z"]
    after = edited(
        model, tokens, [Ablate("blocks.1.attn.hook_z", heads=(1,), positions=(2, 5))], "blocks.1.attn.hook_z"
    )
    assert torch.all(after[:, [2, 5], 1] == 0)
    keep = torch.ones_like(z, dtype=torch.bool)
    keep[:, [2, 5], 1] = False
    assert torch.equal(after[keep], z[keep])


def test_composition_applies_in_order(model, tokens):
    hook = "blocks.0.hook_resid_post"
    _, cache = model.run_with_cache(tokens, names=hook)
    vector = torch.randn(64)
    after = edited(model, tokens, [Scale(hook, factor=2.0), Add(hook, vector=vector)], hook)
    torch.testing.assert_close(after, cache[hook] * 2 + vector)


def test_project_remove_and_keep_split_the_activation(model, tokens):
    hook = "blocks.0.hook_resid_post"
    _, cache = model.run_with_cache(tokens, names=hook)
    basis = torch.randn(4, 64)
    kept = edited(model, tokens, [Project(hook, basis=basis, keep=True)], hook)
    removed = edited(model, tokens, [Project(hook, basis=basis)], hook)
    torch.testing.assert_close(kept + removed, cache[hook], atol=1e-5, rtol=1e-5)
    assert (removed @ basis.T).abs().max() < 1e-4


def test_mean_and_resample_ablation(model, tokens):
    hook = "blocks.0.hook_mlp_out"
    _, cache = model.run_with_cache(tokens, names=hook)
    mean = edited(model, tokens, [Ablate(hook, kind="mean")], hook)
    torch.testing.assert_close(mean, cache[hook].mean(0, keepdim=True).expand_as(mean))
    resampled = edited(model, tokens, [Ablate(hook, kind="resample")], hook)
    assert torch.equal(resampled, cache[hook].flip(0))  # batch of 2: the only derangement


def test_gradients_flow_through_hooks(model, tokens):
    hook = "blocks.0.hook_resid_post"
    delta = torch.zeros(64, requires_grad=True)
    logits = model.run_with_interventions(tokens, [Add(hook, vector=delta)])
    logits[:, -1, 0].sum().backward()
    assert delta.grad is not None and delta.grad.abs().sum() > 0
    _, cache = model.run_with_cache(tokens, names=hook, grad=True)
    assert cache[hook].requires_grad


def test_hooks_removed_after_many_exceptions(model, tokens):
    def explode(t, name):
        raise RuntimeError("boom")

    for i in range(1000):
        hook = model.hook_names()[i % len(model.hook_names())]
        with pytest.raises(RuntimeError, match="boom"), model.hooks({hook: explode}):
            model(tokens)
    assert model.hooks_installed() == 0
    assert model.hf_model.config._attn_implementation == "eager"
    assert torch.equal(model(tokens), model.hf_model(tokens, use_cache=False).logits)  # same kernels: bitwise


def test_pattern_hook_restores_sdpa():
    model = interp.HookedModel(make("gpt2", attn="sdpa"))
    tokens = torch.randint(0, VOCAB, (2, 8))
    _, cache = model.run_with_cache(tokens, names="blocks.*.attn.hook_pattern")
    assert model.hf_model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(cache["blocks.0.attn.hook_pattern"].sum(-1), torch.ones(2, 4, 8))
    with pytest.raises(ZeroDivisionError), model.hooks({"blocks.0.attn.hook_pattern": lambda t, n: 1 / 0}):
        model(tokens)
    assert model.hf_model.config._attn_implementation == "sdpa"


def test_installation_sites_carry_one_hook_each(model, tokens):
    installation = model._install([(n, lambda t: None) for n in model.hook_names()], read_only=True)
    try:
        sites = installation.sites
        assert len(set(sites)) == len(sites)
        for site in sites:
            module = model.module(site.path)
            hooks = module._forward_pre_hooks if site.io == "in" else module._forward_hooks
            assert sum(is_toolkit_hook(h) for h in hooks.values()) == 1, site
        # plus one pattern hook per block, kept in the attention function
        assert model.hooks_installed() == len(sites) + model.cfg.n_layers
    finally:
        installation.remove()
    assert model.hooks_installed() == 0


def test_nested_pattern_hooks_stack_and_unwind():
    model = interp.HookedModel(make("gpt2", attn="sdpa"))
    tokens = torch.randint(0, VOCAB, (1, 6))
    attn = model.module(model.arch.attn, layer=0)
    seen = []
    outer = {"blocks.0.attn.hook_pattern": lambda t, n: seen.append("outer")}
    inner = {"blocks.0.attn.hook_pattern": lambda t, n: seen.append("inner")}
    with model.hooks(outer):
        with model.hooks(inner):
            model(tokens)
            assert len(attn.__dict__[PATTERN_HOOKS_ATTR]) == 2
        model(tokens)
        assert len(attn.__dict__[PATTERN_HOOKS_ATTR]) == 1
    assert PATTERN_HOOKS_ATTR not in attn.__dict__
    assert seen == ["outer", "inner", "outer"]  # the enclosing block's hook runs first
    assert model.hf_model.config._attn_implementation == "sdpa"
    assert model.hooks_installed() == 0


def test_unknown_hook_lists_closest(model, tokens):
    with pytest.raises(interp.HookNameError, match="closest: blocks.0.hook_resid_post"):
        model.run_with_cache(tokens, names="blocks.0.hook_resid_pots")
    with pytest.raises(interp.HookNameError, match="no hook matches"):
        model.run_with_cache(tokens, names="blocks.*.hook_nothing")
    assert model.hooks_installed() == 0


def test_wrong_patch_shape_names_hook_and_shapes(model, tokens):
    bad = Patch("blocks.1.hook_attn_out", value=torch.zeros(2, 8, 63))
    with pytest.raises(interp.ShapeError, match=r"blocks.1.hook_attn_out.*\(2, 8, 63\).*\(2, 8, 64\)"):
        model.run_with_interventions(tokens, [bad])
    with (
        pytest.raises(interp.ShapeError, match="blocks.0.hook_mlp_out"),
        model.hooks({"blocks.0.hook_mlp_out": lambda t, n: t[:, :3]}),
    ):
        model(tokens)
    assert model.hooks_installed() == 0


def test_head_index_out_of_range(model, tokens):
    with pytest.raises(interp.InterpError, match="head index 9 out of range.*4 heads"):
        model.run_with_interventions(tokens, [Ablate("blocks.0.attn.hook_z", heads=(9,))])
    with pytest.raises(interp.InterpError, match="heads= needs a per-head hook"):
        Ablate("blocks.0.hook_resid_pre", heads=(0,))
    with pytest.raises(interp.InterpError, match="position index 20 out of range"):
        model.run_with_interventions(tokens, [Ablate("blocks.0.hook_resid_pre", positions=(20,))])
    assert model.hooks_installed() == 0


def test_hook_the_architecture_lacks():
    model = interp.HookedModel(make("neox-parallel"))
    assert "blocks.0.hook_resid_mid" not in model.hook_names()
    with pytest.raises(interp.InterpError, match="no resid_mid"):
        model.run_with_interventions(torch.zeros(1, 4, dtype=torch.long), [Ablate("blocks.0.hook_resid_mid")])
    assert model.hooks_installed() == 0


def test_unsupported_architecture_error():
    import transformers as T

    t5 = T.T5ForConditionalGeneration(
        T.T5Config(num_layers=1, d_model=16, d_kv=4, num_heads=2, d_ff=32, vocab_size=20)
    )
    with pytest.raises(
        interp.InterpError, match="model_type='t5'.*families gpt2, .*llama.*interp.adapters.register"
    ):
        interp.HookedModel(t5)


@pytest.mark.parametrize("hook", ["blocks.1.attn.hook_z", "blocks.0.attn.hook_q", "blocks.0.mlp.hook_post"])
def test_broadcast_replacements_feed_modules_that_view_their_input(model, tokens, hook):
    """Mean ablation returns an expanded tensor; the modules after the hook must still accept it."""
    logits = model.run_with_interventions(tokens, [Ablate(hook, kind="mean")])
    assert torch.isfinite(logits).all()
