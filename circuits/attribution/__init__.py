"""Attribution graphs over transcoder sets: replacement model, graph, pruning, checking, export.

>>> from circuits.attribution import ReplacementModel, attribute, prune
>>> graph = attribute(ReplacementModel(model, transcoder_set), "To be, or not to be")  # doctest: +SKIP
"""

from circuits.attribution.checking import check_interventions
from circuits.attribution.export import to_circuit, viewer_json
from circuits.attribution.graph import AttributionGraph, attribute
from circuits.attribution.pruning import node_influence, prune, scores
from circuits.attribution.replacement import ReplacementModel, Snapshot, TranscoderMismatchError

__all__ = [
    "AttributionGraph",
    "ReplacementModel",
    "Snapshot",
    "TranscoderMismatchError",
    "attribute",
    "check_interventions",
    "node_influence",
    "prune",
    "scores",
    "to_circuit",
    "viewer_json",
]
