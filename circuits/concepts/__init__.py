"""Concept-level causal explanations, each scored against exact structural counterfactuals.

Ask how much a concept (a review's food, service, price, ambiance) causes a model's output: every
method in `registry.METHODS` (INLP, LEACE, CausaLM, causal proxy model, steering, a DAS subspace,
SAE features, matched examples) estimates the individual causal concept effect (ICaCE) of each edit
without the counterfactual text, and `explain` scores it against the effect measured on the true
counterfactual (ICaCE error).

    >>> from circuits.concepts import ExplainConfig, explain, resolve_model
    >>> report = explain(resolve_model("concepts-tiny"), ExplainConfig(methods=("leace", "cpm", "matched")))
    >>> report.to_dict()["methods"]["cpm"]["icace_error"]
"""

from circuits.concepts.data import Edits, all_edits, output_dist, true_icace
from circuits.concepts.explain import ConceptReport, ExplainConfig, explain, resolve_model
from circuits.concepts.registry import METHODS, get, names
from circuits.concepts.scoring import metrics

__all__ = [
    "METHODS",
    "ConceptReport",
    "Edits",
    "ExplainConfig",
    "all_edits",
    "explain",
    "get",
    "metrics",
    "names",
    "output_dist",
    "resolve_model",
    "true_icace",
]
