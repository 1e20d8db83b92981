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

import re
from dataclasses import dataclass
from typing import Literal

from interp.errors import InterpError

Kind = Literal["embed", "head", "mlp", "logits", "feature", "error"]
QKV = ("q", "k", "v")
SITES = ("resid", "attn", "mlp")
_HEAD = re.compile(r"^L(\d+)\.H(\d+)$")
_MLP = re.compile(r"^MLP(\d+)$")
_FEATURE = re.compile(r"^L(\d+)\.(resid|attn|mlp)\.(?:F(\d+)|(err))$")


@dataclass(frozen=True)
class Node:
    """One component. Build with the class methods (`Node.head(1, 3)`) or `Node.parse("L1.H3")`."""

    kind: Kind
    layer: int | None = None
    head: int | None = None
    site: str | None = None  # SAE site of feature/error nodes
    index: int | None = None  # SAE latent of feature nodes

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def embed(cls) -> Node:
        return cls("embed")

    @classmethod
    def logits(cls) -> Node:
        return cls("logits")

    @classmethod
    def attn_head(cls, layer: int, head: int) -> Node:
        return cls("head", layer, head)

    @classmethod
    def mlp(cls, layer: int) -> Node:
        return cls("mlp", layer)

    @classmethod
    def feature(cls, layer: int, site: str, index: int) -> Node:
        return cls("feature", layer, site=site, index=index)

    @classmethod
    def error(cls, layer: int, site: str) -> Node:
        return cls("error", layer, site=site)

    @classmethod
    def parse(cls, name: str | Node) -> Node:
        """The node named `name` (see the module docstring); a `Node` passes through."""
        if isinstance(name, Node):
            return name
        name = str(name).strip()
        if name in ("embed", "logits"):
            return cls(name)
        if m := _HEAD.match(name):
            return cls.attn_head(int(m[1]), int(m[2]))
        if m := _MLP.match(name):
            return cls.mlp(int(m[1]))
        if m := _FEATURE.match(name):
            if m[4]:
                return cls.error(int(m[1]), m[2])
            return cls.feature(int(m[1]), m[2], int(m[3]))
        raise InterpError(
            f"cannot parse node name {name!r}: expected embed, logits, L<layer>.H<head>, MLP<layer>, "
            "L<layer>.<resid|attn|mlp>.F<index> or L<layer>.<resid|attn|mlp>.err"
        )

    # -- views ----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        if self.kind in ("embed", "logits"):
            return self.kind
        if self.kind == "head":
            return f"L{self.layer}.H{self.head}"
        if self.kind == "mlp":
            return f"MLP{self.layer}"
        if self.kind == "feature":
            return f"L{self.layer}.{self.site}.F{self.index}"
        return f"L{self.layer}.{self.site}.err"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Node({self.name!r})"

    def sort_key(self) -> tuple:
        """Order along the residual stream, then head / site / index: `sorted(nodes, key=Node.sort_key)`."""
        return (
            self.depth,
            self.head if self.head is not None else -1,
            self.site or "",
            self.index if self.index is not None else -1,
        )

    @property
    def depth(self) -> float:
        """Position along the residual stream, for layouts and ordering.

        embed = 0, heads of block l = 2l + 1, MLP l = 2l + 2, logits = +inf-like (a large number);
        SAE nodes sit just after the sublayer they read (attn: heads, mlp and resid: the MLP).
        """
        if self.kind == "embed":
            return 0.0
        if self.kind == "logits":
            return 1e9
        assert self.layer is not None
        if self.kind == "head":
            return 2 * self.layer + 1
        if self.kind == "mlp":
            return 2 * self.layer + 2
        offset = {"attn": 1.5, "mlp": 2.5, "resid": 2.75}[self.site or "resid"]
        return 2 * self.layer + offset


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
