"""ICaCE estimators on a hand-set model whose output depends on `food` only, through a known direction."""

from __future__ import annotations

import pytest
import torch

from circuits.concepts import registry
from circuits.concepts.data import all_edits, check_model, output_dist, true_icace
from circuits.concepts.explain import ExplainConfig, explain
from circuits.concepts.handset import handset_model
from circuits.concepts.methods.common import class_means, site_acts, subspace_estimate
from circuits.concepts.scoring import direction_agreement, metrics, order_faithfulness
from interp.errors import InterpError
from interp.tasks.concepts import Concepts

HOOK = "blocks.0.hook_resid_post"
FAST = {  # the trained explainers, short enough for the test suite
    "causalm": registry.get("causalm").config(steps=40),
    "cpm": registry.get("cpm").config(steps=40, n_sources=2),
}


@pytest.fixture(scope="module")
def setup():
    model, w = handset_model("food")
    task = Concepts()
    return model, w, task.sample(1000, seed=11), task.sample(30, seed=12)


def test_handset_model_reads_only_food(setup):
    model, _, _, test = setup
    edits = all_edits(test)
    true = true_icace(model, edits)  # [edit, label]
    assert true[edits.mask("food")].norm(dim=-1).mean() > 0.2
    for concept in ("service", "price", "ambiance"):
        assert true[edits.mask(concept)].abs().max() < 1e-6
    assert torch.allclose(true.sum(-1), torch.zeros(len(edits)), atol=1e-6)


def test_erasing_the_known_direction_gives_the_exact_icace(setup):
    model, w, train, test = setup
    edits = all_edits(test, ("food",))
    acts = site_acts(model, train.tokens, HOOK)  # [n, d_model]
    means = class_means(acts, train.values[:, 0], 3)
    estimate = subspace_estimate(model, edits, HOOK, torch.outer(w, w), means)
    assert torch.allclose(estimate, true_icace(model, edits), atol=1e-5)


@pytest.mark.parametrize("name", ["inlp", "leace", "steering", "matched"])
def test_learned_linear_methods_recover_the_exact_icace(setup, name):
    model, _, train, test = setup
    edits = all_edits(test, ("food",))
    method = registry.get(name)
    estimate = method.estimate(model, edits, train, method.config())
    assert torch.allclose(estimate, true_icace(model, edits), atol=1e-4)


@pytest.mark.parametrize("name", registry.names())
def test_every_method_is_near_zero_on_an_ignored_concept(setup, name):
    model, _, train, test = setup
    edits = all_edits(test, ("service",))
    method = registry.get(name)
    estimate = method.estimate(model, edits, train, FAST.get(name, method.config()))
    assert estimate.shape == (len(edits), 3)
    assert estimate.norm(dim=-1).mean() < 0.05  # true effect: exactly 0; food's is ~0.33


def test_scores_on_known_inputs():
    true = torch.tensor([[0.5, 0.0, -0.5], [-0.2, 0.1, 0.1], [0.0, 0.3, -0.3]])
    assert order_faithfulness(true, true) == 1.0 and direction_agreement(true, true) == 1.0
    assert order_faithfulness(-true, true) == 0.0 and direction_agreement(-true, true) == 0.0
    assert direction_agreement(true, torch.zeros_like(true)) is None  # nothing to agree with
    edits = all_edits(Concepts().sample(1, seed=0), ("food",))  # two edits of one example
    m = metrics(2 * true[:2], true[:2], edits)
    assert m["icace_error"] == pytest.approx(true[:2].norm(dim=-1).mean().item())
    assert m["icace_error_normdiff"] == pytest.approx(m["icace_error"]) and m[
        "icace_error_cosine"
    ] == pytest.approx(0.0, abs=1e-6)
    assert set(m["per_concept"]) == {"food"}


def test_explain_report(setup, tmp_path):
    model, _, train, test = setup
    report = explain(
        model, ExplainConfig(methods=("leace", "matched"), concepts=("food", "price")), train=train, test=test
    )
    result = report.to_dict()
    assert set(result["methods"]) == {"leace", "matched"}
    assert result["methods"]["leace"]["per_concept"]["food"]["icace_error"] < 1e-4
    assert result["methods"]["leace"]["per_concept"]["food"]["direction_agreement"] == 1.0
    assert result["true_effect"]["price"] == pytest.approx(0.0, abs=1e-6)
    assert {row["concept"] for row in report.table()} == {"food", "price"}
    assert report.plot(tmp_path / "concepts.png").stat().st_size > 0


def test_bad_input_raises_clear_errors(setup):
    model, _, train, test = setup
    edits = all_edits(test, ("food",))
    with pytest.raises(InterpError, match="unknown concept-explanation method 'leaes'.*did you mean leace"):
        registry.get("leaes")
    with pytest.raises(InterpError, match="no concept 'taste'"):
        ExplainConfig(concepts=("taste",))
    with pytest.raises(InterpError, match="needs the hook 'blocks.3.hook_resid_post'"):
        registry.get("leace").estimate(
            model, edits, train, registry.get("leace").config(hook="blocks.3.hook_resid_post")
        )
    for name in registry.names():
        method = registry.get(name)
        if method.needs_train:
            with pytest.raises(InterpError, match="needs training data|pass train="):
                method.estimate(model, edits, None, method.config())
    with pytest.raises(InterpError, match="no concept annotations"):
        explain(model, ExplainConfig(methods=("leace",)), task="ioi")
    from transformers import GPT2Config, GPT2LMHeadModel

    import interp

    small = interp.HookedModel(GPT2LMHeadModel(GPT2Config(vocab_size=50, n_layer=1, n_embd=16, n_head=1)))
    with pytest.raises(InterpError, match="vocabulary"):
        check_model(small, test)
    assert output_dist(model, test.tokens[:2], Concepts.label_ids).shape == (2, 3)
