"""Editing a model's behaviour: hook edits (ablations, steering vectors) and weight edits of one MLP
(ROME-style rank-one insertion, DAMA-style projection), each applied for a `with` block and judged by
efficacy and by what it broke (`evaluate_edit`).

    >>> from circuits import editing
    >>> with editing.steer("blocks.1.hook_resid_post", v, coeff=3.0).applied(model):
    ...     logits = model(tokens)
"""

from circuits.editing.evaluate import EditReport, Probe, evaluate_edit
from circuits.editing.hooks import HookEdit, ablation
from circuits.editing.projection import ProjectionEdit, component_along, direction_from_pairs
from circuits.editing.rome import EditRequest, RankOneEdit, RomeConfig, key_covariance, rome_edit
from circuits.editing.steering import steer, steering_vector
from circuits.editing.weights import OutputProjection, WeightEdit

__all__ = [
    "EditReport",
    "EditRequest",
    "HookEdit",
    "OutputProjection",
    "Probe",
    "ProjectionEdit",
    "RankOneEdit",
    "RomeConfig",
    "WeightEdit",
    "ablation",
    "component_along",
    "direction_from_pairs",
    "evaluate_edit",
    "key_covariance",
    "rome_edit",
    "steer",
    "steering_vector",
]
