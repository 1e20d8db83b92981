"""Attribution graphs: the replacement model is exact, edges equal patching in the frozen model, batched
equals one-target-at-a-time, pruning keeps what it promises, a hand-set model's paths are recovered."""

from __future__ import annotations

import random

import pytest
import torch

import interp
from circuits.attribution.graph import attribute
from circuits.attribution.pruning import node_influence, prune, scores
from circuits.attribution.replacement import ReplacementModel
from tests.circuits.attribution_helpers import (
    N_LAYER1_FEATURES,
    PROMPT,
    handset_model,
    handset_transcoders,
    known_map,
    trained_set,
)


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.load("shakespeare-tiny")


@pytest.fixture(
    scope="module", params=[("topk", False), ("jumprelu", True)], ids=["per_layer_topk", "clt_jumprelu"]
)
def rm(request, model) -> ReplacementModel:
    arch, cross = request.param
    tset = trained_set(model, arch, cross)
    assert tset.kind == ("cross_layer" if cross else "per_layer")
    return ReplacementModel(model, tset)


@pytest.fixture(scope="module")
def traced(rm):
    return rm.trace(rm.tokens(PROMPT)), attribute(rm, PROMPT, batch_size=48)


def test_replacement_reproduces_logits(rm, traced):
    snap, _ = traced
    assert (rm.replacement_logits(snap) - snap.logits).abs().max() < 1e-4
    # the errors are real: without them the logits move
    mlp = rm.mlp_sources(snap, errors={lyr: torch.zeros_like(e) for lyr, e in snap.errors.items()})
    logits, _ = rm.linear_run(snap, mlp)
    assert (logits - snap.logits).abs().max() > 1e-2


def _targets(rm, graph, mids, logits) -> torch.Tensor:
    """Every target's value in the linear model: feature pre-activations (without bias) and demeaned logits."""
    pre = [mids[lyr][p] @ rm.tc.encoder_directions(lyr)[:, i] for lyr, p, i in graph.features.tolist()]
    last = logits[0, -1]
    return torch.stack(pre + [last[t] - last.mean() for t in graph.logit_tokens])


def test_edges_equal_patching_in_the_frozen_model(rm, traced):
    snap, graph = traced
    rows = list(range(graph.n_features)) + list(range(graph.slices()["logits"].start, graph.n_nodes))
    logits, mids = rm.linear_run(snap, rm.mlp_sources(snap))
    base = _targets(rm, graph, mids, logits)
    rng = random.Random(0)
    checked = 0
    for col in rng.sample(range(graph.n_features), 12):  # remove one feature
        lyr, p, i = graph.features[col].tolist()
        acts = {k: v.clone() for k, v in snap.acts.items()}
        acts[lyr][p, i] = 0
        logits, mids = rm.linear_run(snap, rm.mlp_sources(snap, acts=acts))
        torch.testing.assert_close(
            base - _targets(rm, graph, mids, logits), graph.adjacency[rows, col], atol=1e-3, rtol=0
        )
        checked += 1
    for lyr, p in ((0, 2), (1, graph.n_pos - 1)):  # remove one error node
        errors = {k: v.clone() for k, v in snap.errors.items()}
        errors[lyr][p] = 0
        logits, mids = rm.linear_run(snap, rm.mlp_sources(snap, errors=errors))
        col = graph.error_index(lyr, p)
        torch.testing.assert_close(
            base - _targets(rm, graph, mids, logits), graph.adjacency[rows, col], atol=1e-3, rtol=0
        )
    for p in (0, 5):  # remove one token embedding
        embed = snap.embed.clone()
        embed[p] = 0
        logits, mids = rm.linear_run(snap, rm.mlp_sources(snap), embed=embed)
        col = graph.embedding_index(p)
        torch.testing.assert_close(
            base - _targets(rm, graph, mids, logits), graph.adjacency[rows, col], atol=1e-3, rtol=0
        )
    assert checked == 12 and graph.adjacency.abs().max() > 0.1


def test_batched_rows_equal_one_target_at_a_time(rm):
    single, batched = attribute(rm, "To be, or", batch_size=1), attribute(rm, "To be, or", batch_size=64)
    torch.testing.assert_close(single.adjacency, batched.adjacency, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("fraction", [0.5, 0.8, 0.95])
def test_pruning_keeps_the_requested_influence(traced, fraction):
    _, graph = traced
    pruned = prune(graph, node_fraction=fraction, edge_fraction=0.9)
    feat = graph.slices()["features"]
    infl = node_influence(graph)[feat]
    kept = pruned.influence[feat] >= 0  # all nodes have non-negative influence
    assert bool(kept.all())
    assert pruned.kept_feature_influence >= fraction - 1e-6
    # minimal: dropping the least influential of the top-ranked prefix falls below the fraction
    order = infl.argsort(descending=True)
    cum = infl[order].cumsum(0) / infl.sum()
    n = int((cum < fraction).sum()) + 1
    assert float(cum[n - 2]) < fraction <= float(cum[n - 1]) + 1e-6
    assert pruned.kept_edge_score >= 0.9 - 1e-6
    # every kept edge joins kept nodes, and logits, errors and embeddings always stay
    t, s = pruned.edge_mask.nonzero(as_tuple=True)
    assert bool(pruned.node_mask[t].all() and pruned.node_mask[s].all())
    assert bool(pruned.node_mask[graph.n_features :].all())


def test_scores_are_fractions(traced):
    _, graph = traced
    out = scores(graph)
    assert 0 < out["replacement_score"] <= 1 and 0 < out["completeness_score"] <= 1


def _auroc(scores_: list[float], labels: list[bool]) -> float:
    pos = [s for s, y in zip(scores_, labels, strict=True) if y]
    neg = [s for s, y in zip(scores_, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_handset_model_recovers_the_known_edges():
    model, tset = handset_model(), handset_transcoders()
    rm = ReplacementModel(model, tset)
    tokens = torch.tensor([[3, 0, 5, 1, 7, 2, 6, 4, 3, 1]])
    graph = attribute(rm, tokens, batch_size=16)
    feats = graph.features.tolist()
    assert sorted((p, i) for lyr, p, i in feats if lyr == 0) == [(p, int(t)) for p, t in enumerate(tokens[0])]
    scores_, labels = [], []
    for t, (lt, pt, it) in enumerate(feats):
        for s, (ls, ps, is_) in enumerate(feats):
            if lt == 1 and ls == 0:
                scores_.append(abs(float(graph.adjacency[t, s])))
                labels.append(ps == pt and known_map(is_) == it)
    n_pos = tokens.shape[1]
    assert sum(labels) == n_pos and len(labels) == n_pos * n_pos * N_LAYER1_FEATURES
    assert _auroc(scores_, labels) == 1.0
    # the known edges carry exactly the source activation (1.0) through the residual stream
    known = [s for s, y in zip(scores_, labels, strict=True) if y]
    torch.testing.assert_close(torch.tensor(known), torch.ones(len(known)), atol=1e-4, rtol=0)
