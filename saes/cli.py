"""`interp sae train` and `interp sae eval`, added to the `interp` CLI through the `interp.commands`
entry point (`saes = "saes.cli:register"`). The work happens in `saes.pipeline`, imported when a
command runs so `interp --help` stays fast. Bad input raises `InterpError` (one line, exit code 2).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    """Add the `sae` sub-app to the `interp` app."""
    sae_app = typer.Typer(help="Train and evaluate sparse autoencoders.", no_args_is_help=True)

    @sae_app.command("train")
    def train(
        model: str = typer.Argument(..., help="Zoo name, local model folder, or hub id."),
        hook: str = typer.Option(..., "--hook", help="Hook to read, e.g. blocks.1.hook_resid_post."),
        arch: str = typer.Option(
            "topk", "--arch", help="Architecture (relu, topk, batchtopk, jumprelu, ...)."
        ),
        out: str = typer.Option(..., "--out", help="Output folder."),
        k: int = typer.Option(None, "--k", help="Active latents per token (TopK family)."),
        expansion: int = typer.Option(8, "--expansion", help="d_sae = expansion * d_in."),
        tokens: int = typer.Option(200_000, "--tokens", help="Training activations."),
        hook_out: str = typer.Option(None, "--hook-out", help="Reconstruct this hook instead (transcoder)."),
        dataset: str = typer.Option(
            None, "--dataset", help="datasets save_to_disk folder (default: the shipped corpus)."
        ),
        context_len: int = typer.Option(
            None, "--context-len", help="Tokens per window (default 64, or the model's maximum positions)."
        ),
        batch_size: int = typer.Option(1024, "--batch-size", help="Activations per step."),
        lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate."),
        sparsity_coef: float = typer.Option(
            1.0, "--sparsity-coef", help="L1 / L0 coefficient (relu, gated, jumprelu)."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        eval_windows: int = typer.Option(32, "--eval-windows", help="Held-out windows to evaluate on."),
        cache_dir: str = typer.Option(None, "--cache-dir", help="Cache activations here and reuse them."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the run in OUT from its newest checkpoint (same inputs)."
        ),
        force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json."),
    ) -> None:
        """Train an SAE on one hook of MODEL; writes OUT/sae, OUT/result.json and an evaluation report."""
        from saes import pipeline

        inputs = pipeline.RunInputs(
            model=model,
            hook=hook,
            arch=arch,
            hook_out=hook_out,
            k=k,
            expansion=expansion,
            tokens=tokens,
            dataset=dataset,
            context_len=context_len,
            batch_size=batch_size,
            lr=lr,
            sparsity_coef=sparsity_coef,
            seed=seed,
            eval_windows=eval_windows,
            cache_dir=cache_dir,
            device=device,
        )
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
