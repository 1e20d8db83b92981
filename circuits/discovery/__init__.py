"""Circuit discovery: a model's computational graph, methods that score its edges, and checks of
the circuits they find.

    >>> from circuits import discovery
    >>> data = discovery.CircuitData.from_task(interp.tasks.get("ioi").generate(32, seed=0))
    >>> scores = discovery.discover(model, data, "eap-ig", steps=5)       # EdgeScores
    >>> circuit = scores.to_circuit(top_n=30)                             # circuits.graph.Circuit
    >>> discovery.faithfulness(model, data, circuit, ablation="mean").faithfulness
"""

from circuits.discovery.compgraph import ComputationalGraph, Dest
from circuits.discovery.data import ABLATIONS, Ablation, CircuitData, ablate, ablation_sources, as_data
from circuits.discovery.evaluation import auroc_table, edge_auroc, node_auroc, roc_curve, true_circuit
from circuits.discovery.faithfulness import (
    Faithfulness,
    FaithfulnessCurve,
    circuit_metrics,
    faithfulness,
    faithfulness_curve,
)
from circuits.discovery.features import FeatureCircuitConfig, feature_circuit
from circuits.discovery.methods.acdc import ACDCConfig, acdc
from circuits.discovery.methods.eap import EAPConfig, eap
from circuits.discovery.methods.eap_ig import EAPIGConfig, eap_ig
from circuits.discovery.methods.node_attribution import NodeAttributionConfig, node_attribution
from circuits.discovery.registry import METHODS, Method, discover, make_config
from circuits.discovery.scores import EdgeScores
from circuits.discovery.shift import ablate_features, shift_effect
from circuits.graph import Circuit, Edge, Node

__all__ = [
    "ABLATIONS",
    "Ablation",
    "ACDCConfig",
    "Circuit",
    "CircuitData",
    "ComputationalGraph",
    "Dest",
    "EAPConfig",
    "EAPIGConfig",
    "Edge",
    "EdgeScores",
    "Faithfulness",
    "FaithfulnessCurve",
    "FeatureCircuitConfig",
    "METHODS",
    "Method",
    "Node",
    "NodeAttributionConfig",
    "ablate",
    "ablate_features",
    "ablation_sources",
    "acdc",
    "as_data",
    "edge_auroc",
    "auroc_table",
    "circuit_metrics",
    "discover",
    "eap",
    "eap_ig",
    "faithfulness",
    "faithfulness_curve",
    "feature_circuit",
    "make_config",
    "node_attribution",
    "node_auroc",
    "roc_curve",
    "shift_effect",
    "true_circuit",
]
