"""One AUROC: `circuits.stats.auroc` serves out-of-distribution prediction and circuit discovery."""

from __future__ import annotations

import pytest

import circuits.abstraction
from circuits import discovery, stats
from circuits.graph import Edge


def test_one_auroc_function():
    assert circuits.abstraction.auroc is stats.auroc
    assert not hasattr(discovery, "auroc")  # the circuit-level scores are edge_auroc / node_auroc


def test_edge_auroc_is_the_auroc_of_the_edge_scores():
    scores = {
        Edge.parse("embed->L0.H0"): 0.9,
        Edge.parse("embed->L0.H1"): -0.9,  # ties with the first under |score|
        Edge.parse("L0.H0->logits"): 0.2,
        Edge.parse("L0.H1->logits"): 0.5,
        Edge.parse("embed->logits"): 0.1,
    }
    truth = [("embed", "L0.H0"), ("embed", "logits")]
    true_pairs = {Edge.parse(f"{src}->{dst}").pair for src, dst in truth}
    labels = [edge.pair in true_pairs for edge in scores]
    expected = stats.auroc([abs(v) for v in scores.values()], labels)
    assert discovery.edge_auroc(scores, truth) == pytest.approx(expected)
    # true 0.9 beats negatives 0.2 and 0.5 and ties the other 0.9 (counts half); true 0.1 beats none
    assert expected == pytest.approx((2.5 + 0) / 6)
