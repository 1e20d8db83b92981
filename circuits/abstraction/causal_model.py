"""High-level causal models: variables with value sets, parents and mechanisms, and interventions on them.

A `CausalModel` is a finite acyclic structural causal model (Geiger et al., "Causal Abstraction for
Faithful Model Interpretation"). Input variables have no parents; every other variable has a
mechanism, a plain Python function of its parents' values (in the order `parents` lists them).
Running the model on an input setting evaluates the mechanisms in topological order; an
intervention fixes some variables to given values and cuts them off from their parents.

An *interchange intervention* sets variable V to the value it takes on another input (the source);
a *multi-source* interchange gives each intervened variable its own source:

    >>> cm = CausalModel(
    ...     values={"a": (0, 1), "b": (0, 1), "c": (0, 1, 2)},
    ...     parents={"c": ("a", "b")},
    ...     mechanisms={"c": lambda a, b: a + b},
    ... )
    >>> cm.run({"a": 1, "b": 0})["c"]
    1
    >>> cm.interchange({"a": 1, "b": 0}, {"b": {"a": 0, "b": 1}})["c"]  # b donated by the source
    2
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interp.errors import InterpError, closest

Setting = dict[str, Any]
"""A value for some variables, by name (a full setting has every variable)."""
Sampler = Callable[[np.random.Generator], Setting]


@dataclass(frozen=True)
class Counterfactual:
    """One multi-source interchange example: the base input, one source input per intervened variable,
    and the high-level model's counterfactual setting (every variable) after the interchange."""

    base: Setting
    sources: dict[str, Setting]
    setting: Setting
    output: Any
    """The value of the (first) output variable after the interchange."""


