"""The computational graph of a transformer, as circuit discovery sees it.

Sources are the components that write to the residual stream, in forward order:
`embed`, then per block l the heads `L{l}.H0..` and `MLP{l}`. Destinations are the inputs that
read it: per block the heads (one input each, or separate q, k, v inputs with `separate_qkv=True`)
and the MLP, then `logits`. There is an edge from every source to every destination downstream of
it: heads of block l read everything before block l; MLP l also reads the heads of block l
(sequential residual); logits read everything.

Indices are what the fast methods need: `edge_src[i]` / `edge_dst[i]` index edge i's source in
`sources` and destination in `dests`; `n_upstream[d]` says how many sources (a prefix of `sources`)
destination d can read.

    >>> graph = ComputationalGraph.build(model.cfg)
    >>> len(graph.edges), graph.edges[0]
    (54, Edge('embed->L0.H0'))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.graph import Edge, Node, as_edge
from interp.errors import InterpError


@dataclass(frozen=True)
class Dest:
    """A destination input: a node, and for heads with separate inputs the channel q, k or v."""

    node: Node
    qkv: str | None = None

    @property
    def name(self) -> str:
        return self.node.name + (f".{self.qkv}" if self.qkv else "")


@dataclass(frozen=True, eq=False)
class ComputationalGraph:
    """Nodes, sources, destinations and edges of a model with `n_layers` blocks of `n_heads` heads."""

    n_layers: int
    n_heads: int
    separate_qkv: bool
    sources: tuple[Node, ...]
    dests: tuple[Dest, ...]
    edges: tuple[Edge, ...]
    edge_src: Tensor  # [n_edges] long, index into sources
    edge_dst: Tensor  # [n_edges] long, index into dests
    n_upstream: tuple[int, ...]  # per destination: it reads sources[:n_upstream[d]]

    @classmethod
    def build(cls, cfg: object, separate_qkv: bool = False) -> ComputationalGraph:
        """The graph of a model with `cfg.n_layers` blocks and `cfg.n_heads` heads (a `model.cfg`).

        Parallel-residual models (GPT-NeoX/Pythia with `use_parallel_residual`) are refused: there the
        MLP does not read its own block's heads, which this graph assumes.
        """
        if getattr(cfg, "parallel_residual", False):
            raise InterpError(
                "circuit discovery needs a sequential-residual model; this one is parallel-residual"
            )
        n_layers, n_heads = int(cfg.n_layers), int(cfg.n_heads)
        sources: list[Node] = [Node.embed()]
        dests: list[Dest] = []
        n_upstream: list[int] = []
        channels = ("q", "k", "v") if separate_qkv else (None,)
        for layer in range(n_layers):
            for qkv in channels:
                for head in range(n_heads):
                    dests.append(Dest(Node.attn_head(layer, head), qkv))
                    n_upstream.append(len(sources))
            sources += [Node.attn_head(layer, h) for h in range(n_heads)]
            dests.append(Dest(Node.mlp(layer)))
            n_upstream.append(len(sources))
            sources.append(Node.mlp(layer))
        dests.append(Dest(Node.logits()))
        n_upstream.append(len(sources))
        pairs = [(s, d) for d, n in enumerate(n_upstream) for s in range(n)]
        edges = tuple(Edge(sources[s], dests[d].node, dests[d].qkv) for s, d in pairs)
        return cls(
            n_layers,
            n_heads,
            separate_qkv,
            tuple(sources),
            tuple(dests),
            edges,
            torch.tensor([s for s, _ in pairs], dtype=torch.long),
            torch.tensor([d for _, d in pairs], dtype=torch.long),
            tuple(n_upstream),
        )

    # -- lookups --------------------------------------------------------------------------------------
    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node in forward order: sources, then `logits`."""
        return (*self.sources, Node.logits())

    def __len__(self) -> int:
        return len(self.edges)

    def edge_index(self, edge: Edge | str | tuple) -> int:
        """Position of `edge` in `edges` (an `InterpError` naming the graph when it has no such edge)."""
        index = self._edge_positions().get(as_edge(edge))
        if index is None:
            raise InterpError(
                f"edge {as_edge(edge)} is not in this graph ({self.n_layers} layers, {self.n_heads} heads, "
                f"separate_qkv={self.separate_qkv})"
            )
        return index

    def _edge_positions(self) -> dict[Edge, int]:
        cache = self.__dict__.get("_positions")
        if cache is None:
            cache = {e: i for i, e in enumerate(self.edges)}
            object.__setattr__(self, "_positions", cache)
        return cache

    def mask(self, edges: Iterable[Edge | str | tuple]) -> Tensor:
        """[n_edges] bool: True for the listed edges. With `separate_qkv`, an edge given without a
        channel selects all three channels of that head."""
        out = torch.zeros(len(self.edges), dtype=torch.bool)
        for edge in edges:
            edge = as_edge(edge)
            if self.separate_qkv and edge.qkv is None and edge.dst.kind == "head":
                for qkv in ("q", "k", "v"):
                    out[self.edge_index(Edge(edge.src, edge.dst, qkv))] = True
            else:
                out[self.edge_index(edge)] = True
        return out

    def dense(self, values: Tensor) -> Tensor:
        """Per-edge values [..., n_edges] -> [..., n_dests, n_sources] (zero where there is no edge)."""
        out = values.new_zeros(*values.shape[:-1], len(self.dests), len(self.sources))
        out[..., self.edge_dst, self.edge_src] = values
        return out

    def source_index(self, node: Node) -> int:
        return self.sources.index(node)

    def head_dests(self, layer: int) -> slice:
        """The destinations of block `layer`'s heads (H of them, or 3H ordered q heads, k heads, v heads)."""
        width = self.n_heads * (3 if self.separate_qkv else 1)
        start = layer * (width + 1)
        return slice(start, start + width)

    def mlp_dest(self, layer: int) -> int:
        return self.head_dests(layer).stop

    @property
    def logits_dest(self) -> int:
        return len(self.dests) - 1
