"""Alignment search on the rotated hand-set network, where `left` is one known direction of the
residual stream: DAS, Boundless DAS and the non-linear map find it; a random-init control does not;
the maps themselves are orthonormal / invertible; bad configurations fail clearly."""

from __future__ import annotations

import pytest
import torch

from circuits.abstraction import (
    Alignment,
    BoundlessRotation,
    CouplingFlow,
    Location,
    Rotation,
    SearchConfig,
    counterfactuals,
    high_level,
    iia,
    random_control,
    search,
    train_map,
)
from circuits.abstraction.das import evaluate_map
from circuits.abstraction.handbuilt import hierarchical_equality_network
from interp.errors import InterpError

TM = high_level("hierarchical_equality")
FAST = dict(steps=80, n_train=256, n_test=256, lr=0.03, batch_size=64)


@pytest.fixture(scope="module")
def net():
    return hierarchical_equality_network(rotate=True, seed=7)


@pytest.fixture(scope="module")
def data():
    return counterfactuals(TM, ["left"], 384, seed=0), counterfactuals(TM, ["left"], 256, seed=1)


def test_das_recovers_the_rotated_direction(net, data):
    train, test = data
    loc = net.locations["L"]
    amap = train_map(net.model, train, "left", loc, SearchConfig(**FAST))
    assert evaluate_map(net.model, test, "left", loc, amap) >= 0.95
    # the learned direction, restricted to what MLP1 reads (L and R), is L's direction
    u = amap.basis()[0].detach()
    read = torch.stack([net.directions["L"], net.directions["R"]])  # [2, d_model], orthonormal rows
    coords = read @ u
    assert abs(coords[0]) / coords.norm() > 0.95
    # and it is a real alignment: the same subspace as a fixed basis gives the same IIA
    assert iia(net.model, test, Alignment("left", loc, amap.basis().detach())) >= 0.95
    # no single residual axis carries the variable in the rotated network
    axes = torch.eye(64)[net.directions["L"].abs().topk(3).indices]
    assert max(iia(net.model, test, Alignment("left", loc, axis[None])) for axis in axes) < 0.9


def test_search_reports_the_random_control_and_gap(net):
    cfg = SearchConfig(method="das", **FAST)
    result = search(
        net.model, TM, "left", [net.locations["L"], Location("blocks.0.hook_resid_post", "X")], cfg
    )
    best = result.best()
    assert best["location"] == str(net.locations["L"])
    assert best["iia"] >= 0.95 and best["control_iia"] < 0.7 and best["gap"] > 0.3
    assert result.iia[1] < 0.7  # nothing about `left` at X can reach the output
    payload = result.to_dict()
    assert payload["best"] == best and len(payload["locations"]) == 2 and payload["map_parameters"] == 64


def test_boundless_learns_a_small_subspace(net, data):
    train, test = data
    loc = net.locations["L"]
    amap = train_map(net.model, train, "left", loc, SearchConfig(method="boundless", subspace=8, **FAST))
    assert isinstance(amap, BoundlessRotation) and amap.hard
    assert evaluate_map(net.model, test, "left", loc, amap) >= 0.95
    assert 1 <= amap.size() <= 8


def test_nonlinear_map_is_invertible_and_aligns(net, data):
    flow = CouplingFlow(16, k=2, hidden=8, blocks=3, seed=0)
    with torch.no_grad():
        for p in flow.couplings.parameters():
            p.normal_(0, 0.5)  # non-trivial couplings (they start at zero)
        x = torch.randn(5, 16)
        assert torch.allclose(flow.inverse(flow(x)), x, atol=1e-5)
        # interchanging a vector with itself is the identity
        assert torch.allclose(flow.interchange(x, x), x, atol=1e-5)
    train, test = data
    amap = train_map(
        net.model, train, "left", net.locations["L"], SearchConfig(method="nonlinear", hidden=16, **FAST)
    )
    assert evaluate_map(net.model, test, "left", net.locations["L"], amap) >= 0.95


def test_rotation_stays_orthonormal_and_the_model_untouched(net, data):
    before = [p.detach().clone() for p in net.model.hf_model.parameters()]
    amap = train_map(net.model, data[0], "left", net.locations["L"], SearchConfig(subspace=3, steps=10))
    assert isinstance(amap, Rotation)
    w = amap.basis().detach()
    assert torch.allclose(w @ w.T, torch.eye(3), atol=1e-5)
    after = list(net.model.hf_model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert all(p.requires_grad for p in after)
    assert net.model.hooks_installed() == 0


def test_random_control_has_same_config_and_fresh_weights(net):
    control = random_control(net.model, seed=0)
    assert control.cfg == net.model.cfg
    assert not torch.equal(control.hf_model.transformer.wte.weight, net.model.hf_model.transformer.wte.weight)
    again = random_control(net.model, seed=0)
    assert torch.equal(control.hf_model.transformer.wte.weight, again.hf_model.transformer.wte.weight)


def test_bad_search_inputs_raise_clear_errors(net, data):
    with pytest.raises(InterpError, match="method must be one of"):
        SearchConfig(method="magic")
    with pytest.raises(InterpError, match="larger than the activation width"):
        train_map(net.model, data[0], "left", net.locations["left"], SearchConfig(subspace=33, steps=1))
    with pytest.raises(InterpError, match="has no variable"):
        search(net.model, TM, "middle", [net.locations["L"]], SearchConfig(steps=1))
    with pytest.raises(InterpError, match="unknown hook|closest"):
        search(
            net.model,
            TM,
            "left",
            [Location("blocks.7.hook_resid_post", "END")],
            SearchConfig(steps=1, control=False),
        )
