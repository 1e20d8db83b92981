"""`interp sae train` and `interp sae eval`, added to the `interp` CLI through the `interp.commands`
entry point (`saes = "saes.cli:register"`). `sae train`'s options are the fields of `RunInputs`; the
work happens in `saes.pipeline`, imported when a command runs so `interp --help` stays fast. Bad input raises `InterpError` (one line, exit code 2).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console

from interp.options import Flag, from_config
from saes.run_inputs import RunInputs


def register(app: typer.Typer) -> None:
    """Add the `sae` sub-app to the `interp` app."""
    sae_app = typer.Typer(help="Train and evaluate sparse autoencoders.", no_args_is_help=True)

    @sae_app.command("train")
    @from_config(RunInputs, "inputs", flags={"model": Flag(argument=True)})
    def train(
        inputs: RunInputs,
        out: str = typer.Option(..., "--out", help="Output folder."),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the run in OUT from its newest checkpoint (same inputs)."
        ),
        force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json."),
    ) -> None:
        """Train an SAE on one hook of MODEL; writes OUT/sae, OUT/result.json and an evaluation report."""
        from saes import pipeline

        result = pipeline.train_run(inputs, out, resume=resume, force=force, progress=not as_json)
        _show(result, as_json)

    @sae_app.command("eval")
    def eval_(
        run_dir: str = typer.Argument(..., help="Folder written by `interp sae train`."),
        eval_windows: int = typer.Option(
            None, "--eval-windows", help="Held-out windows (default: as trained)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print result.json."),
    ) -> None:
        """Evaluate a trained SAE: MSE, FVU, L0, dead/dense latents, CE loss recovered, KL, feature browser."""
        from interp.validation import check_positive
        from saes import pipeline

        check_positive(eval_windows, "--eval-windows")
        _show(pipeline.eval_run(run_dir, eval_windows=eval_windows), as_json)

    from saes import transcoder_cli

    transcoder_cli.register(sae_app)
    app.add_typer(sae_app, name="sae")


def _show(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    console = Console()
    for key, value in result["metrics"]["eval"].items():
        console.print(f"{key:>20}: {value if value is None or isinstance(value, int) else f'{value:.4g}'}")
