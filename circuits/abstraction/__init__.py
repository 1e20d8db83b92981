"""Causal abstraction: high-level causal models, interchange interventions and IIA, alignment search
(DAS, Boundless DAS, non-linear maps) with random-model controls, (S)IIT training of ground-truth
models, and OOD-correctness prediction from aligned mechanisms.

    >>> from circuits.abstraction import high_level, counterfactuals, sweep, grid
    >>> tm = high_level("hierarchical_equality")
    >>> data = counterfactuals(tm, ["left"], n=256)
    >>> sweep(model, data, "left", grid(model, data, "hook_resid_post")).best()
"""

from circuits.abstraction.causal_model import CausalModel, Counterfactual
from circuits.abstraction.circuit import load_circuit, node_location, validate
from circuits.abstraction.das import SearchResult, random_control, search, train_map
from circuits.abstraction.data import Counterfactuals, counterfactuals
from circuits.abstraction.highlevel import HIGH_LEVEL, TaskModel, high_level
from circuits.abstraction.iia import IIAResult, accuracy, grid, iia, sweep
from circuits.abstraction.iit import IITConfig, evaluate_circuit, train_iit
from circuits.abstraction.maps import BoundlessRotation, CouplingFlow, Rotation
from circuits.abstraction.ood import OODConfig, OODResult, auroc, predict_ood
from circuits.abstraction.sites import Alignment, Interchange, Location
from circuits.configs import METHODS, SearchConfig

__all__ = [
    "HIGH_LEVEL",
    "METHODS",
    "Alignment",
    "BoundlessRotation",
    "CausalModel",
    "Counterfactual",
    "Counterfactuals",
    "CouplingFlow",
    "IITConfig",
    "IIAResult",
    "Interchange",
    "Location",
    "OODConfig",
    "OODResult",
    "Rotation",
    "SearchConfig",
    "SearchResult",
    "TaskModel",
    "accuracy",
    "auroc",
    "counterfactuals",
    "evaluate_circuit",
    "grid",
    "high_level",
    "iia",
    "load_circuit",
    "node_location",
    "predict_ood",
    "random_control",
    "search",
    "sweep",
    "train_iit",
    "train_map",
    "validate",
]
