"""`interp eval MODEL --task TASK`: accuracy and metrics of a model on fresh task samples."""

from __future__ import annotations

import json

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_model(
        model: str = typer.Argument(..., help="A zoo model name, or a folder in the zoo layout."),
        task: str = typer.Option(None, "--task", help="Task name (default: the model card's first task)."),
        n: int = typer.Option(500, "--n", min=1, help="Number of fresh prompts."),
        seed: int = typer.Option(
            None, "--seed", min=0, help="Sampling seed (default: the zoo's held-out seed)."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    ) -> None:
        """Evaluate MODEL on TASK: accuracy, mean logit difference, mean answer probability."""
        import torch
        from transformers.utils import logging as hf_logging

        from interp import tasks, zoo
        from interp.errors import InterpError
        from interp.validation import check_device

        hf_logging.disable_progress_bar()
        device = check_device(device)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        card = zoo.card(model)
        if task is None:
            if not card.get("tasks"):
                raise InterpError(
                    f"{model} has no task in its card; pass --task ({', '.join(tasks.names())})"
                )
            task = card["tasks"][0]
        task_obj = tasks.get(task)
        seed = zoo.EVAL_SEED if seed is None else seed
        hf_model, tok = zoo.load_hf(model)
        hf_model.to(device)
        metrics = zoo.evaluate(hf_model, tok, task_obj, n=n, seed=seed)
        if json_out:
            typer.echo(json.dumps({"model": model, "task": task_obj.name, "n": n, "seed": seed, **metrics}))
            return
        Console().print(
            f"[bold]{model}[/bold] on {task_obj.name} (n={n}, seed={seed}): accuracy {metrics['accuracy']:.3f}, "
            f"logit diff {metrics['logit_diff']:.3f}, prob {metrics['prob']:.3f}"
        )
