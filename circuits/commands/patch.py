"""`interp patch MODEL --task TASK --out DIR`: activation-patching heatmaps for a zoo task."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from interp.options import split_list

HOOKS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z", "q", "k", "v", "pattern")
METRICS = ("logit_diff", "prob", "kl")
FORMATS = ("png", "pdf", "svg")


def register(app: typer.Typer) -> None:
    @app.command()
    def patch(
        model: str = typer.Argument(..., help="Zoo name, local model folder or hub id."),
        task: str = typer.Option(..., "--task", help="Task (interp.tasks) giving clean/corrupted pairs."),
        out: Path = typer.Option(..., "--out", help="Folder for result.json and figures."),
        hooks: str = typer.Option("resid_pre,attn_out,mlp_out,z", help="Comma-separated hook kinds."),
        mode: str = typer.Option("denoise", help="denoise (clean into corrupted) or noise."),
        metric: str = typer.Option("logit_diff", help="logit_diff, prob or kl."),
        n: int = typer.Option(16, min=1, help="Prompt pairs (all with the same layout)."),
        seed: int = typer.Option(0, min=0, help="Seed of the prompts."),
        formats: str = typer.Option("png", "--format", help="Figure formats: png,pdf,svg."),
        device: str = typer.Option("cpu", help="cpu, cuda or auto."),
        force: bool = typer.Option(False, "--force", help="Replace a non-empty --out."),
    ) -> None:
        """Activation patching over layers x positions (x heads) for each hook kind."""
        import torch

        from circuits.commands import patch_common as common
        from circuits.patching import kl_div, patching_sweep
        from interp import io
        from interp.loading import load_task_model

        started = time.perf_counter()
        kinds = split_list(hooks, HOOKS, "--hooks")
        (metric_name,) = split_list(metric, METRICS, "--metric")
        split_list(mode, ("denoise", "noise"), "--mode")
        suffixes = split_list(formats, FORMATS, "--format")
        io.check_out_dir(out, force)
        hooked = load_task_model(model, device)
        batch = common.aligned_batch(task, n, seed).to(hooked.device)
        with torch.no_grad():
            clean_logits = hooked(batch.clean)
        fn = {"logit_diff": batch.logit_diff, "prob": batch.prob}.get(metric_name)
        fn = fn or kl_div(clean_logits, batch.positions["END"])
        results = patching_sweep(
            hooked,
            batch.clean,
            batch.corrupted,
            fn,
            kinds,
            mode=mode,
            position_labels=common.labels(hooked, batch),
        )
        first = next(iter(results.values()))
        metrics = {
            "metric": metric_name,
            "metric_clean": first.meta["metric_clean"],
            "metric_corrupted": first.meta["metric_corrupted"],
            "clean": batch.metrics(clean_logits),
            "forward_passes": first.meta["forward_passes"],
            "peaks": {k: {"site": r.argmax(), "value": float(r.values.max())} for k, r in results.items()},
        }
        figures = [f"{kind}.{suffix}" for kind in results for suffix in suffixes]
        with io.atomic_dir(out, force) as folder:
            for name in figures:
                kind = name.rsplit(".", 1)[0]
                results[kind].plot(folder / name, title=f"{model} on {task}: {kind} ({mode})")
            common.write_result(
                folder,
                "patch",
                inputs={
                    "model": model,
                    "task": task,
                    "n": len(batch),
                    "prompt": batch.clean_text[0],
                    "positions": common.named_positions(batch),
                },
                config={
                    "hooks": kinds,
                    "mode": mode,
                    "metric": metric_name,
                    "normalised": True,
                    "device": device,
                },
                seed=seed,
                metrics=metrics,
                results=results,
                figures=figures,
                started=started,
            )
        console = Console()
        console.print(
            f"{model} on {task}: {metric_name} clean {metrics['metric_clean']:.3f}, "
            f"corrupted {metrics['metric_corrupted']:.3f} ({len(batch)} pairs)"
        )
        for kind, peak in metrics["peaks"].items():
            console.print(f"  {kind}: peak {peak['value']:.3f} at {peak['site']}", highlight=False)
        console.print(f"wrote {out / 'result.json'} and {len(figures)} figures")
