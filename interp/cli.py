"""The `interp` command line.

Commands of the `interp` package are listed in `_BUILTIN_COMMANDS`; `saes`, `circuits` and third-party
packages add theirs through the `interp.commands` entry-point group, each entry pointing at a
`register(app: typer.Typer) -> None` function. That keeps the dependency direction one way:
this module never imports `saes` or `circuits`.

Start-up stays fast (`interp --help` imports no torch): command modules import what they need when
they run, and `main` sets the CPU thread policy (`interp.threads`) before anything imports torch.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from importlib.metadata import entry_points

import typer

from interp.errors import InterpError
from interp.threads import apply_thread_policy

app = typer.Typer(
    name="interp",
    help="Mechanistic interpretability for Hugging Face transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# module path -> each exposes `register(app)`; order is the order in `interp --help`.
_BUILTIN_COMMANDS: tuple[str, ...] = (
    "interp.commands.demo",
    "interp.commands.zoo",
    "interp.commands.eval",
    "interp.commands.bench",
    "interp.commands.view",
)


def _register_all() -> None:
    for module_path in _BUILTIN_COMMANDS:
        importlib.import_module(module_path).register(app)
    for entry in entry_points(group="interp.commands"):
        entry.load()(app)


@app.callback()
def _root() -> None:
    """Mechanistic interpretability for Hugging Face transformers."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Usage errors are click's (exit 2); library errors on bad input become one red
    line and exit code 2, never a traceback."""
    apply_thread_policy()
    _quiet_weight_loading()
    _register_all()
    try:
        app(args=argv, prog_name="interp")
    except InterpError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:  # a full disk or a folder that became read-only mid-run: one line, not a traceback
        if exc.errno not in _DISK_ERRORS:
            raise
        from rich.console import Console

        where = f" writing {exc.filename}" if exc.filename else ""
        Console(stderr=True).print(
            f"[red]error:[/red] {exc.strerror}{where}; free space or write elsewhere",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})


def _quiet_weight_loading() -> None:
    """Weight-loading bars would drown the CLI's own output; without importing transformers."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    else:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


if __name__ == "__main__":
    main()
