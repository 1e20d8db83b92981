"""Optional Weights & Biases logging for a training run (`TrainConfig.wandb_project`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from interp.errors import InterpError


@contextlib.contextmanager
def wandb_run(project: str | None, config: dict[str, Any]) -> Iterator[Any]:
    """A wandb run logging to `project` with `config`, finished on exit; None (nothing logged) when
    `project` is None. wandb is an optional dependency, imported only when a project is given."""
    if not project:
        yield None
        return
    try:
        import wandb
    except ImportError as exc:
        raise InterpError("wandb_project is set but wandb is not installed: pip install wandb") from exc
    run = wandb.init(project=project, config=config)
    try:
        yield run
    finally:
        run.finish()
