"""`interp align MODEL --task TASK --method das|boundless|nonlinear --out DIR`: alignment search with a
random-model control, written as result.json plus figures (see `circuits.abstraction.report`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def align(
        model: str = typer.Argument(
            ..., help="Zoo name or model folder (a model trained on the task tokenizer)."
        ),
        task: str = typer.Option(
            ...,
            "--task",
            help="Task whose high-level model is aligned (hierarchical_equality, ioi, greater_than, facts).",
        ),
        method: str = typer.Option(
            "das",
            "--method",
            help="das (rotation), boundless (learned boundary) or nonlinear (coupling flow).",
        ),
        out: Path = typer.Option(..., "--out", help="Folder to write result.json and figures to."),
        variable: str = typer.Option(
            None, "--variable", help="High-level variable (default: the first intermediate)."
        ),
        hook: str = typer.Option(
            "hook_resid_post", "--hook", help="Hook kind swept over layers, e.g. hook_resid_mid."
        ),
        positions: str = typer.Option(
            None, "--positions", help="Comma-separated position names (default: all)."
        ),
        heads: bool = typer.Option(
            False, "--heads", help="Sweep every head too (per-head hooks like attn.hook_z)."
        ),
        location: list[str] = typer.Option(
            None, "--location", help="Explicit location HOOK[Hh]@POS; repeatable; replaces the grid."
        ),
        subspace: int = typer.Option(
            1, "--subspace", min=1, help="Subspace size (initial boundary for boundless)."
        ),
        steps: int = typer.Option(200, "--steps", min=1, help="Training steps per location."),
        n_train: int = typer.Option(1024, "--n-train", min=8),
        n_test: int = typer.Option(512, "--n-test", min=8),
        no_control: bool = typer.Option(
            False, "--no-control", help="Skip the random-init control (not recommended)."
        ),
        quick: bool = typer.Option(False, "--quick", help="Few steps and examples (a smoke test)."),
        seed: int = typer.Option(0, "--seed", min=0),
        force: bool = typer.Option(False, "--force", help="Replace --out if it exists and is not empty."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
    ) -> None:
        """Find where a high-level variable lives: IIA per location, beside a random-init control."""
        from rich.console import Console

        from circuits.abstraction.report import AlignOptions, align_report
        from interp.loading import default_device

        if quick:
            steps, n_train, n_test = min(steps, 40), min(n_train, 128), min(n_test, 128)
        opts = AlignOptions(
            variable=variable,
            hook=hook,
            heads=heads,
            positions=tuple(p.strip() for p in positions.split(",") if p.strip()) if positions else None,
            locations=tuple(location or ()),
            subspace=subspace,
            steps=steps,
            n_train=n_train,
            n_test=n_test,
            control=not no_control,
            seed=seed,
        )
        console = Console(stderr=True)
        with console.status(f"align: {method} on {model}"), default_device(device):
            payload = align_report(model, task, method, out, opts, force=force)
        if as_json:
            print(json.dumps(payload, indent=2))
            return
        best = payload["best"]
        control = "n/a" if best["control_iia"] is None else f"{best['control_iia']:.3f}"
        Console().print(
            f"best {best['location']}: IIA {best['iia']:.3f}, random-init control {control}. "
            f"Written to [cyan]{out}/result.json[/cyan]."
        )
