"""The descriptor every estimator module exports as `METHOD`; `circuits.concepts.registry` lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from circuits.concepts.data import Edits
from interp import HookedModel
from interp.tasks.concepts import ConceptSample

# (model, edits to explain, concept-labelled training sample or None, the method's config) -> [edit, label]
EstimateFn = Callable[[HookedModel, Edits, "ConceptSample | None", Any], Tensor]


@dataclass(frozen=True)
class Method:
    """One ICaCE estimator: a name, its frozen config class, and `estimate`.

    Example:
        >>> m = registry.get("leace")
        >>> effects = m.estimate(model, edits, train, m.config())  # [edit, label]
    """

    name: str
    """Registry key (what `--methods` takes)."""
    config: type
    """Frozen dataclass of the method's options; `config()` gives the defaults."""
    estimate: EstimateFn
    """Estimated ICaCE vectors, one per edit, without looking at the true counterfactuals."""
    needs_train: bool
    """Whether `estimate` needs concept-labelled training examples."""
    summary: str
    """One line for tables and `--help`."""
