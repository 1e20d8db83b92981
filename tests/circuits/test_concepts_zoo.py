"""The zoo model `concepts-tiny`: its card, its tokenizer, its accuracy, and the recipe that trains it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import interp
from circuits.concepts import train as recipe
from circuits.concepts.explain import resolve_model
from interp.tasks.concepts import TASK_VOCAB, Concepts

FOLDER = Path(interp.__file__).parent / "zoo" / "models" / "concepts-tiny"


@pytest.fixture(scope="module")
def card():
    return json.loads((FOLDER / "card.json").read_text())


def test_card_in_zoo_format(card):
    for key in ("name", "tasks", "accuracy", "recipe", "seed", "description", "known_mechanisms"):
        assert key in card
    assert card["name"] == "concepts-tiny" and card["tasks"] == ["concepts"]
    assert card["accuracy"]["concepts"] > 0.9
    assert card["recipe"]["n_layer"] == recipe.RECIPE.n_layer and card["seed"] == recipe.RECIPE.seed
    assert (FOLDER / "model.safetensors").is_file() and (FOLDER / "config.json").is_file()


def test_tokenizer_and_accuracy_match_the_task(card):
    model = resolve_model("concepts-tiny")
    vocab = model.tokenizer.get_vocab()
    assert all(vocab.get(word) == i for i, word in enumerate(TASK_VOCAB)), (
        "task vocabulary drifted from the model"
    )
    metrics = recipe.evaluate(model.hf_model, n=300, seed=123)
    assert metrics["accuracy"] > card["accuracy"]["concepts"] - 0.05


def test_recipe_trains_and_saves(tmp_path):
    short = dataclasses.replace(recipe.RECIPE, steps=3, batch_size=8, warmup=1)
    model, stats = recipe.train(short, progress=False)
    assert model.config.vocab_size == Concepts.vocab_size and stats["train_seconds"] > 0
    card = recipe.card(short, 0, model, recipe.evaluate(model, n=20), stats, eval_n=20)
    folder = recipe.save(model, tmp_path / "m", card)
    assert json.loads((folder / "card.json").read_text())["tasks"] == ["concepts"]
    assert resolve_model(folder).cfg.n_layers == short.n_layer
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left behind
