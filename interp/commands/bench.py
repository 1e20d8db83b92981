"""`interp bench`: the hook-overhead benchmark (see `interp.bench`), then the benchmarks other packages
add through the `interp.benchmarks` entry-point group.

Each entry point names a callable `(quick: bool) -> dict` returning JSON-ready results with a `table`
entry (`title`, `columns`, `rows` of strings) to print; `--json` puts the results under
`benchmarks.<entry point name>` beside the hook benchmark's keys. This keeps `interp` free of upward
imports: `saes` registers `sae = "saes.bench:interp_bench"` in `pyproject.toml`.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

BENCHMARK_GROUP = "interp.benchmarks"


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
        repeats: int = typer.Option(15, min=3, help="Interleaved rounds per shape (medians are reported)."),
        quick: bool = typer.Option(False, "--quick", help="Fewer rounds in the added benchmarks."),
        only: str = typer.Option(
            "", help="Run only this added benchmark (e.g. `sae`), or `hooks` for the hook benchmark alone."
        ),
    ) -> None:
        """Time a fully cached forward against a plain Hugging Face forward and TransformerLens, then
        the benchmarks other packages add (e.g. `saes`: TopK SAE training against SAELens)."""
        from interp import bench as bench_module

        console = Console(stderr=True)
        added = _added_benchmarks(only)  # a bad --only fails before anything runs
        results: dict[str, Any] = {}
        with console.status("benchmarking") as status:
            if only in ("", "hooks"):
                results = bench_module.run(
                    bench_module.BenchConfig(repeats=repeats),
                    progress=lambda key: status.update(f"done {key}"),
                )
            for name, fn in added.items():
                status.update(f"benchmark {name}")
                results.setdefault("benchmarks", {})[name] = fn(quick)
        if as_json:
            print(json.dumps(results, indent=2))
            return
        if "shapes" in results:
            _print_hooks_table(results)
        for entry in results.get("benchmarks", {}).values():
            _print_table(entry["table"])


def _added_benchmarks(only: str) -> dict[str, Any]:
    """The `interp.benchmarks` entry points (name -> loaded callable), filtered by `--only`."""
    found = {ep.name: ep for ep in entry_points(group=BENCHMARK_GROUP)}
    if only not in ("", "hooks") and only not in found:
        raise typer.BadParameter(f"no benchmark {only!r}; available: hooks, {', '.join(sorted(found))}")
    return {name: ep.load() for name, ep in sorted(found.items()) if only in ("", name)}


def _print_table(spec: dict[str, Any]) -> None:
    table = Table(title=spec["title"])
    for column in spec["columns"]:
        table.add_column(column)
    for row in spec["rows"]:
        table.add_row(*row)
    Console().print(table)


def _print_hooks_table(results: dict[str, Any]) -> None:
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
            f"{ratios['transformer_lens_cache_all']:.3f}" if "transformer_lens_cache_all" in ratios else "-",
            f"{memory['ratio']:.3f}" if memory else "-",
        )
    Console().print(table)
