"""The model card every zoo folder carries (`card.json`), built in one place for every recipe.

A card always has `name`, `description`, `architecture`, `n_params`, `tasks` (list of task names),
`accuracy` and `metrics` (per task, on `eval.n` held-out samples drawn with `eval.seed`), `recipe`
(how it was trained), `seed`, `train_seconds`, `known_mechanisms` and `trained_with` (versions and
machine). Recipes add their own keys (a ground-truth circuit, its alignment, ...) through `extra`.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import transformers
from torch import nn

from interp.zoo.recipes import EVAL_SEED

TRAIN_THREADS = 2
"""CPU threads used for training (the recipes' timings and the shipped models use 2)."""


def build_card(
    *,
    name: str,
    description: str,
    model: nn.Module,
    seed: int,
    recipe: Mapping[str, Any],
    train_seconds: float,
    tasks: Mapping[str, Mapping[str, float]] | None = None,
    eval_n: int = 0,
    known_mechanisms: Iterable[str] = (),
    final_train_loss: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A zoo model card. `tasks` maps task name -> held-out metrics (must include `accuracy`).

    Example:
        >>> card = build_card(name="m", description="d", model=model, seed=0, recipe={}, train_seconds=1.0,
        ...                   tasks={"ioi": {"accuracy": 1.0, "logit_diff": 9.0}}, eval_n=1000)
        >>> card["accuracy"]
        {'ioi': 1.0}
    """
    tasks = dict(tasks or {})
    card: dict[str, Any] = {
        "name": name,
        "description": description,
        "architecture": type(model).__name__,
        "n_params": sum(p.numel() for p in model.parameters()),
        "tasks": list(tasks),
        "accuracy": {t: round(float(m["accuracy"]), 4) for t, m in tasks.items()},
        "metrics": {t: {k: round(float(v), 4) for k, v in m.items()} for t, m in tasks.items()},
        "eval": {"n": eval_n, "seed": EVAL_SEED} if tasks else {},
        "recipe": dict(recipe),
        "seed": seed,
        "train_seconds": round(float(train_seconds), 1),
    }
    if final_train_loss is not None:
        card["final_train_loss"] = round(float(final_train_loss), 4)
    card["known_mechanisms"] = list(known_mechanisms)
    card["trained_with"] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": TRAIN_THREADS,
        "machine": platform.machine(),
    }
    card.update(extra or {})
    return card
