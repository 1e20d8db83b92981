"""Small models the project trains itself, shipped with the package (safetensors + tokenizer + card).

`names()`, `card(name)`, `path(name)`, `load_hf(name)`, `train(name, out_dir)`, `evaluate(model, tok, task)`.
Every shipped model has a registered recipe (`recipes()`); packages above `interp` add theirs through
the `interp.zoo_recipes` entry-point group (a function returning `ZooRecipe`s whose `train` returns a
`Trained`, carded with `build_card`), and `train` writes every folder.
"""

from interp.zoo.api import recipes, train, train_core, zoo_recipe
from interp.zoo.cards import TRAIN_THREADS, build_card
from interp.zoo.evaluate import evaluate
from interp.zoo.recipes import EVAL_SEED, RECIPES, Recipe, recipe
from interp.zoo.registry import ENTRY_POINT_GROUP, Trained, ZooRecipe
from interp.zoo.store import MODELS_DIR, card, load_hf, names, path

__all__ = [
    "ENTRY_POINT_GROUP",
    "EVAL_SEED",
    "MODELS_DIR",
    "RECIPES",
    "TRAIN_THREADS",
    "Recipe",
    "Trained",
    "ZooRecipe",
    "build_card",
    "card",
    "evaluate",
    "load_hf",
    "names",
    "path",
    "recipe",
    "recipes",
    "train",
    "train_core",
    "zoo_recipe",
]
