"""Influence, pruning, and the graph's replacement and completeness scores.

Following "Circuit Tracing" (Ameisen et al. 2025):

1. Normalise: take |adjacency| and scale each row (target) to sum to 1, so an entry is the fraction of
   the target's direct input coming from that source.
2. Influence: with logit weights w (the chosen logits' probabilities, normalised to sum to 1), a node's
   influence is its total indirect effect on the weighted logits, summed over every path:
   `w^T (W + W^2 + ...)`. The graph is acyclic, so the series ends after a few terms.
3. Prune nodes: keep the most influential features until they carry `node_fraction` of the total
   feature influence (errors, embeddings and logits always stay). Then score each remaining edge by
   its normalised weight times its target's influence (plus logit weight) and keep the top edges until
   they carry `edge_fraction` of the total edge score (edges join kept nodes only; a kept node may end
   up with no kept edge, and stays: the node set is what carries the requested influence).
4. Scores: the replacement score is the share of the embeddings' influence among embeddings plus
   errors (how much of the end-to-end effect runs through features rather than errors); the
   completeness score is the influence-weighted average fraction of each node's input that does not
   come from error nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.attribution.graph import AttributionGraph
from interp.errors import InterpError


def normalized(adjacency: Tensor) -> Tensor:
    """|A| with each row scaled to sum to 1 (rows with no input stay 0)."""
    a = adjacency.abs()
    return a / a.sum(1, keepdim=True).clamp_min(1e-12)


def logit_weights(graph: AttributionGraph) -> Tensor:
    """[n_nodes] weights on the logit nodes (normalised probabilities), 0 elsewhere."""
    w = torch.zeros(graph.n_nodes)
    p = graph.logit_probs.float()
    w[graph.slices()["logits"]] = p / p.sum().clamp_min(1e-12)
    return w


def influence(weights: Tensor, matrix: Tensor, max_iter: int = 10_000) -> Tensor:
    """`weights^T (M + M^2 + ...)` for a nilpotent (acyclic) matrix M [n, n]: [n]."""
    total = torch.zeros_like(weights)
    current = weights
    for _ in range(max_iter):
        current = current @ matrix
        if not bool(current.abs().gt(0).any()):
            return total
        total = total + current
    raise InterpError("the attribution graph has a cycle: influence does not converge")


def node_influence(graph: AttributionGraph) -> Tensor:
    """Each node's influence on the weighted logits [n_nodes]."""
    return influence(logit_weights(graph), normalized(graph.adjacency))


def _keep_fraction(scores: Tensor, fraction: float) -> Tensor:
    """Boolean mask of the fewest top `scores` whose sum reaches `fraction` of the total."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    total = float(scores.sum())
    if total <= 0 or scores.numel() == 0:
        return keep
    order = scores.argsort(descending=True)
    cum = scores[order].cumsum(0)
    n = int((cum < fraction * total).sum()) + 1
    keep[order[: min(n, scores.numel())]] = True
    return keep


@dataclass(frozen=True)
class Pruned:
    """Which nodes and edges a pruned graph keeps, and how much influence they carry."""

    node_mask: Tensor  # [n_nodes] bool
    edge_mask: Tensor  # [n_nodes, n_nodes] bool, rows targets
    influence: Tensor  # [n_nodes] node influence on the logits (unpruned graph)
    kept_feature_influence: float  # fraction of the features' total influence kept
    kept_edge_score: float  # fraction of the total edge score kept


def prune(graph: AttributionGraph, node_fraction: float = 0.8, edge_fraction: float = 0.98) -> Pruned:
    """Keep the nodes carrying `node_fraction` of the feature influence and the edges carrying
    `edge_fraction` of the edge score (see the module docstring)."""
    for name, value in (("node_fraction", node_fraction), ("edge_fraction", edge_fraction)):
        if not 0 < value <= 1:
            raise InterpError(f"{name} must be in (0, 1], got {value}")
    infl = node_influence(graph)
    s = graph.slices()
    node_mask = torch.ones(graph.n_nodes, dtype=torch.bool)
    feat = infl[s["features"]]
    feat_keep = _keep_fraction(feat, node_fraction)
    node_mask[s["features"]] = feat_keep
    total_feat = float(feat.sum())
    kept_feat = float(feat[feat_keep].sum()) / total_feat if total_feat > 0 else 1.0

    sub = graph.adjacency * node_mask[:, None] * node_mask[None, :]
    norm = normalized(sub)
    weights = logit_weights(graph)
    target_weight = influence(weights, norm) + weights  # [n_nodes]
    edge_scores = norm * target_weight[:, None]
    flat_keep = _keep_fraction(edge_scores.flatten(), edge_fraction)
    edge_mask = flat_keep.reshape(edge_scores.shape) & (sub != 0)
    total_edge = float(edge_scores.sum())
    kept_edge = float(edge_scores[edge_mask].sum()) / total_edge if total_edge > 0 else 1.0
    return Pruned(node_mask, edge_mask, infl, kept_feat, kept_edge)


def scores(graph: AttributionGraph) -> dict[str, float]:
    """`replacement_score` and `completeness_score` of the (unpruned) graph, each in [0, 1]."""
    s = graph.slices()
    norm = normalized(graph.adjacency)
    weights = logit_weights(graph)
    infl = influence(weights, norm)
    token = float(infl[s["embeddings"]].sum())
    error = float(infl[s["errors"]].sum())
    from_errors = norm[:, s["errors"]].sum(1)  # [n_nodes]: fraction of each node's input from errors
    has_input = norm.sum(1) > 0
    non_error = torch.where(has_input, 1 - from_errors, torch.zeros_like(from_errors))
    weight = (infl + weights) * has_input
    return {
        "replacement_score": token / (token + error) if token + error > 0 else 1.0,
        "completeness_score": float((non_error * weight).sum() / weight.sum().clamp_min(1e-12)),
    }
