"""The non-linear alignment map (`CouplingFlow`) against slow references: its context is never
modified, an interchange moves the base by psi(base's a) - psi(source's a) read with the base's
context, the coupling inputs are white on the data it was built from, and a DAS warm start makes
its swapped coordinates the given basis. Alignment maps train on the task's answer tokens only."""

from __future__ import annotations

import copy

import pytest
import torch

from circuits.abstraction import CouplingFlow, Rotation, SearchConfig, counterfactuals, high_level, train_map
from circuits.abstraction.handbuilt import hierarchical_equality_network
from interp.errors import InterpError
from interp.tasks.vocab import TOKEN_ID


def _sources(n: int = 400, width: int = 12, seed: int = 0) -> torch.Tensor:
    """Anisotropic data: spreads from 1 down to 1e-4, offset from the origin (like a random network's)."""
    g = torch.Generator().manual_seed(seed)
    spread = torch.logspace(0, -4, width)
    mix = torch.linalg.qr(torch.randn(width, width, generator=g))[0]
    return 3.0 + (torch.randn(n, width, generator=g) * spread) @ mix


def _randomise(flow: CouplingFlow, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.couplings.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def test_interchange_matches_the_closed_form_of_one_block():
    x = _sources()
    flow = CouplingFlow(12, k=2, hidden=8, blocks=1, seed=0, sources=x, moved=3)
    _randomise(flow)
    k, m = 2, 3
    base, source = x[:50], x[50:100]
    with torch.no_grad():
        out = flow.interchange(base, source)
        # slow reference in the rotated, standardised coordinates
        z = lambda v: ((v - flow.mean) / flow.scale) @ flow.rotation.T  # noqa: E731
        zb, zs = z(base), z(source)
        white = lambda v: (v[:, k:-m] - flow.context_mean) @ flow.context_w  # noqa: E731
        cb, cs = white(zb), white(zs)
        block = flow.couplings[0]
        phi = lambda c: flow.bound * flow.spread * torch.tanh(block.phi(c))  # noqa: E731
        psi = lambda a, c: block.psi(torch.cat([a / flow.spread, c], 1))  # noqa: E731
        a_b, a_s = zb[:, :k] + phi(cb), zs[:, :k] + phi(cs)  # the swapped coordinates after the block
        expected = zb.clone()
        expected[:, :k] = zs[:, :k] + phi(cs) - phi(cb)
        expected[:, -m:] = zb[:, -m:] + psi(a_b, cb) - psi(a_s, cb)  # read with the *base's* context
        expected = (expected @ flow.rotation) * flow.scale + flow.mean
        assert torch.allclose(out, expected, atol=1e-4)
        # the context coordinates of the result are the base's
        assert torch.allclose(z(out)[:, k:-m], zb[:, k:-m], atol=1e-4)
        # exact inverse, and interchanging a vector with itself changes nothing
        assert torch.allclose(flow.inverse(flow(x)), x, atol=1e-4)
        assert torch.allclose(flow.interchange(base, base), base, atol=1e-4)


def test_coupling_inputs_are_white_on_the_data():
    x = _sources(n=2000)
    flow = CouplingFlow(12, k=1, hidden=4, blocks=1, seed=3, sources=x, moved=2, floor=1e-6)
    z = ((x - flow.mean) / flow.scale) @ flow.rotation.T
    c = (z[:, 1:-2] - flow.context_mean) @ flow.context_w
    cov = c.T @ c / (len(c) - 1)
    assert torch.allclose(cov, torch.eye(9), atol=2e-3)
    assert torch.allclose(c.mean(0), torch.zeros(9), atol=1e-3)
    # with the default floor, directions under 1e-3 of the largest spread are not blown up
    floored = CouplingFlow(12, k=1, hidden=4, blocks=1, seed=3, sources=x, moved=2)
    spread = (((z[:, 1:-2] - floored.context_mean) @ floored.context_w).std(0)).sort().values
    assert spread[0] < 0.5 and spread[-1] == pytest.approx(1.0, abs=1e-3)
    assert flow.spread.item() == pytest.approx(z[:, 0].std().item(), rel=1e-4)


def test_warm_start_makes_the_basis_the_swapped_coordinates():
    x = _sources()
    das = Rotation(12, k=2, seed=5)
    basis = das.basis().detach()
    flow = CouplingFlow(12, k=2, hidden=8, blocks=2, seed=0, sources=x, basis=basis)
    r = flow.rotation
    assert torch.allclose(r[:2], basis, atol=1e-6)
    assert torch.allclose(r @ r.T, torch.eye(12), atol=1e-5)
    with torch.no_grad():
        for block in flow.couplings:
            block.psi[-1].weight.zero_()  # phi starts at zero; with psi at zero the flow is that DAS map
        assert torch.allclose(
            flow.interchange(x[:20], x[20:40]), das.interchange(x[:20], x[20:40]), atol=1e-4
        )
    with pytest.raises(InterpError, match="no context"):
        CouplingFlow(8, k=4, moved=4)


def test_maps_train_on_the_answer_tokens_only():
    """Logits of tokens that are not answers (here: names, in no prompt) do not change training at all."""
    tm = high_level("hierarchical_equality")
    net = hierarchical_equality_network(rotate=True, seed=7)
    other = copy.deepcopy(net.model)
    with torch.no_grad():
        for name in ("Mary", "John", "Alice"):
            other.hf_model.lm_head.weight[TOKEN_ID[name]].normal_(0, 50.0)
    data = counterfactuals(tm, ["left"], 128, seed=0)
    loc = net.locations["L"]
    for method in ("das", "nonlinear"):
        cfg = SearchConfig(method=method, steps=5, warm_start_steps=3, batch_size=32, hidden=8, lr=0.03)
        torch.manual_seed(0)
        a = train_map(net.model, data, "left", loc, cfg)
        torch.manual_seed(0)
        b = train_map(other, data, "left", loc, cfg)
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q), (method, name)
