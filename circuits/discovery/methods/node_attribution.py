"""Node attribution: attribution patching on component outputs (Nanda 2023; Kramar et al. 2024,
"AtP*"), optionally with integrated gradients.

Algorithm:
  1. As EAP (or EAP-IG with `steps` > 1): gradients `g_d` at every destination input, source
     outputs `clean_s`, ablation values `alt_s`.
  2. The gradient with respect to a source's output is the sum of the gradients of the
     destinations that read it, so score(s) = (alt_s - clean_s) . sum_{d downstream of s} g_d,
     the estimated change of the metric when the node is ablated for every reader at once.

Edges get derived scores, min(|score(src)|, |score(dst)|) with `embed` and `logits` counting as
more important than any other node: a node method cannot tell which of two kept nodes' edges matters, so its
edge ranking is only as good as the node ranking allows (see `metadata["edge_scores"]`).

    >>> scores = node_attribution(model, data, NodeAttributionConfig())
    >>> scores.node_scores
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from circuits.discovery import attribution
from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.data import as_data, check_ablation
from circuits.discovery.scores import EdgeScores
from circuits.graph import Edge, Node
from interp import HookedModel
from interp.errors import InterpError


@dataclass(frozen=True)
class NodeAttributionConfig:
    """Attribution patching on nodes (heads, MLPs, the embedding)."""

    steps: int = 1
    """Integrated-gradient points (1 = plain attribution patching)."""
    ablation: str = "corrupted"
    """What replaces an ablated node's output: corrupted, resample, mean or zero."""

    def __post_init__(self) -> None:
        check_ablation(self.ablation)
        if self.steps < 1:
            raise InterpError(f"node attribution needs steps >= 1, got {self.steps}")


def node_attribution(
    model: HookedModel, data: object, config: NodeAttributionConfig = NodeAttributionConfig()
) -> EdgeScores:
    """Score every node by attribution patching; edges get derived scores (module docstring)."""
    data = as_data(data)
    graph = ComputationalGraph.build(model.cfg)
    g = attribution.path_gradients(model, graph, data, config.ablation, steps=config.steps)
    per_source = attribution.node_attribution(g, graph)  # [n_sources]
    nodes = dict(zip(graph.sources, per_source.tolist(), strict=True))
    weight = {n: abs(s) for n, s in nodes.items()}
    weight[Node.embed()] = weight[Node.logits()] = 2 * max(weight.values()) + 1  # always in a circuit
    group = graph.n_heads // graph.n_kv_heads

    def reader_weight(e: Edge) -> float:  # a grouped-query k/v input feeds every head of its group
        if group > 1 and e.qkv in ("k", "v"):
            return max(weight[Node.attn_head(e.dst.layer, e.dst.head * group + i)] for i in range(group))
        return weight[e.dst]

    edges = torch.tensor([min(weight[e.src], reader_weight(e)) for e in graph.edges])
    meta = {**g.metadata(config, data.name), "edge_scores": "min(|src|, |dst|) of node scores"}
    return EdgeScores(graph, edges, "node", node_scores=nodes, metadata=meta)
