"""The table of high-level task models: task name -> builder. Add one by writing a module and a row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from circuits.abstraction.highlevel import facts, greater_than, hierarchical_equality, ioi
from circuits.abstraction.highlevel.base import TaskModel
from interp.errors import InterpError, closest
from interp.tasks.registry import ALIASES

HIGH_LEVEL: dict[str, Callable[..., TaskModel]] = {
    "hierarchical_equality": hierarchical_equality.build,
    "ioi": ioi.build,
    "greater_than": greater_than.build,
    "facts": facts.build,
}


def high_level(task: str, **options: Any) -> TaskModel:
    """The high-level model of `task` (an `interp.tasks` name or alias), built with `options`.

    Example:
        >>> tm = high_level("hier-eq")
        >>> tm.causal.intermediates
        ('left', 'right')
    """
    key = ALIASES.get(task, task)
    if key not in HIGH_LEVEL:
        near = closest(task, HIGH_LEVEL)
        raise InterpError(
            f"no high-level model for task {task!r}"
            + (f" (did you mean {', '.join(near)}?)" if near else "")
            + f"; high-level models: {', '.join(HIGH_LEVEL)}"
        )
    try:
        return HIGH_LEVEL[key](**options)
    except TypeError as exc:
        raise InterpError(f"bad options for the {key} high-level model: {exc}") from None
