"""The recipe that trains the zoo model `concepts-tiny` on the `concepts` task, and writes its folder.

A 2-layer GPT-2 (d_model 64) learns to predict the review's label token at `END` from noisy labels
(the task's rule plus Gaussian score noise). It uses the zoo's training loop (`interp.zoo.train.fit`)
with the task's extended vocabulary, so the folder holds the task tokenizer, not the shared one.

    interp zoo train concepts-tiny --out interp/zoo/models/concepts-tiny   # ~1-6 minutes on 2 CPU cores

`ZOO_RECIPE` registers it with `interp.zoo` (through `circuits.zoo`, an `interp.zoo_recipes` entry point).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path

import torch
from transformers import GPT2LMHeadModel

from interp import zoo
from interp.tasks.concepts import LABELS, Concepts
from interp.zoo import store
from interp.zoo.cards import TRAIN_THREADS
from interp.zoo.recipes import EVAL_SEED, Recipe
from interp.zoo.train import build_model, cpu_threads, fit

log = logging.getLogger(__name__)

RECIPE = Recipe(
    name="concepts-tiny",
    task="concepts",
    description=(
        "2-layer GPT-2 that reads a templated restaurant review (food, service, price, ambiance) and "
        "predicts its label token (negative/neutral/positive); trained on noisy labels."
    ),
    n_layer=2,
    d_model=64,
    n_head=4,
    d_mlp=256,
    n_ctx=32,
    steps=1000,
    batch_size=128,
    lr=3e-3,
    warmup=100,
)
KNOWN_MECHANISMS: tuple[str, ...] = (
    "Supervised only at END with the noisy label; no mechanism is imposed.",
    "The label rule: score = tone (-0.5/0/+0.5) + food + 0.75 service + 0.5 price, each concept as polarity "
    "(-1/0/+1) x intensity (0.5/1/1.5), plus N(0, 0.5) noise, thresholded at +-0.5.",
    "ambiance has weight 0 in the rule, so its true ICaCE is ~0; tone and intensity are exogenous (not concepts).",
    "Exact counterfactuals come from interp.tasks.concepts: changing a concept changes one adjective token.",
)


def train(
    recipe: Recipe = RECIPE, seed: int | None = None, progress: bool = True
) -> tuple[GPT2LMHeadModel, dict]:
    """Train the concepts model (seeded, 2 CPU threads); returns (model, stats).

    Example:
        >>> model, stats = train(dataclasses.replace(RECIPE, steps=50), progress=False)
    """
    seed = recipe.seed if seed is None else seed
    task = Concepts(**dict(recipe.task_config))
    with cpu_threads(TRAIN_THREADS):
        torch.manual_seed(seed)
        model = build_model(recipe, task.vocab_size)
        stats = fit(model, lambda rng: task.training_batch(recipe.batch_size, rng), recipe, seed, progress)
    return model, stats


def evaluate(
    model: GPT2LMHeadModel, n: int = 1000, seed: int = EVAL_SEED, task: Concepts | None = None
) -> dict:
    """Accuracy against the noise-free rule label and the noisy label, mean KL(Bayes || model), and the
    Bayes-optimal predictor's accuracy against the rule label on the same sample (the ceiling).

    Example:
        >>> evaluate(model)["accuracy"]
        0.97
    """
    task = task or Concepts()
    sample = task.sample(n, seed)
    with torch.no_grad():
        logits = model(sample.tokens).logits[:, -1, list(task.label_ids)]  # [batch, label]
    logp = logits.log_softmax(-1)
    bayes = task.label_probs(sample)  # [batch, label]
    kl = (bayes * (bayes.clamp_min(1e-12).log() - logp)).sum(-1).mean()
    pred = logp.argmax(-1)
    return {
        "accuracy": (pred == sample.rule_label).float().mean().item(),
        "noisy_label_accuracy": (pred == sample.label).float().mean().item(),
        "kl_to_bayes": kl.item(),
        "bayes_accuracy": (bayes.argmax(-1) == sample.rule_label).float().mean().item(),
    }


def card(recipe: Recipe, seed: int, model: GPT2LMHeadModel, metrics: dict, stats: dict, eval_n: int) -> dict:
    """The model card (`interp.zoo.build_card`) plus the label tokens; `accuracy` is against the
    noise-free rule label."""
    recipe_fields = {
        k: v for k, v in dataclasses.asdict(recipe).items() if k not in ("name", "description", "notes")
    }
    return zoo.build_card(
        name=recipe.name,
        description=recipe.description,
        model=model,
        seed=seed,
        recipe=recipe_fields | {"trainer": "circuits.concepts.train", "vocab_size": Concepts.vocab_size},
        train_seconds=stats["train_seconds"],
        tasks={recipe.task: metrics},
        eval_n=eval_n,
        known_mechanisms=KNOWN_MECHANISMS,
        final_train_loss=stats["final_loss"],
        extra={"labels": list(LABELS)},
    )


def save(model: GPT2LMHeadModel, folder: str | Path, card_dict: dict) -> Path:
    """Write the model, the task tokenizer and card.json to `folder` atomically, in the zoo layout."""
    return store.save(folder, model, Concepts().tokenizer(), card_dict)


def trained(recipe: Recipe = RECIPE, seed: int | None = None, progress: bool = True) -> zoo.Trained:
    """Train, evaluate on held-out samples and card the model; `interp.zoo.train` writes it."""
    seed = recipe.seed if seed is None else seed
    model, stats = train(recipe, seed, progress)
    metrics = evaluate(model, n=recipe.eval_n)
    log.info("%s: %s in %.0f s", recipe.name, metrics, stats["train_seconds"])
    return zoo.Trained(
        model, Concepts().tokenizer(), card(recipe, seed, model, metrics, stats, recipe.eval_n)
    )


def zoo_recipe(recipe: Recipe = RECIPE) -> zoo.ZooRecipe:
    """The zoo registry entry that trains `recipe` (`interp zoo train concepts-tiny`)."""
    return zoo.ZooRecipe(recipe.name, recipe.description, functools.partial(trained, recipe))


def train_and_save(folder: str | Path, recipe: Recipe = RECIPE, seed: int | None = None) -> dict:
    """Train, evaluate on held-out samples, and write the zoo folder (through `interp.zoo.train`);
    returns the card."""
    return zoo.train(zoo_recipe(recipe), folder, seed=seed)
