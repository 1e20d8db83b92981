"""EAP: edge attribution patching (Syed, Rager & Conmy 2023, "Attribution Patching Outperforms
Automated Circuit Discovery").

Algorithm:
  1. Run the clean input with a zero probe added to every destination input; record every source's
     output `clean_s` [batch, pos, d_model].
  2. Backpropagate the metric once: `g_d = dMetric/dinput_d` for every destination d.
  3. Record the ablation values `alt_s` (one forward on the corrupted input, or a batch mean, ...).
  4. score(s -> d) = sum over batch, pos, d_model of (alt_s - clean_s) * g_d: the first-order
     estimate of metric(edge ablated) - metric(clean), for every edge at once.

Cost: one forward+backward and one or two forwards, whatever the number of edges.

    >>> scores = eap(model, data, EAPConfig())
    >>> scores.top(3)
"""

from __future__ import annotations

from dataclasses import dataclass

from circuits.discovery.attribution import edge_attribution, path_gradients
from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.data import as_data, check_ablation
from circuits.discovery.scores import EdgeScores
from interp import HookedModel


@dataclass(frozen=True)
class EAPConfig:
    """Edge attribution patching."""

    ablation: str = "corrupted"
    """What replaces an ablated edge's source: corrupted, resample, mean or zero (`data.ABLATIONS`)."""
    separate_qkv: bool = False
    """Score a head's q, k and v inputs as separate edges."""

    def __post_init__(self) -> None:
        check_ablation(self.ablation)


def eap(model: HookedModel, data: object, config: EAPConfig = EAPConfig()) -> EdgeScores:
    """Score every edge of `model`'s graph by edge attribution patching (see the module docstring)."""
    data = as_data(data)
    graph = ComputationalGraph.build(model.cfg, config.separate_qkv)
    g = path_gradients(model, graph, data, config.ablation, steps=1)
    return EdgeScores(graph, edge_attribution(g, graph), "eap", metadata=g.metadata(config, data.name))
