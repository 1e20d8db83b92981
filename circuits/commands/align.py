"""`interp align MODEL --task TASK --method das|boundless|nonlinear --out DIR`: alignment search with a
random-model control, written as result.json plus figures (see `circuits.abstraction.report`). Its options
are fields of `AlignOptions` (where to look) and `SearchConfig` (how to search)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from circuits.configs import AlignOptions, SearchConfig
from interp.options import Flag, from_config


def register(app: typer.Typer) -> None:
    @app.command()
    @from_config(
        AlignOptions,
        "opts",
        fields=("variable", "hook", "positions", "heads", "locations"),
        flags={"locations": Flag("--location", repeat=True)},
    )
    @from_config(
        SearchConfig,
        "search",
        fields=("method", "subspace", "steps", "n_train", "n_test", "control", "seed"),
        flags={
            "subspace": Flag(min=1),
            "steps": Flag(min=1),
            "n_train": Flag(min=8),
            "n_test": Flag(min=8),
            "control": Flag(" /--no-control", help="Skip the random-init control (not recommended)."),
            "seed": Flag(min=0),
        },
    )
    def align(
        opts: AlignOptions,
        search: SearchConfig,
        model: str = typer.Argument(
            ..., help="Zoo name or model folder (a model trained on the task tokenizer)."
        ),
        task: str = typer.Option(
            ...,
            "--task",
            help="Task whose high-level model is aligned (hierarchical_equality, ioi, greater_than, facts).",
        ),
        out: Path = typer.Option(..., "--out", help="Folder to write result.json and figures to."),
        quick: bool = typer.Option(False, "--quick", help="Few steps and examples (a smoke test)."),
        force: bool = typer.Option(False, "--force", help="Replace --out if it exists and is not empty."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
    ) -> None:
        """Find where a high-level variable lives: IIA per location, beside a random-init control."""
        from rich.console import Console

        from circuits.abstraction.report import align_report
        from interp.loading import default_device

        if quick:
            s = search
            search = replace(
                s, steps=min(s.steps, 40), n_train=min(s.n_train, 128), n_test=min(s.n_test, 128)
            )
        opts = replace(opts, search=search)
        console = Console(stderr=True)
        with console.status(f"align: {search.method} on {model}"), default_device(device):
            payload = align_report(model, task, search.method, out, opts, force=force)
        if as_json:
            print(json.dumps(payload, indent=2))
            return
        best = payload["best"]
        control = "n/a" if best["control_iia"] is None else f"{best['control_iia']:.3f}"
        Console().print(
            f"best {best['location']}: IIA {best['iia']:.3f}, random-init control {control}. "
            f"Written to [cyan]{out}/result.json[/cyan]."
        )
