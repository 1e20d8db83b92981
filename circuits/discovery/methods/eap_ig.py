"""EAP-IG: edge attribution patching with integrated gradients (Hanna, Pezzelle & Belinkov 2024,
"Have Faith in Faithfulness").

Algorithm:
  1. Record the ablation values `alt_s` of every source and the clean embedding.
  2. For k = 1..m, run the input whose embedding is `alt_embed + (k/m)(clean_embed - alt_embed)`
     with zero probes on every destination input, and backpropagate the metric: `g_d^(k)`.
  3. Average: `g_d = (1/m) sum_k g_d^(k)`; the last point (k = m) is the clean input, whose source
     outputs `clean_s` are recorded.
  4. score(s -> d) = sum over batch, pos, d_model of (alt_s - clean_s) * g_d.

With m = 1 this is EAP exactly. Cost: m forward+backward passes (points 1..m-1 stacked along the
batch, `points_per_pass` at a time) and one forward for the corrupted ablation.

    >>> scores = eap_ig(model, data, EAPIGConfig(steps=5))
"""

from __future__ import annotations

from dataclasses import dataclass

from circuits.discovery.attribution import edge_attribution, path_gradients
from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.data import as_data, check_ablation
from circuits.discovery.scores import EdgeScores
from interp import HookedModel
from interp.errors import InterpError


@dataclass(frozen=True)
class EAPIGConfig:
    """Edge attribution patching with integrated gradients over the input embedding."""

    steps: int = 5
    """Points on the path from the ablated to the clean embedding (m); 1 = EAP."""
    ablation: str = "corrupted"
    """What replaces an ablated edge's source: corrupted, resample, mean or zero."""
    separate_qkv: bool = False
    """Score a head's q, k and v inputs as separate edges."""
    points_per_pass: int = 8
    """Path points run together in one forward+backward (stacked along the batch; memory x points)."""

    def __post_init__(self) -> None:
        check_ablation(self.ablation)
        if self.points_per_pass < 1:
            raise InterpError(f"points_per_pass must be >= 1, got {self.points_per_pass}")
        if self.steps < 1:
            raise InterpError(f"EAP-IG needs steps >= 1, got {self.steps}")


def eap_ig(model: HookedModel, data: object, config: EAPIGConfig = EAPIGConfig()) -> EdgeScores:
    """Score every edge by EAP with integrated gradients (see the module docstring)."""
    data = as_data(data)
    graph = ComputationalGraph.build(model.cfg, config.separate_qkv)
    g = path_gradients(model, graph, data, config.ablation, config.steps, config.points_per_pass)
    return EdgeScores(graph, edge_attribution(g, graph), "eap-ig", metadata=g.metadata(config, data.name))