@dataclass(frozen=True)
class CausalModel:
    """A finite acyclic causal model; see the module docstring for the semantics.

    `values` lists every variable with its possible values (any hashable values). `parents` and
    `mechanisms` are given for non-input variables. `outputs` defaults to the variables nobody
    depends on. `sampler(rng) -> input setting` replaces the default (independent uniform inputs),
    e.g. to balance a rare intermediate value. Construction checks for cycles, missing or stray
    mechanisms and unknown names.

    Example:
        >>> cm = CausalModel({"x": (0, 1), "y": (0, 1)}, {"y": ("x",)}, {"y": lambda x: 1 - x})
        >>> cm.run({"x": 0}, interventions={"y": 0})
        {'x': 0, 'y': 0}
    """

    values: Mapping[str, Sequence[Hashable]]
    parents: Mapping[str, Sequence[str]] = field(default_factory=dict)
    mechanisms: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    sampler: Sampler | None = None
    check_values: bool = True
    """Check that every computed value lies in its variable's value set (off for huge value sets)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", {k: tuple(v) for k, v in self.values.items()})
        object.__setattr__(self, "parents", {k: tuple(v) for k, v in self.parents.items()})
        object.__setattr__(self, "mechanisms", dict(self.mechanisms))
        names = list(self.values)
        for what, table in (("parents", self.parents), ("mechanisms", self.mechanisms)):
            for var in table:
                self._known(var, f"{what} of")
        for var, pars in self.parents.items():
            for p in pars:
                self._known(p, f"parent of {var!r}:")
            if var not in self.mechanisms:
                raise InterpError(f"variable {var!r} has parents but no mechanism; add mechanisms[{var!r}]")
        for var in self.mechanisms:
            if not self.parents.get(var):
                raise InterpError(
                    f"variable {var!r} has a mechanism but no parents; list them in parents[{var!r}] "
                    "(input variables take their value from the input, not a mechanism)"
                )
        for var, vals in self.values.items():
            if not vals:
                raise InterpError(f"variable {var!r} has an empty value set")
        object.__setattr__(self, "_order", _topological_order(names, self.parents))
        outputs = self.outputs or tuple(v for v in names if not any(v in p for p in self.parents.values()))
        for var in outputs:
            self._known(var, "output")
        object.__setattr__(self, "outputs", tuple(outputs))

    def _known(self, var: str, what: str) -> None:
        if var not in self.values:
            hint = closest(var, self.values)
            raise InterpError(
                f"{what} unknown variable {var!r}"
                + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                + f"; variables: {', '.join(self.values)}"
            )

    # -- structure -----------------------------------------------------------------------------
    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable, in topological order (inputs first)."""
        return self._order  # type: ignore[attr-defined]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Variables without parents."""
        return tuple(v for v in self.variables if not self.parents.get(v))

    @property
    def intermediates(self) -> tuple[str, ...]:
        """Variables that are neither inputs nor outputs."""
        return tuple(v for v in self.variables if self.parents.get(v) and v not in self.outputs)

    def ancestors(self, var: str) -> set[str]:
        """Every variable `var` depends on, directly or not."""
        self._known(var, "ancestors of")
        seen: set[str] = set()
        stack = list(self.parents.get(var, ()))
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(self.parents.get(p, ()))
        return seen

    # -- running -------------------------------------------------------------------------------
    def run(self, inputs: Mapping[str, Any], interventions: Mapping[str, Any] | None = None) -> Setting:
        """The full setting for `inputs`, with `interventions` (variable -> value) held fixed.

        Example:
            >>> cm.run({"a": 1, "b": 1}, interventions={"c": 0})["c"]
            0
        """
        interventions = dict(interventions or {})
        for var, value in interventions.items():
            self._known(var, "intervention on")
            self._check_value(var, value)
        setting: Setting = {}
        for var in self.variables:
            if var in interventions:
                setting[var] = interventions[var]
            elif not self.parents.get(var):
                if var not in inputs:
                    raise InterpError(
                        f"input variable {var!r} has no value; inputs: {', '.join(self.inputs)}"
                    )
                setting[var] = inputs[var]
                self._check_value(var, setting[var])
            else:
                setting[var] = self.mechanisms[var](*(setting[p] for p in self.parents[var]))
                self._check_value(var, setting[var])
        return setting

    def _check_value(self, var: str, value: Any) -> None:
        if self.check_values and value not in self.values[var]:
            shown = ", ".join(map(repr, self.values[var][:8])) + (
                ", ..." if len(self.values[var]) > 8 else ""
            )
            raise InterpError(f"value {value!r} is not in the value set of {var!r} ({shown})")

    def interchange(self, base: Mapping[str, Any], sources: Mapping[str, Mapping[str, Any]]) -> Setting:
        """Multi-source interchange: each variable in `sources` takes the value it has on its own source
        input; everything else is computed from `base`.

        Example:
            >>> cm.interchange(base, {"left": source_1, "right": source_2})["output"]
        """
        fixed = {var: self.run(src)[var] for var, src in sources.items()}
        return self.run(base, fixed)

    # -- sampling ------------------------------------------------------------------------------
    def sample_input(self, rng: np.random.Generator) -> Setting:
        """One input setting: from `sampler` if given, else each input uniformly from its value set."""
        if self.sampler is not None:
            drawn = self.sampler(rng)
            return {var: drawn[var] for var in self.inputs}
        return {var: self.values[var][int(rng.integers(len(self.values[var])))] for var in self.inputs}

    def sample_counterfactuals(
        self,
        n: int,
        variables: Sequence[str],
        seed: int = 0,
        *,
        changes: bool | None = None,
        balance: bool = True,
        max_tries: int = 200,
    ) -> list[Counterfactual]:
        """`n` (base, sources) examples where each of `variables` gets its own freshly sampled source.

        `changes=True` keeps only examples whose first output differs from the base's (the interchange
        matters), `changes=False` only those where it does not, None either. `balance` draws the
        counterfactual output round-robin over its values where possible, so that a constant guess
        scores at chance, not at the majority rate.

        Example:
            >>> data = cm.sample_counterfactuals(64, ["left"], seed=0)
            >>> data[0].base, data[0].sources["left"], data[0].setting["output"]
        """
        for var in variables:
            self._known(var, "interchange on")
            if not self.parents.get(var) and var not in self.inputs:
                raise InterpError(f"cannot interchange {var!r}")
        rng = np.random.default_rng(seed)
        out_var = self.outputs[0]
        targets = list(dict.fromkeys(self.values[out_var])) if balance else []
        examples: list[Counterfactual] = []
        misses = 0
        while len(examples) < n:
            base = self.sample_input(rng)
            sources = {var: self.sample_input(rng) for var in variables}
            setting = self.interchange(base, sources)
            ok = changes is None or (setting[out_var] != self.run(base)[out_var]) == changes
            want = targets[len(examples) % len(targets)] if targets and misses < max_tries else None
            if ok and (want is None or setting[out_var] == want):
                examples.append(Counterfactual(base, sources, setting, setting[out_var]))
                misses = 0
            else:
                misses += 1
                if misses > 50 * max_tries:
                    raise InterpError(
                        f"could not sample counterfactuals for {list(variables)} with changes={changes}"
                    )
        return examples

    def with_mechanisms(self, **mechanisms: Callable[..., Any]) -> CausalModel:
        """A copy with some mechanisms replaced (e.g. a wrong hypothesis to test against)."""
        return dataclasses.replace(self, mechanisms={**self.mechanisms, **mechanisms})


def _topological_order(names: Sequence[str], parents: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Kahn's algorithm, stable in the order `names` lists variables; raises on a cycle."""
    remaining = {v: set(parents.get(v, ())) for v in names}
    order: list[str] = []
    while remaining:
        ready = [v for v in names if v in remaining and not remaining[v]]
        if not ready:
            cycle = _find_cycle(remaining)
            raise InterpError(
                "the causal model has a cycle: " + " -> ".join(cycle) + "; CausalModel needs an acyclic graph"
            )
        for v in ready:
            order.append(v)
            del remaining[v]
        for deps in remaining.values():
            deps.difference_update(ready)
    return tuple(order)


def _find_cycle(remaining: Mapping[str, set[str]]) -> list[str]:
    start = next(iter(remaining))
    path, seen = [start], {start}
    while True:
        nxt = next(iter(remaining[path[-1]]))
        if nxt in seen:
            return path[path.index(nxt) :] + [nxt]
        path.append(nxt)
        seen.add(nxt)
