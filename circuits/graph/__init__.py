"""Circuit graphs: one `Circuit` type (nodes, edges, scores, metadata) and its exports.

>>> from circuits.graph import Circuit
>>> c = Circuit.from_edges([("embed", "L0.H0"), ("L0.H0", "logits")], scores=[1.0, 0.5])
>>> c.export("out", ["json", "dot", "graphml", "tikz", "svg"])
"""

from circuits.graph.circuit import SCHEMA, Circuit, as_edge
from circuits.graph.export import FORMATS, check_format, renderer
from circuits.graph.nodes import Edge, Node

__all__ = ["FORMATS", "SCHEMA", "Circuit", "Edge", "Node", "as_edge", "check_format", "renderer"]
