"""The DAS-subspace and SAE-feature ICaCE estimators on the hand-set model that reads `food` only, along w."""

from __future__ import annotations

import pytest
import torch

from circuits.concepts import registry
from circuits.concepts.data import all_edits, true_icace
from circuits.concepts.handset import handset_model
from circuits.concepts.methods import das, sae
from circuits.concepts.methods.common import site_acts
from interp.errors import InterpError
from interp.tasks.concepts import Concepts

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def setup():
    model, w = handset_model("food")
    task = Concepts()
    train, test = task.sample(1000, seed=11), task.sample(30, seed=12)
    edits = all_edits(test, ("food", "service"))
    return model, w, train, edits, true_icace(model, edits)


def test_das_finds_the_known_direction_and_its_effect(setup):
    model, w, train, edits, true = setup
    basis, kl = das.fit_subspace(model, train, "food", HOOK, das.Config())
    assert basis.shape == (1, 16) and abs(float(basis[0] @ w)) > 0.95  # the model reads food along w only
    assert kl < 0.01
    food = edits.mask("food")
    shift = das.estimate(model, edits, train, das.Config())
    assert shift[~food].norm(dim=-1).max() < 1e-4  # service: the model ignores it
    put = das.estimate(model, edits.subset(food), train, das.Config(intervention="set"))
    for estimate in (shift[food], put):
        assert (estimate - true[food]).norm(dim=-1).mean() < 0.05 < true[food].norm(dim=-1).mean()  # ~0.28
        assert (estimate * true[food]).sum(-1).gt(0).all()  # every edit moves the output the right way


def test_sae_features_that_track_food(setup, tmp_path):
    model, _, train, edits, true = setup
    x = site_acts(model, train.tokens, HOOK)
    trained = sae.fit_sae(x, HOOK, sae.Config())
    z = trained.encode(x)
    _, food_eta2 = sae.concept_features(z, train.values[:, 0], 3, 1)
    _, service_eta2 = sae.concept_features(z, train.values[:, 1], 3, 1)
    assert food_eta2.item() > 0.99 and service_eta2.item() < 0.05  # the site varies with food only
    # Through every feature, shifting the SAE's class-mean codes reproduces food's exact effect.
    food = edits.mask("food")
    everything = sae.estimate(model, edits, train, sae.Config(n_features=10_000))
    assert torch.allclose(everything[food], true[food], atol=2e-3)
    one = sae.estimate(model, edits, train, sae.Config())  # one feature carries only part of it
    assert one[edits.mask("service")].norm(dim=-1).max() < 1e-3
    trained.save(tmp_path / "sae")  # a saved SAE gives the same estimate as the one trained in place
    loaded = sae.estimate(model, edits, train, sae.Config(sae=str(tmp_path / "sae")))
    assert torch.allclose(loaded, one, atol=1e-5)


def test_correlation_ratio_on_known_input():
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    z = torch.stack([y.float(), torch.tensor([1.0, -1, 1, -1, 1, -1]), torch.ones(6)], 1)  # [n, 3]
    assert sae.correlation_ratio(z, y, 3).tolist() == pytest.approx([1.0, 0.0, 0.0])
    top, eta2 = sae.concept_features(z, y, 3, 1)
    assert top.tolist() == [0] and eta2.item() == pytest.approx(1.0)


def test_bad_options_raise_clear_errors(setup):
    model, _, train, edits, _ = setup
    with pytest.raises(InterpError, match="intervention must be one of shift, set"):
        das.Config(intervention="swap")
    with pytest.raises(InterpError, match="intervention must be one of shift, set"):
        sae.Config(intervention="erase")
    with pytest.raises(InterpError, match="does not fit in d_model 16"):
        das.fit_subspace(model, train, "food", HOOK, das.Config(subspace=17))
    assert {"das", "sae"} <= set(registry.names())
