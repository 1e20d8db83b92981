"""`interp.options`: a config dataclass's fields become typer options (default and help written once)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import typer
from typer.testing import CliRunner

from interp.errors import InterpError
from interp.options import Flag, field_help, from_config, split_list


@dataclass(frozen=True)
class Base:
    seed: int = 0
    """Seed of everything."""


@dataclass(frozen=True)
class Cfg(Base):
    task: str = ""
    """Task name,
    over two lines."""
    formats: tuple[str, ...] = ("json", "dot")
    """Export formats."""
    places: tuple[str, ...] = ()
    """Places to look."""
    control: bool = True
    """Run the control."""
    ratio: float | None = field(default=None, metadata={"help": "From metadata."})


def test_help_comes_from_the_docstring_under_each_field_or_its_metadata():
    assert field_help(Cfg) == {
        "seed": "Seed of everything.",
        "task": "Task name, over two lines.",
        "formats": "Export formats.",
        "places": "Places to look.",
        "control": "Run the control.",
        "ratio": "From metadata.",
    }


def _app() -> typer.Typer:
    app = typer.Typer()
    flags = {
        "formats": Flag("--format"),
        "places": Flag("--place", repeat=True),
        "control": Flag(" /--no-control", help="Skip the control."),
        "seed": Flag(min=0),
    }

    @app.command()
    @from_config(Cfg, "cfg", flags=flags)
    def run(cfg: Cfg, name: str = typer.Argument(...), loud: bool = typer.Option(False, "--loud")) -> None:
        """Run it."""
        print(repr((name, cfg, loud)))

    @app.command()
    def other() -> None:
        """A second command, so `run` keeps its name."""

    return app


def test_options_have_the_field_defaults_and_build_the_config():
    runner = CliRunner()
    out = runner.invoke(_app(), ["run", "x"]).output
    assert repr(("x", Cfg(), False)) in out
    argv = [
        "run",
        "x",
        "--format",
        "svg, png",
        "--place",
        "a",
        "--place",
        "b",
        "--no-control",
        "--ratio",
        "0.5",
    ]
    out = runner.invoke(_app(), [*argv, "--seed", "3", "--task", "ioi", "--loud"]).output
    want = Cfg(seed=3, task="ioi", formats=("svg", "png"), places=("a", "b"), control=False, ratio=0.5)
    assert repr(("x", want, True)) in out
    assert runner.invoke(_app(), ["run", "x", "--seed", "-1"]).exit_code == 2
    help_text = " ".join(runner.invoke(_app(), ["run", "--help"]).output.split())
    for text in ("Seed of everything.", "Task name, over two lines.", "From metadata.", "Skip the control."):
        assert text in help_text


def test_split_list_is_the_one_comma_list_parser():
    assert split_list(" a, b ,,c ") == ("a", "b", "c") and split_list(None) == ()
    assert split_list("png,svg", ("png", "svg"), "--format") == ("png", "svg")
    with pytest.raises(InterpError, match="--format: gif is not one of png, svg"):
        split_list("png,gif", ("png", "svg"), "--format")
    with pytest.raises(InterpError, match=r"\(empty\)"):
        split_list(" , ", ("png",), "--format")
