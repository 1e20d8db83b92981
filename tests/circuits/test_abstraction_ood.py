"""OOD-correctness prediction: AUROC against a brute-force count, and the predictors' scores on the
hand-set network, whose behaviour under a shifted prompt is known exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from circuits.abstraction import Alignment, OODConfig, auroc, high_level, predict_ood
from circuits.abstraction.handbuilt import hierarchical_equality_network
from circuits.abstraction.ood import counterfactual_simulation, value_probing
from interp.errors import InterpError


def brute_force_auroc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        scores = rng.integers(0, 6, size=40).astype(float)  # many ties
        labels = rng.random(40) < 0.4
        assert auroc(scores, labels) == pytest.approx(brute_force_auroc(scores, labels))
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auroc([1, 2, 3], [0, 1, 1]) == 1.0 and auroc([3, 2, 1], [0, 1, 1]) == 0.0
    assert auroc([1, 1, 1], [0, 1, 1]) == 0.5
    assert np.isnan(auroc([1, 2], [1, 1]))
    with pytest.raises(InterpError, match="labels"):
        auroc([1, 2, 3], [1, 0])


@pytest.fixture(scope="module")
def setup():
    net = hierarchical_equality_network()
    tm = high_level("hierarchical_equality")
    d_left, d_right = net.directions["L"], net.directions["R"]
    loc = net.locations["L"]
    alignments = [
        Alignment("left", loc, (d_left / d_left.norm())[None]),
        Alignment("right", loc, (d_right / d_right.norm())[None]),
    ]
    rng = np.random.default_rng(4)
    settings = [tm.causal.sample_input(rng) for _ in range(120)]
    ids, positions = tm.encode_many(settings, shift=1, seed=9)
    return net, tm, alignments, settings, ids, positions


def _computed(tm, settings, ids):
    """What the network computes under a one-word prefix: its heads read fixed positions 1-2 and 3-4,
    i.e. (filler, W) and (X, Y)."""
    left = [int(ids[i, 1]) == int(ids[i, 2]) for i in range(len(settings))]
    right = [int(ids[i, 3]) == int(ids[i, 4]) for i in range(len(settings))]
    true = [tm.causal.run(s) for s in settings]
    return left, right, true


def test_counterfactual_simulation_scores_are_exact(setup):
    net, tm, alignments, settings, ids, positions = setup
    left, right, true = _computed(tm, settings, ids)
    cfg = OODConfig(shifts=(1,), n_references=3)
    scores = counterfactual_simulation(net.model, tm, alignments, settings, ids, positions, cfg)
    expected = torch.tensor(
        [
            (float(lv == t["left"]) + float(rv == t["right"])) / 2
            for lv, rv, t in zip(left, right, true, strict=True)
        ]
    )
    assert torch.allclose(scores, expected)
    probed = value_probing(
        net.model,
        tm,
        alignments,
        settings,
        ids,
        positions,
        OODConfig(shifts=(1,), n_probe=256, probe_steps=150),
    )
    assert torch.allclose(probed, expected, atol=0.1)


def test_predict_ood_labels_and_aurocs(setup):
    net, tm, alignments, *_ = setup
    # a filler word before Y: head 1 now compares (filler, Y), so `right` breaks and `left` does not;
    # the network is right exactly when the broken `right` happens to have its true value
    cfg = OODConfig(shifts=(1, 2), before="Y", n=160, n_references=2, n_probe=256, probe_steps=100)
    result = predict_ood(net.model, tm, alignments, cfg)
    assert 0.2 < result.accuracy < 0.8
    assert set(result.auroc) == {"counterfactual_simulation", "value_probing", "confidence"}
    for name, scores in result.scores.items():
        assert scores.shape == (160,)
        assert result.auroc[name] == pytest.approx(auroc(scores, result.correct))
    assert result.auroc["counterfactual_simulation"] == 1.0
    assert result.auroc["value_probing"] > 0.95
    # the hand-set network is always fully confident: the baseline cannot tell right from wrong
    assert result.auroc["confidence"] == 0.5
    assert result.to_dict()["n"] == 160
    with pytest.raises(InterpError, match="at least one alignment"):
        predict_ood(net.model, tm, [])
    with pytest.raises(InterpError, match="positive"):
        OODConfig(shifts=(0,))
