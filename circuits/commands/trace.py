"""`interp trace MODEL --task facts --out DIR`: ROME-style causal tracing tables and heatmaps."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from interp.options import split_list

KINDS = ("resid", "mlp", "attn")
FORMATS = ("png", "pdf", "svg")
COLOURS = {"resid": "Purples", "mlp": "Greens", "attn": "Reds"}  # as in the ROME paper


def register(app: typer.Typer) -> None:
    @app.command()
    def trace(
        model: str = typer.Argument(..., help="Zoo name, local model folder or hub id."),
        task: str = typer.Option("facts", "--task", help="A task with SUBJ_FIRST / SUBJ_LAST positions."),
        out: Path = typer.Option(..., "--out", help="Folder for result.json and figures."),
        kinds: str = typer.Option("resid,mlp,attn", help="What to restore: resid,mlp,attn."),
        window: int = typer.Option(1, min=1, help="Consecutive MLP/attention layers restored together."),
        noise: float = typer.Option(3.0, help="Noise std in units of the embedding std."),
        samples: int = typer.Option(10, min=1, help="Noise draws per prompt."),
        n: int = typer.Option(16, min=1, help="Prompts."),
        seed: int = typer.Option(0, min=0, help="Seed of the prompts and the noise."),
        formats: str = typer.Option("png", "--format", help="Figure formats: png,pdf,svg."),
        device: str = typer.Option("cpu", help="cpu, cuda or auto."),
        force: bool = typer.Option(False, "--force", help="Replace a non-empty --out."),
    ) -> None:
        """Causal tracing: noise the subject, restore one state at a time, tabulate indirect effects."""
        from dataclasses import asdict

        from circuits.commands import patch_common as common
        from circuits.patching.tracing import TraceConfig, causal_tracing
        from interp import io
        from interp.errors import InterpError
        from interp.loading import load_task_model

        started = time.perf_counter()
        chosen = split_list(kinds, KINDS, "--kinds")
        suffixes = split_list(formats, FORMATS, "--format")
        configs = {
            k: TraceConfig(k, window=1 if k == "resid" else window, noise=noise, samples=samples, seed=seed)
            for k in chosen
        }
        io.check_out_dir(out, force)
        hooked = load_task_model(model, device)
        batch = common.aligned_batch(task, n, seed).to(hooked.device)
        if not {"SUBJ_FIRST", "SUBJ_LAST"} <= set(batch.positions):
            raise InterpError(
                f"task {task!r} has no SUBJ_FIRST / SUBJ_LAST positions to corrupt; use --task facts"
            )
        subject = (batch.positions["SUBJ_FIRST"], batch.positions["SUBJ_LAST"])
        labels = common.labels(hooked, batch)
        results = {
            k: causal_tracing(hooked, batch.clean, subject, batch.prob, c, position_labels=labels)
            for k, c in configs.items()
        }
        first = next(iter(results.values()))
        last = common.named_positions(batch)["SUBJ_LAST"]
        metrics = {
            "prob_clean": first.meta["metric_clean"],
            "prob_corrupted": first.meta["metric_corrupted"],
            "total_effect": first.meta["total_effect"],
            "peaks": {
                k: {"site": r.argmax(), "indirect_effect": float(r.values.max())} for k, r in results.items()
            },
            "subject_last_peak": {
                k: {
                    "layer": int(r.values[:, last].argmax()),
                    "indirect_effect": float(r.values[:, last].max()),
                }
                for k, r in results.items()
            },
            "forward_passes": sum(r.meta["forward_passes"] for r in results.values()),
        }
        figures = [f"trace_{kind}.{suffix}" for kind in results for suffix in suffixes]
        with io.atomic_dir(out, force) as folder:
            for name in figures:
                kind = name.rsplit(".", 1)[0].removeprefix("trace_")
                results[kind].transpose("position", "layer").plot(
                    folder / name,
                    title=f"{model}: restoring {kind} (indirect effect)",
                    centre=None,
                    cmap=COLOURS[kind],
                )
            common.write_result(
                folder,
                "trace",
                inputs={
                    "model": model,
                    "task": task,
                    "n": len(batch),
                    "prompt": batch.clean_text[0],
                    "positions": common.named_positions(batch),
                },
                config={k: asdict(c) for k, c in configs.items()},
                seed=seed,
                metrics=metrics,
                results=results,
                figures=figures,
                started=started,
            )
        console = Console()
        console.print(
            f"{model} on {task}: p(answer) clean {metrics['prob_clean']:.3f}, "
            f"subject noised {metrics['prob_corrupted']:.3f} ({len(batch)} prompts x {samples} draws)"
        )
        for kind, result in results.items():
            console.print(f"{kind} indirect effects:", highlight=False)
            console.print(result.table(), markup=False, highlight=False, soft_wrap=True)
        console.print(f"wrote {out / 'result.json'} and {len(figures)} figures")
