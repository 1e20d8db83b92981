"""`interp attribute MODEL --transcoders DIR --prompt TEXT --out DIR`: the attribution graph of a prompt
over a transcoder set, pruned, checked by intervention, exported (graph.json, result.json, circuit.*).
The work happens in `circuits.attribution.report`, imported when the command runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from interp.options import split_list


def register(app: typer.Typer) -> None:
    @app.command()
    def attribute(
        model: str = typer.Argument(..., help="Zoo name, local model folder, or hub id."),
        transcoders: Path = typer.Option(
            ..., "--transcoders", help="Transcoder-set folder (interp sae train-transcoders)."
        ),
        prompt: str = typer.Option(..., "--prompt", help="The prompt to trace."),
        out: Path = typer.Option(..., "--out", help="Folder for graph.json, result.json and circuit files."),
        logits: str = typer.Option(
            None, "--logits", help="Comma-separated logit tokens or ids (default: top ones)."
        ),
        node_threshold: float = typer.Option(
            0.8, "--node-threshold", help="Feature influence fraction kept."
        ),
        edge_threshold: float = typer.Option(0.98, "--edge-threshold", help="Edge score fraction kept."),
        batch_size: int = typer.Option(64, "--batch-size", help="Targets per backward pass."),
        check_top: int = typer.Option(5, "--check-top", help="Features to check by intervention (0: none)."),
        formats: str = typer.Option("json,dot,svg,graphml,tikz", "--format", help="Circuit export formats."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        force: bool = typer.Option(False, "--force", help="Replace --out if it exists and is not empty."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
    ) -> None:
        """Trace PROMPT through MODEL's transcoders: attribution graph, pruning, intervention check, export."""
        from rich.console import Console

        import interp
        from circuits.attribution.report import AttributeOptions, attribute_report, logit_ids

        loaded = interp.load(model, device=device)
        opts = AttributeOptions(
            node_threshold=node_threshold,
            edge_threshold=edge_threshold,
            logits=logit_ids(loaded, split_list(logits)),
            batch_size=batch_size,
            check_top=check_top,
            formats=split_list(formats),
            device=device,
        )
        payload = attribute_report(
            loaded, transcoders, prompt, out, opts, force=force, name=model, progress=not as_json
        )
        if as_json:
            print(json.dumps(payload, indent=2))
            return
        m = payload["metrics"]
        corr = m.get("intervention_correlation") or {}
        checked = ", ".join(f"{k} {v:.3f}" for k, v in corr.items() if k != "all" and v is not None)
        Console().print(
            f"{m['n_nodes']} nodes, {m['n_edges']} edges (of {m['n_features']} active features); "
            f"replacement {m['replacement_score']:.3f}, completeness {m['completeness_score']:.3f}"
            + (f"; predicted vs measured under intervention: r {checked}" if checked else "")
            + f". Written to [cyan]{out}[/cyan]."
        )
