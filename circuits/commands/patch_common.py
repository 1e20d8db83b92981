"""Shared by `interp patch` and `interp trace`: models, task batches with one layout, labels, `result.json`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from circuits.results import LabelledArray
from interp import io
from interp.errors import InterpError


def aligned_batch(task_name: str, n: int, seed: int) -> Any:
    """`n` examples of `task_name` sharing one layout (see `circuits.patching.batches.same_layout`)."""
    from circuits.patching.batches import same_layout
    from interp import tasks

    if n < 1:
        raise InterpError(f"--n must be at least 1, got {n}")
    return same_layout(tasks.get(task_name).generate(64 * n, seed=seed), n)


def named_positions(batch: Any) -> dict[str, int]:
    return {k: int(v[0]) for k, v in batch.positions.items()}


def labels(model: Any, batch: Any) -> tuple[str, ...]:
    """Position tick labels of the batch's (shared) layout: token strings and named positions."""
    from circuits.results import position_labels

    ids = batch.clean[0].tolist()
    tokens = (
        model.tokenizer.convert_ids_to_tokens(ids) if model.tokenizer is not None else [str(i) for i in ids]
    )
    return position_labels(tokens, named_positions(batch))


def write_result(
    folder: Path,
    command: str,
    *,
    inputs: dict,
    config: dict,
    seed: int,
    metrics: dict,
    results: dict[str, LabelledArray],
    figures: list[str],
    started: float,
) -> dict:
    """Write `folder/result.json` atomically (through `interp.io.write_result`)."""
    return io.write_result(
        folder,
        command=command,
        inputs=inputs,
        config=config,
        seed=seed,
        metrics=metrics,
        results={k: v.to_dict() for k, v in results.items()},
        figures=figures,
        seconds=round(time.perf_counter() - started, 3),
    )
