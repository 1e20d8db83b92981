"""`interp zoo list` and `interp zoo train NAME`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _accuracy_cell(card: dict) -> str:
    parts = [f"{task} {acc:.1%}" for task, acc in card.get("accuracy", {}).items()]
    if "val_loss" in card:
        parts.append(f"val loss {card['val_loss']:.3f}")
    return ", ".join(parts)


def register(app: typer.Typer) -> None:
    zoo_app = typer.Typer(help="Small models shipped with the package.", no_args_is_help=True)
    app.add_typer(zoo_app, name="zoo")

    @zoo_app.command("list")
    def list_models(
        json_out: bool = typer.Option(False, "--json", help="Print the cards as one JSON object."),
    ) -> None:
        """Show every zoo model with its tasks and held-out accuracy."""
        from interp import zoo

        cards = {name: zoo.card(name) for name in zoo.names()}
        if json_out:
            typer.echo(json.dumps(cards, indent=2))
            return
        table = Table(title="interp zoo")
        for column in ("name", "tasks", "held-out accuracy / val loss", "params", "train s"):
            table.add_column(column)
        for name, card in cards.items():
            table.add_row(
                name,
                ", ".join(card.get("tasks", [])) or "text LM",
                _accuracy_cell(card),
                f"{card.get('n_params', 0) / 1e3:.0f}k",
                f"{card.get('train_seconds', 0):.0f}",
            )
        Console().print(table)

    @zoo_app.command("train")
    def train_model(
        name: str = typer.Argument(
            ..., help="A zoo name (see `interp zoo list`): every shipped model has a recipe."
        ),
        out: Path = typer.Option(None, "--out", help="Folder to write (default: ./zoo-models/NAME)."),
        seed: int = typer.Option(None, "--seed", min=0, help="Training seed (default: the recipe's)."),
        json_out: bool = typer.Option(False, "--json", help="Print the new card as JSON."),
    ) -> None:
        """Train (or, for a hand-set model, build) a zoo model from its recipe and write its folder."""
        from interp import zoo

        zoo.zoo_recipe(name)  # unknown names fail before any work
        folder = out if out is not None else Path("zoo-models") / name
        card = zoo.train(name, folder, seed=seed, progress=not json_out)
        if json_out:
            typer.echo(json.dumps(card, indent=2))
            return
        Console().print(
            f"[bold]{name}[/bold] (seed {card['seed']}) trained in {card['train_seconds']:.0f} s: "
            f"{_accuracy_cell(card)} -> [cyan]{folder}[/cyan]"
        )
