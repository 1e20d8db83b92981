"""Layout by layer: where each node of a circuit goes, what it is labelled, how it is coloured.

Rows run bottom to top along the residual stream (embedding at the bottom, logits at the top, one
row per sublayer kind per block: heads of block l, then MLP l, then SAE nodes after what they read);
within a row nodes are spread left to right by head / latent index and centred.

    >>> positions(circuit)["L1.H3"]   # (x, y) in node-width units
    (1.5, 3.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from circuits.graph.nodes import Node

if TYPE_CHECKING:
    from circuits.graph.circuit import Circuit

# fill colours per node kind (graphviz X11 names; matplotlib understands them as hex below)
FILL = {
    "embed": "#d9d9d9",
    "logits": "#d9d9d9",
    "head": "#c6dbef",
    "mlp": "#c7e9c0",
    "feature": "#fdd0a2",
    "error": "#fcbba1",
}
POSITIVE, NEGATIVE, UNSCORED = "#2166ac", "#b2182b", "#555555"


def label(node: Node) -> str:
    """The text drawn in a node: its name, with SAE nodes on two lines (`F23` over `L1 resid`)."""
    if node.kind == "feature":
        return f"F{node.index}\nL{node.layer} {node.site}"
    if node.kind == "error":
        return f"err\nL{node.layer} {node.site}"
    return node.name


def rows(circuit: Circuit) -> list[list[Node]]:
    """Nodes grouped by residual-stream depth, bottom row first, each row sorted."""
    by_depth: dict[float, list[Node]] = {}
    for node in circuit.nodes:
        by_depth.setdefault(node.depth, []).append(node)
    return [sorted(by_depth[d], key=Node.sort_key) for d in sorted(by_depth)]


def positions(circuit: Circuit) -> dict[str, tuple[float, float]]:
    """node name -> (x, y): y is the row, x spreads the row's nodes centred on 0."""
    out: dict[str, tuple[float, float]] = {}
    for y, row in enumerate(rows(circuit)):
        for i, node in enumerate(row):
            out[node.name] = (i - (len(row) - 1) / 2, float(y))
    return out


def edge_style(score: float | None, max_abs: float) -> tuple[str, float]:
    """(colour, width in points) of an edge: blue positive, red negative, width by |score|."""
    if score is None or max_abs <= 0:
        return UNSCORED, 1.0
    return (POSITIVE if score >= 0 else NEGATIVE), 0.6 + 3.4 * abs(score) / max_abs
