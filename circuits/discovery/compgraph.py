"""The computational graph of a transformer, as circuit discovery sees it.

Sources are the components that write to the residual stream, in forward order:
`embed`, then per block l the heads `L{l}.H0..` and `MLP{l}`. Destinations are the inputs that
read it: per block the heads (one input each, or separate q, k, v inputs with `separate_qkv=True`)
and the MLP, then `logits`. There is an edge from every source to every destination downstream of
it: heads of block l read everything before block l; MLP l also reads the heads of block l when
the residual is sequential (not with a parallel residual, GPT-NeoX/Pythia's default, where the MLP
reads the block input); logits read everything.

Grouped-query attention (fewer k/v heads than q heads) always has separate inputs: one q input per
head `L{l}.H{h}.q`, and one k and one v input per k/v head, named by the k/v head's index as the
`attn.hook_k` / `attn.hook_v` hook points count them (`L{l}.H{j}.k` feeds the keys of q heads
j*g .. j*g+g-1, g = n_heads / n_kv_heads).

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
    n_kv_heads: int
    sources: tuple[Node, ...]
    dests: tuple[Dest, ...]
    edges: tuple[Edge, ...]
    edge_src: Tensor  # [n_edges] long, index into sources
    edge_dst: Tensor  # [n_edges] long, index into dests
    n_upstream: tuple[int, ...]  # per destination: it reads sources[:n_upstream[d]]
    parallel_residual: bool = False

    @classmethod
    def build(cls, cfg: object, separate_qkv: bool = False) -> ComputationalGraph:
        """The graph of a model with `cfg.n_layers` blocks and `cfg.n_heads` heads (a `model.cfg`;
        `cfg.n_kv_heads` and `cfg.parallel_residual` are read when present). Grouped-query models get
        separate q/k/v inputs whatever `separate_qkv` says (see the module docstring)."""
        n_layers, n_heads = int(cfg.n_layers), int(cfg.n_heads)
        n_kv = int(getattr(cfg, "n_kv_heads", n_heads) or n_heads)
        if n_kv < 1 or n_heads % n_kv:
            raise InterpError(f"{n_heads} heads cannot share {n_kv} key/value heads evenly")
        parallel = bool(getattr(cfg, "parallel_residual", False))
        separate_qkv = separate_qkv or n_kv != n_heads
        sources: list[Node] = [Node.embed()]
        dests: list[Dest] = []
        n_upstream: list[int] = []
        channels = (("q", n_heads), ("k", n_kv), ("v", n_kv)) if separate_qkv else ((None, n_heads),)
        for layer in range(n_layers):
            block_input = len(sources)
            for qkv, count in channels:
                for head in range(count):
                    dests.append(Dest(Node.attn_head(layer, head), qkv))
                    n_upstream.append(block_input)
            sources += [Node.attn_head(layer, h) for h in range(n_heads)]
            dests.append(Dest(Node.mlp(layer)))
            n_upstream.append(block_input if parallel else len(sources))
            sources.append(Node.mlp(layer))
        dests.append(Dest(Node.logits()))
        n_upstream.append(len(sources))
        pairs = [(s, d) for d, n in enumerate(n_upstream) for s in range(n)]
        edges = tuple(Edge(sources[s], dests[d].node, dests[d].qkv) for s, d in pairs)
        return cls(
            n_layers,
            n_heads,
            separate_qkv,
            n_kv,
            tuple(sources),
            tuple(dests),
            edges,
            torch.tensor([s for s, _ in pairs], dtype=torch.long),
            torch.tensor([d for _, d in pairs], dtype=torch.long),
            tuple(n_upstream),
            parallel,
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
        channel selects all three channels of that head (under grouped-query attention: its q input
        and the k/v inputs of its k/v head)."""
        out = torch.zeros(len(self.edges), dtype=torch.bool)
        group = self.n_heads // self.n_kv_heads
        for edge in edges:
            edge = as_edge(edge)
            if self.separate_qkv and edge.qkv is None and edge.dst.kind == "head":
                kv = Node.attn_head(edge.dst.layer, edge.dst.head // group)
                for qkv, dst in (("q", edge.dst), ("k", kv), ("v", kv)):
                    out[self.edge_index(Edge(edge.src, dst, qkv))] = True
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

    @property
    def head_width(self) -> int:
        """Head destinations per block: H, or H + 2 * n_kv_heads (q heads, k heads, v heads)."""
        return self.n_heads + 2 * self.n_kv_heads if self.separate_qkv else self.n_heads

    def head_dests(self, layer: int) -> slice:
        """The destinations of block `layer`'s heads (H of them, or q heads, k heads, v heads)."""
        width = self.head_width
        start = layer * (width + 1)
        return slice(start, start + width)

    def mlp_dest(self, layer: int) -> int:
        return self.head_dests(layer).stop

    @property
    def logits_dest(self) -> int:
        return len(self.dests) - 1
