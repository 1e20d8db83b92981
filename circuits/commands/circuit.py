"""`interp circuit MODEL --task TASK --method acdc|eap|eap-ig|node|features --out DIR [--format ...]`:
circuit discovery, checked (faithfulness; AUROC when the model card has a true circuit) and exported.
The work happens in `circuits.discovery.report`, imported when the command runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def register(app: typer.Typer) -> None:
    @app.command()
    def circuit(
        model: str = typer.Argument(
            ..., help="Zoo name, model folder, or handset-induction (the hand-set induction model)."
        ),
        task: str = typer.Option(
            ..., "--task", help="Task (ioi, induction, greater_than, hierarchical_equality, facts)."
        ),
        method: str = typer.Option(
            "eap-ig",
            "--method",
            help="acdc, eap, eap-ig, node or features (default eap-ig: the most faithful circuits on the zoo).",
        ),
        out: Path = typer.Option(..., "--out", help="Folder to write result.json and the circuit files to."),
        formats: str = typer.Option(
            "json,dot,svg", "--format", help="Comma-separated: json, dot, svg, pdf, png, graphml, tikz."
        ),
        n: int = typer.Option(32, "--n", min=1, help="Task examples."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the task examples."),
        ablation: str = typer.Option(
            None,
            "--ablation",
            help="corrupted, resample, mean or zero (default: the card's, else corrupted).",
        ),
        steps: int = typer.Option(5, "--steps", min=1, help="Integrated-gradient steps (eap-ig, features)."),
        threshold: float = typer.Option(
            None,
            "--threshold",
            help="ACDC: its threshold, a fraction of the clean-minus-ablated metric (default 0.05). "
            "Other methods: keep edges with |score| >= this. Exits non-zero if it keeps no edge.",
        ),
        top_n: int = typer.Option(
            None,
            "--top-n",
            min=1,
            help="Edges to export (scoring methods; default 20 without --threshold; ACDC exports what it kept).",
        ),
        separate_qkv: bool = typer.Option(False, "--separate-qkv", help="Separate q/k/v inputs per head."),
        saes: str = typer.Option(None, "--saes", help="Comma-separated SAE folders (features)."),
        metric: str = typer.Option("logit_diff", "--metric", help="logit_diff or prob."),
        force: bool = typer.Option(False, "--force", help="Replace --out if it exists and is not empty."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
    ) -> None:
        """Find the circuit behind a task, check it, and export the graph."""
        from rich.console import Console

        from circuits.discovery.report import CircuitOptions, EmptyCircuitError, circuit_report
        from interp.io import check_out_dir
        from interp.loading import default_device
        from interp.validation import check_finite_number

        opts = CircuitOptions(
            task=task,
            method=method,
            formats=_split(formats),
            n=n,
            seed=seed,
            ablation=ablation,
            steps=steps,
            threshold=threshold,
            top_n=top_n,
            separate_qkv=separate_qkv,
            saes=_split(saes),
            metric=metric,
        )
        if threshold is not None:
            check_finite_number(threshold, "--threshold")
        check_out_dir(out, force)  # before any discovery starts
        console = Console(stderr=True)
        with console.status(f"circuit: {method} on {model}"), default_device(device):
            payload = circuit_report(model, out, opts, force=force)
        m = payload["metrics"]
        sel = m["selection"]
        if as_json:
            print(json.dumps(payload, indent=2))
        else:
            _summary(console, method, payload, out)
        if m["n_edges"] == 0:
            raise EmptyCircuitError(
                f"the circuit is empty: {sel['note'] or 'no edge passed the selection'}. The empty graph is "
                f"written to {out}; lower --threshold (or use --top-n) to keep edges"
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
