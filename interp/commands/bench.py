"""`interp bench`: the hook-overhead benchmark (see `interp.bench`)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
        repeats: int = typer.Option(15, min=3, help="Interleaved rounds per shape (medians are reported)."),
    ) -> None:
        """Time a fully cached forward against a plain Hugging Face forward and TransformerLens."""
        from interp import bench as bench_module

        console = Console(stderr=True)
        with console.status("benchmarking") as status:
            results = bench_module.run(
                bench_module.BenchConfig(repeats=repeats), progress=lambda key: status.update(f"done {key}")
            )
        if as_json:
            print(json.dumps(results, indent=2))
            return
        table = Table(title="forward time / plain HF forward (medians)")
        for column in (
            "shape / HF attention",
            "cache all",
            "cache all but pattern",
            "TransformerLens cache all",
            "cache bytes / tensor bytes",
        ):
            table.add_column(column)
        for key, entry in results["shapes"].items():
            ratios = entry["ratio_vs_hf"]
            memory = entry.get("memory")
            table.add_row(
                key,
                f"{ratios['ours_cache_all']:.3f}",
                f"{ratios['ours_cache_no_pattern']:.3f}",
                f"{ratios['transformer_lens_cache_all']:.3f}"
                if "transformer_lens_cache_all" in ratios
                else "-",
                f"{memory['ratio']:.3f}" if memory else "-",
            )
        Console().print(table)
