"""`interp circuit MODEL --task TASK --method acdc|eap|eap-ig|node|features --out DIR [--format ...]`:
circuit discovery, checked (faithfulness; AUROC when the model card has a true circuit) and exported.
Its options are the fields of `CircuitOptions`; the work happens in `circuits.discovery.report`, imported
when the command runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from circuits.configs import CircuitOptions
from interp.options import Flag, from_config


def register(app: typer.Typer) -> None:
    @app.command()
    @from_config(
        CircuitOptions,
        "opts",
        flags={
            "formats": Flag("--format"),
            "n": Flag(min=1),
            "seed": Flag(min=0),
            "steps": Flag(min=1),
            "top_n": Flag(min=1),
        },
    )
    def circuit(
        opts: CircuitOptions,
        model: str = typer.Argument(
            ..., help="Zoo name, model folder, or handset-induction (the hand-set induction model)."
        ),
        out: Path = typer.Option(..., "--out", help="Folder to write result.json and the circuit files to."),
        force: bool = typer.Option(False, "--force", help="Replace --out if it exists and is not empty."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
    ) -> None:
        """Find the circuit behind a task, check it, and export the graph."""
        from rich.console import Console

        from circuits.discovery.report import EmptyCircuitError, circuit_report
        from interp.io import check_out_dir
        from interp.loading import default_device

        check_out_dir(out, force)  # before any discovery starts
        console = Console(stderr=True)
        with console.status(f"circuit: {opts.method} on {model}"), default_device(device):
            payload = circuit_report(model, out, opts, force=force)
        m = payload["metrics"]
        if as_json:
            print(json.dumps(payload, indent=2))
        else:
            _summary(console, opts.method, payload, out)
        if m["n_edges"] == 0:
            raise EmptyCircuitError(
                f"the circuit is empty: {m['selection']['note'] or 'no edge passed the selection'}. The empty "
                f"graph is written to {out}; lower --threshold (or use --top-n) to keep edges"
            )


def _summary(console: Any, method: str, payload: dict, out: Path) -> None:
    """The one-line report: requested and kept edge counts, faithfulness, AUROC; a note when the
    selection was widened."""
    from rich.console import Console

    m = payload["metrics"]
    sel = m["selection"]
    asked = [f"top {sel['top_n']}"] if sel["top_n"] is not None else []
    asked += [f"|score| >= {sel['threshold']:g}"] if sel["threshold"] is not None else []
    line = (
        f"{method}: kept {m['n_edges']} of {m['n_graph_edges']} edges "
        f"(requested {' and '.join(asked) or 'the edges ACDC kept'}: {sel['n_selected']} edges)"
    )
    if "faithfulness" in m:
        line += f", faithfulness {m['faithfulness']:.3f}, completeness {m['completeness']:.3f}"
    if "auroc" in payload:
        line += f", AUROC edges {payload['auroc']['edge']:.3f} nodes {payload['auroc']['node']:.3f}"
    if sel["note"] and m["n_edges"]:  # an empty circuit's note is the error that follows
        console.print(f"[yellow]{sel['note']}[/yellow]", highlight=False)
    Console().print(f"{line}. Written to [cyan]{out}[/cyan].", highlight=False)
