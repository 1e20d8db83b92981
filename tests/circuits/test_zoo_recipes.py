"""One zoo: every shipped model has a recipe that `interp zoo train NAME` runs, the recipes of the upper
packages register through the `interp.zoo_recipes` entry point, and `interp.zoo.train` writes every folder."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

import interp
from circuits.abstraction import ground_truth, load_circuit
from circuits.concepts import train as concepts_train
from circuits.discovery import handset
from circuits.zoo import recipes as circuits_recipes
from interp import zoo
from interp.cli import main
from interp.errors import InterpError

CARD_KEYS = {"name", "description", "tasks", "accuracy", "metrics", "recipe", "seed", "train_seconds"}
CARD_KEYS |= {"known_mechanisms", "trained_with", "n_params", "architecture"}


def test_every_shipped_model_has_a_recipe():
    registered = zoo.recipes()
    assert set(zoo.names()) <= set(registered)
    assert {r.name for r in circuits_recipes()} <= set(registered)  # found through the entry point
    assert {"concepts-tiny", "greater-than-siit", "hier-eq-siit", "handset-induction"} <= set(registered)


def test_unknown_recipe_lists_the_registered_ones():
    with pytest.raises(InterpError, match="no recipe for 'handset-inductoin'.*handset-induction"):
        zoo.zoo_recipe("handset-inductoin")


def test_handset_induction_loads_like_any_zoo_name():
    model = interp.load("handset-induction")
    batch = interp.tasks.get("induction").generate(16, seed=3)
    assert torch.equal(model(batch.clean), handset.load()(batch.clean))
    card = zoo.card("handset-induction")
    assert card["ablation"] == handset.ABLATION and card["accuracy"]["induction"] == 1.0
    assert {tuple(e) for e in card["circuit"]["edges"]} == set(handset.TRUE_EDGES)


def test_zoo_train_rebuilds_the_shipped_handset_folder(tmp_path, capsys):
    out = tmp_path / "handset-induction"
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "train", "handset-induction", "--out", str(out), "--json"])
    assert exit_info.value.code in (0, None)
    card = json.loads(capsys.readouterr().out)
    shipped = zoo.card("handset-induction")
    assert {k: v for k, v in card.items() if k != "trained_with"} == {
        k: v for k, v in shipped.items() if k != "trained_with"
    }
    ours, theirs = (
        load_file(out / "model.safetensors"),
        load_file(zoo.path("handset-induction") / "model.safetensors"),
    )
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert not list(tmp_path.glob(".*tmp*"))


def test_concepts_recipe_writes_a_zoo_folder_through_the_api(tmp_path):
    short = dataclasses.replace(concepts_train.RECIPE, steps=5, eval_n=20)
    card = zoo.train(concepts_train.zoo_recipe(short), tmp_path / "c", progress=False)
    assert set(card) >= CARD_KEYS | {"labels"} and card["tasks"] == ["concepts"]
    assert zoo.card(tmp_path / "c") == json.loads(json.dumps(card))
    model = interp.load(str(tmp_path / "c"))
    assert model.cfg.d_vocab == concepts_train.Concepts.vocab_size


def test_ground_truth_recipe_writes_its_circuit_file_through_the_api(tmp_path):
    r = ground_truth.RECIPES["greater-than-siit"]
    short = dataclasses.replace(r, iit=dataclasses.replace(r.iit, steps=2))
    (entry,) = ground_truth.zoo_recipes({r.name: short})
    card = zoo.train(entry, tmp_path / r.name, progress=False)
    assert set(card) >= CARD_KEYS | {"circuit", "alignment", "iia"}
    circuit = load_circuit(tmp_path / r.name / card["circuit"])
    assert circuit == load_circuit(zoo.path(r.name) / "circuit.json")
    assert interp.load(str(tmp_path / r.name)).cfg.n_layers == r.architecture.n_layer


def test_a_recipe_must_card_its_own_name(tmp_path):
    def mislabelled(seed, progress):
        return zoo.Trained(torch.nn.Linear(1, 1), None, {"name": "hier-eq-tiny"})

    with pytest.raises(ValueError, match="card named 'hier-eq-tiny'"):
        zoo.train(zoo.ZooRecipe("x", "a recipe whose card names another model", mislabelled), tmp_path / "x")
    assert not (tmp_path / "x").exists()
