"""Shared by the gradient methods (EAP, EAP-IG, node attribution): gradients at every destination
input, averaged along a path of inputs, and their product with the ablation difference.

The linear estimate of ablating edge s -> d is

    score(s -> d) = sum over batch, pos, d_model of (alt_s - clean_s) * g_d,

with g_d = dMetric/dinput_d at the clean input (EAP), or its average over the inputs
`alt_embed + (k / m) (clean_embed - alt_embed)`, k = 1..m (EAP-IG; m = 1 is EAP exactly).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.data import CircuitData, ablate, ablated_logits, check_metric
from circuits.discovery.engine import EdgeRun, forward
from interp import HookedModel
from interp.errors import InterpError


@dataclass
class Gradients:
    """Averaged destination gradients and what goes with them."""

    grads: Tensor  # [n_dests, batch, pos, d_model]
    clean: Tensor  # [n_sources, batch, pos, d_model] source outputs on the clean input
    alt: Tensor  # [n_sources, batch or 1, pos, d_model] ablation values
    clean_metric: float
    ablated_metric: float
    seconds: float

    def metadata(self, config: object, task: str | None) -> dict[str, object]:
        """What a gradient method's `EdgeScores` records about its run."""
        return {
            "clean_metric": self.clean_metric,
            "ablated_metric": self.ablated_metric,
            "seconds": self.seconds,
            "config": asdict(config),
            "task": task,
        }


def path_gradients(
    model: HookedModel,
    graph: ComputationalGraph,
    data: CircuitData,
    ablation: str,
    steps: int,
    points_per_pass: int = 8,
) -> Gradients:
    """Destination gradients averaged over `steps` points from the ablated to the clean embedding.

    Passes: `steps` forward+backward and, for the corrupted ablation, one forward on the corrupted
    input (mean and zero ablations add one forward for the all-ablated metric). The clean point is
    run first, so its recorded outputs give the clean embedding and the mean/resample values; the
    other points go through the model `points_per_pass` at a time, stacked along the batch axis.
    """
    if steps < 1:
        raise InterpError(f"steps must be >= 1, got {steps}")
    start = time.perf_counter()
    tokens = data.clean.to(model.device)
    ablated = ablate(model, graph, data, ablation) if ablation == "corrupted" else None
    clean = forward(model, graph, tokens, probe=True, record=True)
    value = data.metric(clean.logits)
    if not (isinstance(value, Tensor) and value.requires_grad):
        check_metric(value, value, needs_grad=True)  # raises: the metric ignores the logits
    total = clean.grads(graph, value)
    clean_metric = value.detach()
    clean_sources = clean.sources.detach()
    if ablated is None:
        ablated = ablate(model, graph, data, ablation, clean=EdgeRun(clean.logits.detach(), clean_sources))
    alt = ablated.sources
    batch = len(data)
    points = torch.arange(1, steps)
    for chunk in (
        points.split(max(1, points_per_pass)) if len(points) else ()
    ):  # the other points, alt -> clean
        alphas = (chunk.to(clean_sources.dtype) / steps).to(clean_sources.device)  # [points]
        start_embed = alt[0].expand_as(clean_sources[0])  # [batch, pos, d_model]
        embed = torch.lerp(start_embed[None], clean_sources[0][None], alphas[:, None, None, None])
        run = forward(model, graph, tokens.repeat(len(chunk), 1), probe=True, embed=embed.flatten(0, 1))
        summed = sum(data.metric(part) for part in run.logits.split(batch))  # each point's metric, summed
        total = total + run.grads(graph, summed, groups=len(chunk))  # summed over the points
    c, a = check_metric(clean_metric, data.metric(ablated_logits(model, graph, data, ablated)))
    return Gradients(total / steps, clean_sources, alt, c, a, time.perf_counter() - start)


def edge_attribution(g: Gradients, graph: ComputationalGraph) -> Tensor:
    """[n_edges]: (alt_s - clean_s) . g_d summed over batch, pos and d_model, for every edge."""
    diff = (g.alt - g.clean).expand_as(g.clean)  # [n_sources, batch, pos, d_model]
    # one matrix product over the flattened batch, pos and d_model (einsum runs this contraction
    # several times slower on CPU)
    dense = g.grads.flatten(1) @ diff.flatten(1).T  # [n_dests, n_sources]
    return dense[graph.edge_dst, graph.edge_src]


def node_attribution(g: Gradients, graph: ComputationalGraph) -> Tensor:
    """[n_sources]: (alt_s - clean_s) . sum_d g_d over the destinations downstream of s (= the
    gradient with respect to the source's output), i.e. the sum of s's outgoing edge scores."""
    edges = edge_attribution(g, graph)  # [n_edges]
    return torch.zeros(len(graph.sources), dtype=edges.dtype).index_add_(0, graph.edge_src, edges)
