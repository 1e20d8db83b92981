"""Every zoo model's recipe, in one table: `interp zoo train NAME` works for each shipped model.

A `ZooRecipe` names a model and says how to make it: `train(seed, progress)` returns a `Trained`
(the Hugging Face model, its tokenizer, its card, and any extra JSON files), and `interp.zoo.train`
writes it as a zoo folder, atomically; recipes never write folders themselves. The task models and
the text LM are registered here (`interp.zoo.recipes`); packages above `interp` register theirs
through the `interp.zoo_recipes` entry-point group, whose entries are functions returning an iterable
of `ZooRecipe`. In `pyproject.toml`:

    [project.entry-points."interp.zoo_recipes"]
    circuits = "circuits.zoo:recipes"

`interp.zoo.recipes()` lists them all, `interp.zoo.zoo_recipe(name)` finds one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

ENTRY_POINT_GROUP = "interp.zoo_recipes"
"""Entry-point group of the recipes registered by other packages."""


@dataclass(frozen=True)
class Trained:
    """What a recipe produces; `interp.zoo.train` writes it as a zoo folder."""

    model: nn.Module
    """A Hugging Face `PreTrainedModel` (saved with `save_pretrained`, safetensors)."""
    tokenizer: Any
    """Its tokenizer (saved with `save_pretrained`)."""
    card: dict[str, Any]
    """The model card (`interp.zoo.build_card`), written as `card.json`."""
    files: Mapping[str, Any] = field(default_factory=dict)
    """Extra JSON files beside the weights: file name -> JSON value (e.g. a ground-truth `circuit.json`)."""


@dataclass(frozen=True)
class ZooRecipe:
    """A zoo model's name and the function that makes it."""

    name: str
    """Zoo name, e.g. `"ioi-tiny"`."""
    description: str
    """One line: what the model is."""
    train: Callable[[int | None, bool], Trained]
    """`train(seed, progress)`: seed None means the recipe's own seed."""
