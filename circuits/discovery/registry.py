"""The table of discovery methods: name -> `Method` (function, config class, what it scores).

Every method has the same signature, `(model, data, config) -> EdgeScores`; `discover` looks the
name up, builds the config from keyword overrides, and runs it. Add a method by writing a module
with a frozen config dataclass and a function, and adding one row to `METHODS`.

    >>> scores = discover(model, data, "eap-ig", steps=10)
    >>> [m.name for m in METHODS.values()]
    ['acdc', 'eap', 'eap-ig', 'node', 'features']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from circuits.discovery.features import FeatureCircuitConfig, feature_circuit
from circuits.discovery.methods.acdc import ACDCConfig, acdc
from circuits.discovery.methods.eap import EAPConfig, eap
from circuits.discovery.methods.eap_ig import EAPIGConfig, eap_ig
from circuits.discovery.methods.node_attribution import NodeAttributionConfig, node_attribution
from circuits.discovery.scores import EdgeScores
from interp import HookedModel
from interp.errors import InterpError, closest


@dataclass(frozen=True)
class Method:
    """One discovery method."""

    name: str
    run: Callable[[HookedModel, Any, Any], EdgeScores]
    config: type
    level: str
    """"edge" (scores every edge), "node" (scores nodes; edge scores derived) or "feature" (SAE features)."""
    summary: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("acdc", acdc, ACDCConfig, "edge", "edge pruning by a metric threshold, one forward per edge"),
        Method("eap", eap, EAPConfig, "edge", "edge attribution patching: one forward+backward"),
        Method("eap-ig", eap_ig, EAPIGConfig, "edge", "EAP with integrated gradients over the input"),
        Method(
            "node", node_attribution, NodeAttributionConfig, "node", "attribution patching on heads and MLPs"
        ),
        Method(
            "features",
            feature_circuit,
            FeatureCircuitConfig,
            "feature",
            "sparse feature circuits over SAE latents",
        ),
    )
}


def get(name: str) -> Method:
    """The method registered as `name` (an `InterpError` listing the methods otherwise)."""
    if name not in METHODS:
        near = closest(name, METHODS)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InterpError(f"unknown discovery method {name!r}{hint}; methods: {', '.join(METHODS)}")
    return METHODS[name]


def make_config(name: str, config: Any = None, **overrides: Any) -> Any:
    """The config of method `name`: `config` (or the defaults) with `overrides` applied."""
    method = get(name)
    if config is not None and not isinstance(config, method.config):
        raise InterpError(f"method {name!r} takes a {method.config.__name__}, got {type(config).__name__}")
    fields = {f.name for f in dataclasses.fields(method.config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise InterpError(
            f"method {name!r} has no option {', '.join(unknown)}; options: {', '.join(sorted(fields))}"
        )
    base = config if config is not None else method.config()
    return dataclasses.replace(base, **overrides) if overrides else base


def discover(
    model: HookedModel, data: Any, method: str = "eap", config: Any = None, **overrides: Any
) -> EdgeScores:
    """Run discovery method `method` on `data` (a `CircuitData` or `TaskBatch`).

    Example:
        >>> scores = discover(model, interp.tasks.get("ioi").generate(32), "eap", ablation="mean")
    """
    return get(method).run(model, data, make_config(method, config, **overrides))
