"""`Circuit`: the one result type of circuit discovery -- nodes, edges, scores and metadata.

JSON schema (`Circuit.to_json`, read back by `Circuit.from_json`):

```json
{
  "schema": "interp-toolkit/circuit",
  "version": 1,
  "nodes": [{"name": "L0.H1", "kind": "head", "layer": 0, "head": 1, "score": 0.42}, ...],
  "edges": [{"src": "embed", "dst": "L0.H1", "qkv": null, "score": -1.3}, ...],
  "metadata": {"method": "eap", "model": "ioi-tiny", ...}
}
```

- `nodes[].name` follows `circuits.graph.nodes` (`embed`, `L{l}.H{h}`, `MLP{l}`, `logits`, SAE nodes
  `L{l}.{site}.F{i}` / `L{l}.{site}.err`); `kind`, `layer`, `head` are derived from the name and
  written for readers in other languages; `score` is optional (null when unscored).
- `edges[].qkv` is `"q"`, `"k"`, `"v"` or null; `score` is optional. Every edge endpoint is a node.
- `metadata` is free-form JSON.

`from_json` also reads the short form used by model cards (`{"nodes": ["embed", "L0.H1", ...],
"edges": [["embed", "L0.H1"], ...]}`), so a ground-truth circuit loads the same way.

    >>> c = Circuit.from_edges([("embed", "L0.H0"), ("L0.H0", "logits")], scores=[1.0, 0.5])
    >>> Circuit.from_json(c.to_json()) == c
    True
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuits.graph import export as _export
from circuits.graph.nodes import Edge, Node
from interp.errors import InterpError

SCHEMA = "interp-toolkit/circuit"
VERSION = 1
EdgeLike = Edge | str | tuple[str, str] | tuple[str, str, str | None] | Sequence[str]


def as_edge(value: EdgeLike) -> Edge:
    """An `Edge` from an `Edge`, `"src->dst"`, `(src, dst)` or `(src, dst, qkv)`."""
    if isinstance(value, Edge):
        return value
    if isinstance(value, str):
        return Edge.parse(value)
    parts = list(value)
    if len(parts) not in (2, 3):
        raise InterpError(f"an edge is (src, dst) or (src, dst, qkv), got {value!r}")
    return Edge.of(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        raise InterpError(f"scores must be finite to export, got {x}")
    return x


@dataclass(frozen=True)
class Circuit:
    """A subgraph of a model's computational graph.

    `nodes` are sorted along the residual stream; every edge endpoint is a node. `edge_scores` and
    `node_scores` may cover only some of them (or none). Scores are in the unit of the metric the
    method used (e.g. change in logit difference); larger magnitude means more important.
    """

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    edge_scores: Mapping[Edge, float] = field(default_factory=dict)
    node_scores: Mapping[Node, float] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = {Node.parse(n) for n in self.nodes}
        edges = tuple(dict.fromkeys(as_edge(e) for e in self.edges))
        for e in edges:
            nodes.update(e.pair)
        object.__setattr__(self, "nodes", tuple(sorted(nodes, key=Node.sort_key)))
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "edge_scores", {as_edge(e): float(s) for e, s in self.edge_scores.items()})
        object.__setattr__(
            self, "node_scores", {Node.parse(n): float(s) for n, s in self.node_scores.items()}
        )
        object.__setattr__(self, "metadata", dict(self.metadata))
        unknown = [str(e) for e in self.edge_scores if e not in set(edges)]
        if unknown:
            raise InterpError(f"edge_scores name edges not in the circuit: {', '.join(unknown[:5])}")

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_edges(
        cls,
        edges: Iterable[EdgeLike],
        scores: Sequence[float] | None = None,
        nodes: Iterable[str | Node] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Circuit:
        """A circuit from edges (and optionally one score per edge, in the same order)."""
        edges = [as_edge(e) for e in edges]
        edge_scores = {} if scores is None else dict(zip(edges, scores, strict=True))
        return cls(tuple(Node.parse(n) for n in nodes), tuple(edges), edge_scores, {}, metadata or {})

    def __len__(self) -> int:
        return len(self.edges)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Node):
            return item in set(self.nodes)
        return as_edge(item) in set(self.edges)  # type: ignore[arg-type]

    def edge_pairs(self) -> set[tuple[Node, Node]]:
        """(src, dst) of every edge, q/k/v channels merged."""
        return {e.pair for e in self.edges}

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict described in the module docstring."""
        nodes = [
            {
                "name": n.name,
                "kind": n.kind,
                "layer": n.layer,
                "head": n.head,
                "score": _finite(self.node_scores.get(n)),
            }
            for n in self.nodes
        ]
        edges = [
            {"src": e.src.name, "dst": e.dst.name, "qkv": e.qkv, "score": _finite(self.edge_scores.get(e))}
            for e in self.edges
        ]
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "nodes": nodes,
            "edges": edges,
            "metadata": dict(self.metadata),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Circuit:
        """Read the full schema or the card short form (lists of names / name pairs)."""
        if not isinstance(data, Mapping) or "edges" not in data:
            raise InterpError("a circuit JSON object needs an 'edges' list (see circuits.graph.circuit)")
        if data.get("schema", SCHEMA) != SCHEMA or int(data.get("version", VERSION)) > VERSION:
            raise InterpError(
                f"unsupported circuit schema {data.get('schema')!r} version {data.get('version')!r}; "
                f"this toolkit reads {SCHEMA} version <= {VERSION}"
            )
        nodes, node_scores = [], {}
        for entry in data.get("nodes", []):
            name = entry["name"] if isinstance(entry, Mapping) else entry
            node = Node.parse(name)
            nodes.append(node)
            if isinstance(entry, Mapping) and entry.get("score") is not None:
                node_scores[node] = float(entry["score"])
        edges, edge_scores = [], {}
        for entry in data["edges"]:
            if isinstance(entry, Mapping):
                edge = Edge.of(entry["src"], entry["dst"], entry.get("qkv"))
                if entry.get("score") is not None:
                    edge_scores[edge] = float(entry["score"])
            else:
                edge = as_edge(entry)
            edges.append(edge)
        return cls(tuple(nodes), tuple(edges), edge_scores, node_scores, data.get("metadata", {}))

    @classmethod
    def from_json(cls, text: str) -> Circuit:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InterpError(f"circuit JSON does not parse: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Circuit:
        """Read a circuit JSON file (full schema or card short form)."""
        path = Path(path)
        if not path.is_file():
            raise InterpError(f"no circuit file at {path}")
        return cls.from_json(path.read_text())

    # -- exports (see circuits.graph.export) ---------------------------------------------------------
    def to_networkx(self):
        """A `networkx.DiGraph`: node attributes kind/layer/head/score/label, edge attributes qkv/score.

        Parallel q/k/v edges between the same pair are merged into one graph edge whose `qkv` lists
        the channels and whose `score` is the largest-magnitude one.
        """
        return _export.to_networkx(self)

    def to_dot(self) -> str:
        return _export.to_dot(self)

    def to_graphml(self) -> str:
        return _export.to_graphml(self)

    def to_tikz(self) -> str:
        return _export.to_tikz(self)

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write one file; the format is `format` or the suffix of `path`
        (json, dot, graphml, tex/tikz, svg, pdf, png). Written atomically."""
        return _export.save(self, path, format)

    def export(
        self, directory: str | Path, formats: Iterable[str] = ("json", "dot"), stem: str = "circuit"
    ) -> list[Path]:
        """Write `directory/stem.<ext>` for each format; returns the paths written."""
        return _export.export(self, directory, formats, stem)
