"""(S)IIT training mechanics on a tiny GPT-2: the interchange and ablation hooks do what they say,
training updates the weights and leaves no hooks, bad alignments and configs fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuits.abstraction import IITConfig, Location, high_level, train_iit
from circuits.abstraction.iit import _ablated, _replace, non_circuit
from interp.errors import InterpError
from interp.hooked import HookedModel
from interp.tasks import tokenizer
from interp.tasks.vocab import VOCAB
from interp.zoo.recipes import Recipe
from interp.zoo.train import build_model


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    r = Recipe(
        name="t", task="greater_than", description="", n_layer=2, d_model=32, n_head=4, d_mlp=64, n_ctx=16
    )
    return HookedModel(build_model(r, len(VOCAB)), tokenizer())


def test_replace_hooks_move_exactly_the_chosen_slice():
    act, source = torch.zeros(2, 5, 4, 3), torch.ones(2, 5, 4, 3)
    head = Location("blocks.0.attn.hook_z", "END", head=1)
    out = _replace(head, torch.tensor([4, 2]), torch.tensor([1, 3]), source)(act, "x")
    assert out.sum() == 2 * 3 and out[0, 4, 1].eq(1).all() and out[1, 2, 1].eq(1).all()
    everywhere = _replace(head, None, None, source)(act, "x")
    assert everywhere[:, :, 1].eq(1).all() and everywhere[:, :, [0, 2, 3]].eq(0).all()
    mlp = Location("blocks.0.hook_mlp_out", "END")
    assert _replace(mlp, None, None, source[..., 0])(act[..., 0], "x").eq(1).all()


def test_non_circuit_nodes_and_their_sampling(tiny):
    outside = non_circuit(tiny, ["L0.H1", "MLP0"])
    assert len(outside) == 2 * 4 + 2 - 2
    assert Location("blocks.0.attn.hook_z", "END", 1) not in outside
    rng = np.random.default_rng(0)
    assert _ablated(outside, rng, IITConfig(ablate_all=1.0)) == outside
    picks = [_ablated(outside, rng, IITConfig(ablate_prob=0.01, ablate_all=0.0)) for _ in range(20)]
    assert all(len(p) >= 1 for p in picks)


def test_training_updates_weights_and_cleans_up(tiny):
    before = [p.detach().clone() for p in tiny.hf_model.parameters()]
    cfg = IITConfig(steps=4, batch_size=8, pool=64, ramp=0.0)
    stats = train_iit(
        tiny, high_level("greater_than"), {"year": "L0.H1", "threshold": "MLP0"}, cfg, progress=False
    )
    assert {"train_seconds", "loss_behavior", "loss_iit", "loss_siit"} <= set(stats)
    assert all(np.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, tiny.hf_model.parameters(), strict=True))
    assert tiny.hooks_installed() == 0 and not tiny.hf_model.training
    plain = train_iit(
        tiny,
        high_level("greater_than"),
        {"year": "L0.H1"},
        IITConfig(steps=2, batch_size=4, pool=16, strict_weight=0.0),
        progress=False,
    )
    assert "loss_siit" not in plain


def test_variables_at_their_own_positions_with_auxiliary_supervision(tiny):
    tm = high_level("hierarchical_equality")
    alignment = {"left": "MLP0@X", "right": "MLP0@Z", "output": "MLP1"}
    cfg = IITConfig(steps=3, batch_size=8, pool=32, ramp=0.0, supervise=("left", "right"))
    stats = train_iit(
        tiny, tm, alignment, cfg, circuit_nodes=["L0.H3", "MLP0", "L1.H0", "MLP1"], progress=False
    )
    assert np.isfinite(stats["loss_behavior"]) and np.isfinite(stats["loss_siit"])
    with pytest.raises(InterpError, match="no aligned node"):
        train_iit(tiny, tm, {"output": "MLP1"}, IITConfig(steps=1, batch_size=4, pool=8, supervise=("left",)))


def test_bad_alignments_and_configs(tiny):
    with pytest.raises(InterpError, match="not a non-input variable"):
        train_iit(tiny, high_level("greater_than"), {"yy": "L0.H1"}, IITConfig(steps=1, batch_size=4, pool=8))
    with pytest.raises(InterpError, match="not a head"):
        train_iit(tiny, high_level("greater_than"), {"year": "H1"}, IITConfig(steps=1, batch_size=4, pool=8))
    with pytest.raises(InterpError, match="ablate_prob"):
        IITConfig(ablate_prob=0.0)
    with pytest.raises(InterpError, match="ramp"):
        IITConfig(ramp=1.0)
