"""The `circuits` commands of the `interp` CLI, registered through the `interp.commands` entry point.

Each command lives in its own module under `circuits.commands` exposing `register(app)`; add a command
by writing a module and listing it in `COMMANDS`.
"""

from __future__ import annotations

import importlib

import typer

COMMANDS: tuple[str, ...] = (
    "circuits.commands.patch",
    "circuits.commands.trace",
    "circuits.commands.align",
    "circuits.commands.circuit",
    "circuits.commands.concepts",
    "circuits.commands.attribute",
)


def register(app: typer.Typer) -> None:
    """Add every command in `COMMANDS` to the `interp` app (called by `interp.cli`)."""
    for module_path in COMMANDS:
        importlib.import_module(module_path).register(app)
