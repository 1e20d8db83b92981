"""`train` (run a recipe and write a model folder) and the model card it writes."""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
from typing import Any

import torch
import transformers
from transformers import GPT2LMHeadModel

from interp.tasks import get, tokenizer
from interp.zoo.evaluate import batch_logits
from interp.zoo.mechanisms import attention_summary
from interp.zoo.recipes import EVAL_SEED, Recipe, recipe
from interp.zoo.store import save
from interp.zoo.text_lm import train_text_lm
from interp.zoo.train import cpu_threads, train_task_model

log = logging.getLogger(__name__)

TRAIN_THREADS = 2
"""CPU threads used for training (the recipes' timings and the shipped models use 2)."""


def train(
    name: str, out_dir: str | os.PathLike[str], seed: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Train zoo model `name` from its recipe and write it to `out_dir` atomically; returns its card.

    Deterministic for a given seed on a given machine (the recipe's seed when `seed` is None).

    Example:
        >>> card = train("hier-eq-tiny", "out/hier-eq-tiny", seed=0)
        >>> card["accuracy"]
        {'hierarchical_equality': 1.0}
    """
    r = recipe(name)
    seed = r.seed if seed is None else seed
    log.info("training %s (seed %d)", name, seed)
    with cpu_threads(TRAIN_THREADS):
        if r.task == "shakespeare":
            model, tok, stats = train_text_lm(r, seed, progress)
            card = _card(r, seed, model, stats, tasks={}, mechanisms=[])
        else:
            model, stats = train_task_model(r, seed, progress)
            tok = tokenizer()
            task = get(r.task, **dict(r.task_config))
            batch = task.generate(r.eval_n, seed=EVAL_SEED)
            metrics = batch.metrics(batch_logits(model, batch.clean))
            card = _card(r, seed, model, stats, {r.task: metrics}, attention_summary(model, batch))
    save(out_dir, model, tok, card)
    return card


def _card(
    r: Recipe,
    seed: int,
    model: GPT2LMHeadModel,
    stats: dict[str, float],
    tasks: dict[str, dict[str, float]],
    mechanisms: list[str],
) -> dict[str, Any]:
    recipe_fields = {
        k: v for k, v in dataclasses.asdict(r).items() if k not in ("name", "description", "notes")
    }
    card: dict[str, Any] = {
        "name": r.name,
        "description": r.description,
        "architecture": "GPT2LMHeadModel",
        "n_params": sum(p.numel() for p in model.parameters()),
        "tasks": list(tasks),
        "accuracy": {t: round(m["accuracy"], 4) for t, m in tasks.items()},
        "metrics": {t: {k: round(v, 4) for k, v in m.items()} for t, m in tasks.items()},
        "eval": {"n": r.eval_n, "seed": EVAL_SEED} if tasks else {},
        "recipe": recipe_fields,
        "seed": seed,
        "train_seconds": round(stats["train_seconds"], 1),
        "final_train_loss": round(stats["final_loss"], 4),
        "known_mechanisms": [*r.notes, *(f"observed attention: {m}" for m in mechanisms)],
        "trained_with": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": TRAIN_THREADS,
            "machine": platform.machine(),
        },
    }
    for key in ("val_loss", "val_tokens", "train_tokens", "corpus_tokens"):
        if key in stats:
            card[key] = round(stats[key], 4) if isinstance(stats[key], float) else stats[key]
    if r.task == "shakespeare":
        card["corpus"] = "interp.data.shakespeare (33 works, Project Gutenberg via Open Shakespeare)"
    return card
