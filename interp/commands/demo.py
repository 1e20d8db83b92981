"""`interp demo`: run the main job on the embedded default model and write a report folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("demo-report"), "--out", help="Report folder to write."),
        quick: bool = typer.Option(False, "--quick", help="Fewer prompts and shorter stages."),
        force: bool = typer.Option(False, "--force", help="Replace --out if it exists and is not empty."),
        model: str = typer.Option("ioi-tiny", "--model", help="A zoo model name (interp zoo list)."),
        seed: int = typer.Option(0, "--seed", min=0),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    ) -> None:
        """Evaluate the default zoo model, cache it, and write a report (result.json, figures, report.md)."""
        from interp.demo import run_demo
        from interp.io import check_out_dir
        from interp.loading import default_device

        check_out_dir(out, force)  # before any work starts
        console = Console(stderr=True)
        with console.status("demo") as status, default_device(device):
            payload = run_demo(
                out,
                model_name=model,
                quick=quick,
                force=force,
                seed=seed,
                progress=lambda stage: status.update(f"demo: {stage}"),
            )
        evaluation = payload["metrics"]["evaluate"]
        Console().print(
            f"[bold]{model}[/bold] on {payload['inputs']['task']}: accuracy {evaluation['accuracy']:.3f}, "
            f"logit diff {evaluation['logit_diff']:.2f}. Report written to [cyan]{out}/report.md[/cyan] "
            f"({len(payload['figures'])} figures)."
        )
