"""Small models the project trains itself, shipped with the package (safetensors + tokenizer + card).

`names()`, `card(name)`, `path(name)`, `load_hf(name)`, `train(name, out_dir)`, `evaluate(model, tok, task)`.
"""

from interp.zoo.api import train
from interp.zoo.evaluate import evaluate
from interp.zoo.recipes import EVAL_SEED, RECIPES, Recipe, recipe
from interp.zoo.store import MODELS_DIR, card, load_hf, names, path

__all__ = [
    "EVAL_SEED",
    "MODELS_DIR",
    "RECIPES",
    "Recipe",
    "card",
    "evaluate",
    "load_hf",
    "names",
    "path",
    "recipe",
    "train",
]
