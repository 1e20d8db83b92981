"""The table of tasks: name -> task class. Add a task by writing a module and adding one row."""

from __future__ import annotations

import dataclasses
from typing import Any

from interp.errors import InterpError, closest
from interp.tasks.base import Task
from interp.tasks.concepts import Concepts
from interp.tasks.facts import Facts
from interp.tasks.greater_than import GreaterThan
from interp.tasks.hierarchical_equality import HierarchicalEquality
from interp.tasks.induction import Induction
from interp.tasks.ioi import IOI

TASKS: dict[str, type[Task]] = {
    "ioi": IOI,
    "induction": Induction,
    "greater_than": GreaterThan,
    "hierarchical_equality": HierarchicalEquality,
    "facts": Facts,
    "concepts": Concepts,
}
# spellings people type, all mapping to a name in TASKS
ALIASES: dict[str, str] = {
    "greater-than": "greater_than",
    "hierarchical-equality": "hierarchical_equality",
    "hier_eq": "hierarchical_equality",
    "hier-eq": "hierarchical_equality",
}


def names() -> list[str]:
    """The registered task names.

    Example:
        >>> names()[:3]
        ['ioi', 'induction', 'greater_than']
    """
    return list(TASKS)


def get(name: str, **cfg: Any) -> Task:
    """The task `name`, configured by `cfg` (the fields of its dataclass).

    Example:
        >>> task = get("ioi", corruption="abc")
        >>> batch = task.generate(16, seed=0)
    """
    key = ALIASES.get(name, name)
    if key not in TASKS:
        near = closest(name, [*TASKS, *ALIASES])
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InterpError(f"unknown task {name!r}{hint}; tasks: {', '.join(TASKS)}")
    cls = TASKS[key]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(cfg) - fields)
    if unknown:
        raise InterpError(
            f"task {key!r} has no option {', '.join(unknown)}; options: {', '.join(sorted(fields))}"
        )
    return cls(**cfg)
