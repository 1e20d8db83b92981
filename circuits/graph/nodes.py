"""Nodes and edges of a circuit: frozen, hashable, printable values, named the way papers name them.

| node | name | meaning |
|---|---|---|
| embedding | `embed` | token (+ position) embedding: the residual stream before block 0 |
| attention head | `L{l}.H{h}` | head h of block l (its slice of the attention output projection) |
| MLP | `MLP{l}` | the MLP of block l |
| unembedding | `logits` | the final norm + unembedding, reading the residual stream after the last block |
| SAE feature | `L{l}.{site}.F{i}` | latent i of the SAE at `site` (`resid`, `attn` or `mlp`) of block l |
| SAE error | `L{l}.{site}.err` | what that SAE fails to reconstruct |

An edge is `src->dst`, with an optional input channel `q`, `k` or `v` when a head's query, key and
value inputs are separate destinations: `L0.H1->L1.H2.k`.

    >>> Node.parse("L1.H3"), Edge.parse("L0.H1->L1.H2.k").dst
    (Node('L1.H3'), Node('L1.H2'))
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InterpError
from interp.names import Component

QKV = ("q", "k", "v")


class Node(Component):
    """One component: `interp.names.Component` (names, parsing, depth along the residual stream) as
    a circuit node. Build with the class methods (`Node.attn_head(1, 3)`) or `Node.parse("L1.H3")`."""


@dataclass(frozen=True)
class Edge:
    """`src -> dst` through the residual stream; `qkv` names the head input when q/k/v are separate."""

    src: Node
    dst: Node
    qkv: str | None = None

    def __post_init__(self) -> None:
        if self.qkv is not None and (self.qkv not in QKV or self.dst.kind != "head"):
            raise InterpError(f"qkv={self.qkv!r} needs a head destination and one of q, k, v")

    @classmethod
    def parse(cls, name: str | Edge) -> Edge:
        """The edge named `"src->dst"` or `"src->dst.k"`; an `Edge` passes through."""
        if isinstance(name, Edge):
            return name
        if "->" not in str(name):
            raise InterpError(f"cannot parse edge {name!r}: expected 'src->dst' such as 'L0.H1->MLP1'")
        src, dst = (part.strip() for part in str(name).split("->", 1))
        qkv = None
        if dst[-2:] in (".q", ".k", ".v"):
            dst, qkv = dst[:-2], dst[-1]
        return cls(Node.parse(src), Node.parse(dst), qkv)

    @classmethod
    def of(cls, src: str | Node, dst: str | Node, qkv: str | None = None) -> Edge:
        return cls(Node.parse(src), Node.parse(dst), qkv)

    @property
    def name(self) -> str:
        return f"{self.src.name}->{self.dst.name}" + (f".{self.qkv}" if self.qkv else "")

    @property
    def pair(self) -> tuple[Node, Node]:
        """(src, dst) without the q/k/v channel."""
        return self.src, self.dst

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Edge({self.name!r})"
