"""`EdgeScores`: what every discovery method returns -- one score per edge of a computational graph.

A score estimates (or, for ACDC, measures) how much the metric changes when that edge is ablated,
`metric(edge ablated) - metric(full model)` for the attribution methods; importance is its
magnitude. Node scores come with it: for node methods they are primary; for edge methods a node's
score is the largest |score| of the edges touching it.

    >>> scores = circuits.discovery.discover(model, data, "eap")
    >>> scores.top(5)                       # [(Edge('L1.H0->MLP1'), -3.2), ...]
    >>> circuit = scores.to_circuit(top_n=20)
    >>> circuit.export("out", ["json", "svg"])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from circuits.discovery.compgraph import ComputationalGraph
from circuits.graph import Circuit, Edge, Node
from interp.errors import InterpError

logger = logging.getLogger(__name__)


class Graph(Protocol):
    """What `EdgeScores` needs of a graph: its edges (a `ComputationalGraph` or a feature graph)."""

    edges: tuple[Edge, ...]


@dataclass(frozen=True, eq=False)
class EdgeScores:
    """Per-edge scores aligned with `graph.edges`, optional node scores, and how they were made."""

    graph: ComputationalGraph | Graph
    scores: Tensor
    """[n_edges] float32 (float64 when computed in float64), aligned with `graph.edges`."""
    method: str
    node_scores: Mapping[Node, float] | None = None
    """Per node; None means: derive from edges (largest |score| of the edges touching the node)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """clean/ablated metric, ablation, config, seconds, ... (JSON values)."""

    def __post_init__(self) -> None:
        scores = torch.as_tensor(self.scores).detach().cpu()
        scores = scores if scores.dtype == torch.float64 else scores.float()
        if scores.shape != (len(self.graph.edges),):
            raise InterpError(f"{len(self.graph.edges)} edges but scores of shape {tuple(scores.shape)}")
        object.__setattr__(self, "scores", scores)
        if self.node_scores is None:
            object.__setattr__(self, "node_scores", self._derived_node_scores())

    def _derived_node_scores(self) -> dict[Node, float]:
        """Largest |score| of the edges touching each node; under grouped-query attention a k/v
        input is shared by a group of heads, so k/v edges count for their source only."""
        best: dict[Node, float] = {}
        grouped = getattr(self.graph, "n_kv_heads", None) not in (None, getattr(self.graph, "n_heads", None))
        for edge, score in zip(self.graph.edges, self.scores.abs().tolist(), strict=True):
            shared = grouped and edge.qkv in ("k", "v")
            for node in edge.pair[:1] if shared else edge.pair:
                best[node] = max(best.get(node, 0.0), score)
        return best

    # -- views ----------------------------------------------------------------------------------------
    def as_dict(self) -> dict[Edge, float]:
        return dict(zip(self.graph.edges, self.scores.tolist(), strict=True))

    def order(self) -> Tensor:
        """Edge indices by decreasing |score| (ties keep graph order)."""
        return torch.sort(self.scores.abs(), descending=True, stable=True).indices

    def top(self, k: int = 10) -> list[tuple[Edge, float]]:
        """The `k` edges with the largest |score|, with their signed scores."""
        return [(self.graph.edges[i], float(self.scores[i])) for i in self.order()[:k].tolist()]

    def __repr__(self) -> str:
        head = ", ".join(f"{e}: {s:.3g}" for e, s in self.top(3))
        return f"EdgeScores({self.method}, {len(self.scores)} edges; top: {head})"

    def collapse_qkv(self) -> dict[tuple[Node, Node], float]:
        """(src, dst) -> the largest-|score| score among that pair's q/k/v edges (or the edge's own)."""
        out: dict[tuple[Node, Node], float] = {}
        for edge, score in self.as_dict().items():
            if edge.pair not in out or abs(score) > abs(out[edge.pair]):
                out[edge.pair] = score
        return out

    # -- circuits -------------------------------------------------------------------------------------
    def selected(self, top_n: int | None = None, threshold: float | None = None) -> Tensor:
        """[n_edges] bool: the `top_n` edges by |score| and/or those with |score| >= `threshold`
        (`circuit_mask` metadata, set by ACDC, is used when neither is given)."""
        if top_n is None and threshold is None:
            if "circuit_mask" in self.metadata:
                return torch.tensor(self.metadata["circuit_mask"], dtype=torch.bool)
            raise InterpError("choose the circuit: pass top_n= and/or threshold=")
        keep = torch.ones(len(self.scores), dtype=torch.bool)
        if threshold is not None:
            keep &= self.scores.abs() >= threshold
        if top_n is not None:
            if top_n < 0:
                raise InterpError(f"top_n must be >= 0, got {top_n}")
            ranked = torch.zeros_like(keep)
            ranked[self.order()[:top_n]] = True
            keep &= ranked
        return keep

    def select(
        self, top_n: int | None = None, threshold: float | None = None, prune: bool = True
    ) -> Selection:
        """The edges of the circuit (see `to_circuit`) and how they were chosen."""
        keep = self.selected(top_n, threshold)
        edges = [e for e, k in zip(self.graph.edges, keep.tolist(), strict=True) if k]
        kept = prune_edges(edges, self._group()) if prune else edges
        requested = top_n if top_n is not None else len(edges)
        note = ""
        explicit = threshold is not None or (top_n is None and "circuit_mask" in self.metadata)
        if not kept and prune and not explicit and len(self.graph.edges):
            k = self._smallest_connected_top(max(requested, 1))
            kept = prune_edges([self.graph.edges[i] for i in self.order()[:k].tolist()], self._group())
            note = (
                f"the top {requested} edges hold no embed-to-logits path; widened to the top {k} "
                f"(the fewest top-ranked edges that connect embed to logits)"
            )
            logger.warning("%s: %s", self.method, note)
        elif not kept:
            note = (
                f"no edge passes the selection (top_n={top_n}, threshold={threshold}"
                + (", after pruning to embed-to-logits paths" if prune and edges else "")
                + "): the circuit is empty"
            )
            logger.warning("%s: %s", self.method, note)
        return Selection(tuple(kept), top_n, threshold, len(edges), note, explicit)

    def _group(self) -> int:
        """Query heads per key/value head of the graph (1 without grouped-query attention)."""
        n_kv = getattr(self.graph, "n_kv_heads", None)
        return self.graph.n_heads // n_kv if n_kv else 1

    def _smallest_connected_top(self, start: int) -> int:
        """The least k >= start whose top-k edges keep an edge after pruning (monotone in k: more
        edges only add paths), by doubling then bisection."""
        order = self.order().tolist()
        edges = self.graph.edges

        def connected(k: int) -> bool:
            return bool(prune_edges([edges[i] for i in order[:k]], self._group()))

        low, high = start, start
        while high < len(order) and not connected(high):
            low, high = high, min(2 * high, len(order))
        while low < high:
            mid = (low + high) // 2
            if connected(mid):
                high = mid
            else:
                low = mid + 1
        return high

    def to_circuit(
        self,
        top_n: int | None = None,
        threshold: float | None = None,
        prune: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> Circuit:
        """The circuit of the selected edges (see `selected`), with their scores.

        `prune` drops edges that cannot matter: those whose destination has no path to `logits`
        and those whose source (a head or MLP) receives no edge, repeatedly. A selection by `top_n`
        alone never comes back empty: when its edges hold no embed-to-logits path it is widened to
        the fewest top-ranked edges that do, with a warning. An explicit `threshold` (or ACDC's
        kept edges) that leaves nothing gives an empty circuit (and a warning), which still exports.
        `metadata["selection"]` records what was asked and what was kept.
        """
        chosen = self.select(top_n, threshold, prune)
        edges = list(chosen.edges)
        score = self.as_dict()
        nodes = {n for e in edges for n in e.pair}
        meta = {
            "method": self.method,
            **{k: v for k, v in self.metadata.items() if k != "circuit_mask"},
            "n_graph_edges": len(self.graph.edges),
            "selection": chosen.to_dict(),
            **(metadata or {}),
        }
        return Circuit(
            tuple(nodes),
            tuple(edges),
            {e: score[e] for e in edges},
            {n: s for n, s in (self.node_scores or {}).items() if n in nodes},
            meta,
        )


@dataclass(frozen=True)
class Selection:
    """What a circuit selection asked for and what it kept."""

    edges: tuple[Edge, ...]
    top_n: int | None
    threshold: float | None
    n_selected: int
    """Edges passing `top_n` / `threshold` (or ACDC's mask), before pruning."""
    note: str = ""
    """What was done when the selection would have been empty (widened), or why it is empty."""
    explicit: bool = False
    """The selection was a threshold (the user's or ACDC's): it is never widened."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "top_n": self.top_n,
            "threshold": self.threshold,
            "n_selected": self.n_selected,
            "n_kept": len(self.edges),
            "widened": bool(self.note) and bool(self.edges),
            "note": self.note,
        }


def prune_edges(edges: list[Edge], group: int = 1) -> list[Edge]:
    """Keep edges whose destination reaches `logits` and whose source is `embed`, an SAE node, or a
    component that itself receives a kept edge (to a fixed point). Under grouped-query attention
    (`group` query heads per key/value head) a k/v edge into `L{l}.H{j}` feeds heads j*group ..
    j*group + group - 1: it reaches `logits` when one of them does, and feeds each of them."""

    def readers(e: Edge) -> list[Node]:
        if group > 1 and e.qkv in ("k", "v"):
            return [Node.attn_head(e.dst.layer, e.dst.head * group + i) for i in range(group)]
        return [e.dst]

    edges = list(edges)
    while True:
        reaches = {Node.logits()}
        changed = True
        while changed:
            changed = False
            for e in edges:
                if e.src not in reaches and any(r in reaches for r in readers(e)):
                    reaches.add(e.src)
                    changed = True
        fed = {r for e in edges for r in readers(e)}
        kept = [
            e
            for e in edges
            if any(r in reaches for r in readers(e)) and (e.src.kind not in ("head", "mlp") or e.src in fed)
        ]
        if len(kept) == len(edges):
            return kept
        edges = kept
