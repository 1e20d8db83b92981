"""Ground-truth circuit files: schema, node names, and the hooks each node stands for.

A ground-truth circuit is stored beside a zoo model's weights as JSON (the file the model card names
under the key `circuit`):

    {
      "nodes": ["embed", "L0.H1", "MLP0", "logits"],
      "edges": [["embed", "L0.H1"], ["L0.H1", "MLP0"], ["MLP0", "logits"]],
      "alignment": {"year": {"node": "L0.H1", "position": "END"}, ...},   # optional
      "position": "END"                                                     # optional
    }

Node names: `embed` (token + position embeddings), `L{layer}.H{head}` (one attention head, its
`blocks.{layer}.attn.hook_z` slice), `MLP{layer}` (`blocks.{layer}.hook_mlp_out`), `logits` (the
unembedding). Edges are [sender, receiver] pairs; a sender is always earlier in the forward pass
than its receiver (embed < layer 0 heads < MLP0 < layer 1 heads < ... < logits). Nodes are
position-agnostic: a node is in the circuit if it matters at any position. `alignment` (when
present) says which high-level variable each circuit node implements, and at which named position;
these are the locations where IIT trained the variables, so they are where IIA should be ~1.

    >>> circuit = load_circuit("interp/zoo/models/greater-than-siit/circuit.json")
    >>> validate(circuit, n_layers=2, n_heads=4)
    >>> node_location("L0.H1", "END")
    Location(hook='blocks.0.attn.hook_z', position='END', head=1)
"""

from __future__ import annotations

import json
from pathlib import Path

from circuits.abstraction.sites import Location
from circuits.graph.nodes import Node
from interp.errors import InterpError


def _parse(node: str) -> Node | None:
    try:
        return Node.parse(node)
    except InterpError:
        return None


def node_location(node: str, position: str | int = "END") -> Location:
    """The location of a head or MLP node at `position` (embed and logits have none)."""
    parsed = _parse(node)
    if parsed is None or parsed.kind not in ("head", "mlp"):
        raise InterpError(f"node {node!r} is not a head (L{{layer}}.H{{head}}) or an MLP (MLP{{layer}})")
    return Location(str(parsed.hook), position, parsed.head)


def split_node(spec: str, position: str = "END") -> tuple[str, str]:
    """`"MLP0@X"` -> ("MLP0", "X"); a bare node name takes `position`."""
    node, _, pos = spec.partition("@")
    return node, pos or position


def order(node: str, n_layers: int) -> float:
    """Position of `node` in the forward pass (for checking edge direction)."""
    parsed = _parse(node)
    if parsed is None or parsed.kind in ("feature", "error"):
        raise InterpError(f"bad node name {node!r}; use embed, L{{layer}}.H{{head}}, MLP{{layer}} or logits")
    if parsed.layer is None:
        return -1.0 if parsed.kind == "embed" else float(n_layers)
    return parsed.layer + (0.5 if parsed.kind == "mlp" else 0.0)


def all_nodes(n_layers: int, n_heads: int) -> list[str]:
    """Every node of a model, in forward order."""
    nodes = ["embed"]
    for layer in range(n_layers):
        nodes += [Node.attn_head(layer, h).name for h in range(n_heads)] + [Node.mlp(layer).name]
    return nodes + ["logits"]


def validate(circuit: dict, n_layers: int, n_heads: int) -> None:
    """Raise `InterpError` unless `circuit` follows the schema and names only nodes the model has."""
    if (
        not isinstance(circuit, dict)
        or not isinstance(circuit.get("nodes"), list)
        or not isinstance(circuit.get("edges"), list)
    ):
        raise InterpError("a circuit is a JSON object with lists 'nodes' and 'edges'")
    known = set(all_nodes(n_layers, n_heads))
    nodes = circuit["nodes"]
    for node in nodes:
        if node not in known:
            raise InterpError(
                f"circuit node {node!r} does not exist in a model with {n_layers} layers and {n_heads} heads"
            )
    for edge in circuit["edges"]:
        if not (isinstance(edge, list | tuple) and len(edge) == 2):
            raise InterpError(f"circuit edge {edge!r} is not a [sender, receiver] pair")
        a, b = edge
        if a not in nodes or b not in nodes:
            raise InterpError(f"circuit edge {edge!r} names a node missing from 'nodes'")
        if order(a, n_layers) >= order(b, n_layers):
            raise InterpError(f"circuit edge {edge!r} points backwards in the forward pass")
    for var, spec in circuit.get("alignment", {}).items():
        if spec.get("node") not in nodes:
            raise InterpError(
                f"alignment of {var!r} names node {spec.get('node')!r}, which is not in the circuit"
            )


def circuit_dict(edges: list[tuple[str, str]], alignment: dict[str, str], position: str = "END") -> dict:
    """A circuit in the file schema from its edges and variable -> node (or `node@POSITION`)
    alignment; nodes in forward order."""
    names = {n for e in edges for n in e}
    nodes = sorted(names, key=lambda n: (order(n, 10**6), n))
    spec = {v: split_node(n, position) for v, n in alignment.items()}
    return {
        "nodes": nodes,
        "edges": [list(e) for e in edges],
        "alignment": {v: {"node": n, "position": p} for v, (n, p) in spec.items()},
        "position": position,
    }


def load_circuit(path: str | Path) -> dict:
    """Read a circuit file (no validation against a model; see `validate`)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InterpError(f"cannot read circuit file {path}: {exc}") from exc
