"""`interp concepts MODEL --task concepts [--methods ...] --out DIR`: concept-explanation methods scored
against true counterfactuals, written as result.json (per method: `icace_error`) plus a figure."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from interp.options import split_list


def register(app: typer.Typer) -> None:
    @app.command()
    def concepts(
        model: str = typer.Argument(
            ..., help="Zoo name or model folder trained on the concepts task (e.g. concepts-tiny)."
        ),
        task: str = typer.Option("concepts", "--task", help="Task with concept annotations (concepts)."),
        methods: str = typer.Option(
            None,
            "--methods",
            help="Comma-separated methods (default: all): inlp, leace, causalm, cpm, steering, das, sae, matched.",
        ),
        out: Path = typer.Option(..., "--out", help="Folder to write result.json and concepts.png to."),
        concept_names: str = typer.Option(
            None, "--concepts", help="Comma-separated concepts to edit (default: all)."
        ),
        n_train: int = typer.Option(
            1000, "--n-train", min=0, help="Concept-labelled training examples the methods fit on."
        ),
        n_test: int = typer.Option(
            100, "--n-test", min=1, help="Test examples (each gives one edit per concept and other value)."
        ),
        hook: str = typer.Option(
            None, "--hook", help="Site hook for every method (default: each method's own)."
        ),
        quick: bool = typer.Option(False, "--quick", help="Few examples and training steps (a smoke test)."),
        seed: int = typer.Option(0, "--seed", min=0),
        force: bool = typer.Option(False, "--force", help="Write into --out even if it is not empty."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
    ) -> None:
        """How much does each concept cause the output? Every method's ICaCE estimate, scored by ICaCE error."""
        import time

        from rich.console import Console
        from rich.table import Table

        from circuits.concepts import registry
        from circuits.concepts.explain import ExplainConfig, explain, quick_configs, resolve_model
        from interp import io
        from interp.loading import default_device
        from interp.tasks.concepts import CONCEPTS

        started = time.perf_counter()
        chosen = (
            split_list(methods, tuple(registry.names()), "--methods") if methods else tuple(registry.names())
        )
        edited = split_list(concept_names, CONCEPTS, "--concepts") if concept_names else None
        if quick:
            n_train, n_test = min(n_train, 300), min(n_test, 20)
        cfg = ExplainConfig(
            methods=chosen, concepts=edited, n_train=n_train, n_test=n_test, seed=seed, hook=hook
        )
        io.check_out_dir(out, force)
        console = Console(stderr=True)
        with console.status(f"concepts: {', '.join(chosen)} on {model}"), default_device(device):
            report = explain(
                resolve_model(model), cfg, task=task, method_configs=quick_configs() if quick else None
            )
        metrics = report.to_dict()
        inputs = {"model": model, "task": task, "methods": list(chosen), "concepts": list(edited or CONCEPTS)}
        with io.atomic_dir(out, force) as tmp:  # the folder appears whole or not at all
            report.plot(tmp / "concepts.png")
            payload = io.write_result(
                tmp, command="concepts", inputs=inputs, config=metrics.pop("config"), seed=seed, metrics=metrics,
                figures=["concepts.png"], seconds=round(time.perf_counter() - started, 3),
            )  # fmt: skip
        if as_json:
            print(json.dumps(payload, indent=2))
            return
        table = Table(title=f"ICaCE error (L2) per concept; {metrics['distance']}")
        for column in ("method", *metrics["true_effect"], "all"):
            table.add_column(column)
        table.add_row("(true effect)", *(f"{v:.3f}" for v in metrics["true_effect"].values()), "")
        for name, entry in metrics["methods"].items():
            per = entry["per_concept"]
            table.add_row(
                name,
                *(f"{per[c]['icace_error']:.3f}" for c in metrics["true_effect"]),
                f"{entry['icace_error']:.3f}",
            )
        Console().print(table)
        Console().print(
            f"Written to [cyan]{out}/result.json[/cyan]; beats the matched baseline: {json.dumps(metrics['beats_baseline'])}"
        )
