"""Interchange interventions and IIA on a hand-set GPT-2 that computes hierarchical equality exactly:
1.0 where the variables are, chance elsewhere; the batched sweep against one-at-a-time IIA;
multi-source interventions; clear errors for bad alignments."""

from __future__ import annotations

import pytest
import torch

from circuits.abstraction import (
    Alignment,
    Interchange,
    Location,
    accuracy,
    counterfactuals,
    grid,
    high_level,
    iia,
    sweep,
)
from circuits.abstraction.handbuilt import hierarchical_equality_network
from circuits.abstraction.iia import predictions
from interp.errors import HookNameError, InterpError, ShapeError
from interp.tasks import get

TM = high_level("hierarchical_equality")


@pytest.fixture(scope="module", params=[False, True], ids=["axes", "rotated"])
def net(request):
    return hierarchical_equality_network(rotate=request.param, seed=1)


@pytest.fixture(scope="module")
def left_data():
    return counterfactuals(TM, ["left"], 256, seed=0)


def test_network_solves_the_task(net):
    batch = get("hierarchical_equality").generate(200, seed=5)
    assert batch.accuracy(net.model(batch.clean)) == 1.0


def test_iia_is_one_at_the_right_place_and_chance_elsewhere(net, left_data):
    m = net.model
    assert accuracy(m, left_data) == 1.0
    assert iia(m, left_data, Alignment("left", net.locations["left"])) == 1.0
    direction = net.directions["L"][None]
    assert iia(m, left_data, Alignment("left", net.locations["L"], direction / direction.norm())) == 1.0
    # the head that carries `right`, the residual stream at W, and MLP1's output at a symbol: chance
    for wrong in (
        net.locations["right"],
        Location("blocks.0.hook_resid_post", "W"),
        Location("blocks.1.hook_mlp_out", "X"),
    ):
        assert 0.3 < iia(m, left_data, Alignment("left", wrong)) < 0.7, wrong
    # patching the whole residual stream at END moves `right` too: far from 1
    assert iia(m, left_data, Alignment("left", Location("blocks.0.hook_resid_post", "END"))) < 0.7


def test_right_variable_and_multi_source(net):
    m = net.model
    data = counterfactuals(TM, ["left", "right"], 256, seed=2)
    both = [Alignment("left", net.locations["left"]), Alignment("right", net.locations["right"])]
    assert iia(m, data, both) == 1.0
    assert iia(m, data, both[1]) < 0.8  # only one of the two variables moved: labels disagree often
    # the two interchanges touch parallel sites: their order does not matter
    assert torch.equal(predictions(m, data, both), predictions(m, data, both[::-1]))
    swapped = [Alignment("left", net.locations["right"]), Alignment("right", net.locations["left"])]
    assert iia(m, data, swapped) < 0.7


def test_sweep_matches_one_at_a_time(net, left_data):
    m = net.model
    locs = grid(m, left_data, "attn.hook_z", positions=["X", "END"], heads=True)
    fast = sweep(m, left_data, "left", locs)
    slow = [iia(m, left_data, Alignment("left", loc)) for loc in locs]
    assert fast.iia == pytest.approx(tuple(slow))
    assert fast.best() == (net.locations["left"], 1.0)
    rows, cols, values = fast.grid()
    assert cols == ["X", "END"] and len(rows) == 4 and values[0][1] == 1.0
    assert {r["location"] for r in fast.table()} == {str(loc) for loc in locs}


def test_sweep_with_a_fixed_subspace(left_data):
    net = hierarchical_equality_network(rotate=True, seed=3)
    d = net.directions["L"]
    result = sweep(
        net.model,
        left_data,
        "left",
        [net.locations["L"], Location("blocks.0.hook_resid_post", "X")],
        basis=(d / d.norm())[None],
    )
    assert result.iia[0] == 1.0 and result.iia[1] < 0.7


def test_heatmap_is_written(tmp_path, left_data):
    net = hierarchical_equality_network()
    result = sweep(net.model, left_data, "left", grid(net.model, left_data, "hook_resid_post"))
    fig = result.plot(tmp_path / "iia.png")
    assert (tmp_path / "iia.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_location_labels_round_trip():
    for loc in (
        Location("blocks.0.attn.hook_z", "END", 1),
        Location("blocks.1.hook_resid_post", 3),
        Location("hook_embed", "W"),
    ):
        assert Location.parse(str(loc)) == loc
    with pytest.raises(InterpError, match="bad location"):
        Location.parse("no-position")


def test_interchange_is_an_intervention_that_round_trips():
    iv = Interchange(
        "blocks.0.hook_resid_post",
        source=torch.randn(2, 3, 4),
        where=torch.eye(2, 3).bool(),
        basis=torch.eye(4)[:1],
    )
    act = torch.zeros(2, 3, 4)
    out = iv.apply(act)
    assert (
        out[0, 0, 0] == iv.source[0, 0, 0] and out[0, 0, 1:].abs().sum() == 0 and out[0, 1].abs().sum() == 0
    )
    from interp.interventions import Intervention

    assert Intervention.from_json(iv.to_json()) == iv


def test_bad_alignments_raise_clear_errors(left_data):
    m = hierarchical_equality_network().model
    with pytest.raises(HookNameError, match="closest"):
        iia(m, left_data, Alignment("left", Location("blocks.0.hook_resid_psot", "END")))
    with pytest.raises(InterpError, match="larger than the width"):
        iia(
            m,
            left_data,
            Alignment("left", net_loc := Location("blocks.0.attn.hook_z", "END", 0), torch.eye(40, 32)),
        )
    with pytest.raises(ShapeError, match="width 32"):
        iia(m, left_data, Alignment("left", net_loc, torch.eye(1, 64)))
    with pytest.raises(InterpError, match="unknown position"):
        iia(m, left_data, Alignment("left", Location("blocks.0.hook_resid_post", "NOPE")))
    with pytest.raises(InterpError, match="no head dimension"):
        iia(m, left_data, Alignment("left", Location("blocks.0.hook_resid_post", "END", 0)))
    with pytest.raises(InterpError, match="head 9 out of range"):
        iia(m, left_data, Alignment("left", Location("blocks.0.attn.hook_z", "END", 9)))
    with pytest.raises(InterpError, match="no source for variable"):
        iia(m, left_data, Alignment("right", net_loc))
