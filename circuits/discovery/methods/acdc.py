"""ACDC: automatic circuit discovery by edge pruning (Conmy et al. 2023, "Towards Automated
Circuit Discovery for Mechanistic Interpretability"). The slow baseline, by design.

Algorithm:
  1. Start from the full graph; `current` = the metric of the full model.
  2. Visit destinations in reverse topological order (logits first, then the last block's MLP,
     its heads, ... down to block 0), and for each the edges into it, latest source first.
  3. Ablate the edge (its source's contribution replaced by the ablation value for this
     destination only) and run the model: `new`. The edge's score is the change `new - current`
     (or the increase in KL divergence from the full model, with `score="kl"`).
  4. If |change| < threshold (for KL: increase < threshold) the edge stays removed and `current = new`; otherwise it is restored.
  5. A component none of whose outgoing edges survive cannot matter: its incoming edges are
     removed with score 0 without running the model.

Cost: one forward per edge tested. The result's `metadata["circuit_mask"]` is the edges kept.

    >>> scores = acdc(model, data, ACDCConfig(threshold=0.05))
    >>> circuit = scores.to_circuit()      # the edges ACDC kept
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.data import CircuitData, ablate, ablated_logits, as_data, check_ablation, check_metric
from circuits.discovery.engine import forward
from circuits.discovery.scores import EdgeScores
from circuits.graph import Node
from interp import HookedModel
from interp.errors import InterpError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ACDCConfig:
    """Edge pruning by a metric threshold."""

    threshold: float = 0.05
    """Keep an edge when ablating it changes the score by at least this much."""
    relative: bool = True
    """Read `threshold` as a fraction of |metric(full) - metric(all ablated)| (score="metric" only)."""
    score: str = "metric"
    """"metric": change of the task metric; "kl": increase of KL(full model || circuit) at the answer position."""
    ablation: str = "corrupted"
    """What replaces an ablated edge's source: corrupted, resample, mean or zero."""
    separate_qkv: bool = False
    """Prune a head's q, k and v inputs separately."""

    def __post_init__(self) -> None:
        check_ablation(self.ablation)
        if self.score not in ("metric", "kl"):
            raise InterpError(f"ACDC score must be 'metric' or 'kl', got {self.score!r}")
        if not self.threshold >= 0:
            raise InterpError(f"ACDC threshold must be >= 0, got {self.threshold}")


class _Scorer:
    """The score of one patched run: the metric, or KL(full || patched) at the answer positions."""

    def __init__(self, data: CircuitData, clean_logits: Tensor, kind: str):
        self.data, self.kind = data, kind
        self.reference = data.end_logits(clean_logits).log_softmax(-1)  # [batch, vocab]

    def __call__(self, logits: Tensor) -> float:
        if self.kind == "metric":
            return float(self.data.metric(logits))
        logp = self.data.end_logits(logits).log_softmax(-1)
        return float((self.reference.exp() * (self.reference - logp)).sum(-1).mean())


@torch.no_grad()
def acdc(model: HookedModel, data: object, config: ACDCConfig = ACDCConfig()) -> EdgeScores:
    """Prune the graph edge by edge (see the module docstring); scores are the measured changes."""
    start = time.perf_counter()
    data = as_data(data)
    graph = ComputationalGraph.build(model.cfg, config.separate_qkv)
    tokens = data.clean.to(model.device)
    clean = forward(model, graph, tokens, record=True)
    ablated = ablate(model, graph, data, config.ablation, clean=clean)
    alt = ablated.sources
    patch = torch.zeros(len(graph.dests), len(graph.sources))  # [n_dests, n_sources], 1 = removed

    def run() -> Tensor:
        return forward(model, graph, tokens, alt=alt, patch=patch).logits

    scorer = _Scorer(data, clean.logits, config.score)
    full_metric, ablated_metric = check_metric(
        data.metric(clean.logits), data.metric(ablated_logits(model, graph, data, ablated))
    )
    tau = config.threshold * (
        abs(full_metric - ablated_metric) if config.relative and config.score == "metric" else 1.0
    )
    current = scorer(clean.logits)
    effect = torch.zeros(len(graph.dests), len(graph.sources))
    n_runs = 0
    for d in reversed(range(len(graph.dests))):
        if _dest_orphaned(graph, patch, d):
            patch[d, : graph.n_upstream[d]] = 1.0
            continue
        for s in reversed(range(graph.n_upstream[d])):
            patch[d, s] = 1.0
            new = scorer(run())
            n_runs += 1
            effect[d, s] = new - current
            change = new - current if config.score == "kl" else abs(new - current)  # KL: only increases count
            if change < tau:
                current = new
            else:
                patch[d, s] = 0.0
    kept = patch[graph.edge_dst, graph.edge_src] == 0
    if not bool(kept.any()):
        logger.warning("ACDC threshold %.4g pruned every edge: the circuit is empty", tau)
    meta = {
        "clean_metric": full_metric,
        "ablated_metric": ablated_metric,
        "circuit_metric": float(data.metric(run())),
        "threshold_abs": tau,
        "forward_passes": n_runs,
        "n_kept": int(kept.sum()),
        "circuit_mask": kept.tolist(),
        "seconds": time.perf_counter() - start,
        "config": asdict(config),
        "task": data.name,
    }
    return EdgeScores(graph, effect[graph.edge_dst, graph.edge_src], "acdc", metadata=meta)


def _dest_orphaned(graph: ComputationalGraph, patch: Tensor, d: int) -> bool:
    """True when destination d feeds only components none of whose outgoing edges survive (under
    grouped-query attention a k/v input feeds every head of its group)."""
    dest = graph.dests[d]
    if dest.node.kind == "logits":
        return False
    if dest.qkv in ("k", "v") and graph.n_kv_heads != graph.n_heads:
        group = graph.n_heads // graph.n_kv_heads
        heads = [Node.attn_head(dest.node.layer, dest.node.head * group + i) for i in range(group)]
        return all(_orphan(graph, patch, graph.source_index(h)) for h in heads)
    return _orphan(graph, patch, graph.source_index(dest.node))


def _orphan(graph: ComputationalGraph, patch: Tensor, source: int) -> bool:
    """True when every edge out of `source` has been removed."""
    readers = [d for d, n in enumerate(graph.n_upstream) if n > source]
    return bool((patch[readers, source] == 1).all())
