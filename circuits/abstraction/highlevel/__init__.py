"""High-level causal models of the zoo tasks, one small module each, in a table (`registry`)."""

from circuits.abstraction.highlevel.base import TaskModel
from circuits.abstraction.highlevel.registry import HIGH_LEVEL, high_level

__all__ = ["HIGH_LEVEL", "TaskModel", "high_level"]
