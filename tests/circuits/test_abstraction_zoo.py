"""The SIIT-trained ground-truth zoo models: they load, their cards and circuit files follow the schema
and name nodes that exist, the task is solved, the circuit's nodes carry their variables (IIA), the
rest of the network does not matter, and linear DAS beats its random-init control on them."""

from __future__ import annotations

import json

import pytest

import interp
from circuits.abstraction import (
    Alignment,
    Location,
    SearchConfig,
    counterfactuals,
    high_level,
    iia,
    load_circuit,
    node_location,
    search,
    validate,
)
from circuits.abstraction.circuit import all_nodes, circuit_dict, split_node
from circuits.abstraction.ground_truth import MODELS_DIR, RECIPES
from circuits.abstraction.iit import evaluate_circuit
from interp.errors import InterpError

SHIPPED = [name for name in RECIPES if (MODELS_DIR / name / "card.json").is_file()]
CARD_KEYS = {"name", "tasks", "accuracy", "recipe", "seed", "description", "known_mechanisms", "circuit"}


def test_at_least_two_ground_truth_models_ship():
    assert len(SHIPPED) >= 2, (
        f"train them: python -m circuits.abstraction.ground_truth ({', '.join(RECIPES)})"
    )


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    folder = MODELS_DIR / request.param
    card = json.loads((folder / "card.json").read_text())
    try:
        model = interp.load(str(folder))
    except (InterpError, AttributeError, ImportError, OSError) as exc:  # loading needs the zoo package
        pytest.skip(f"interp.load cannot load a model folder yet: {exc}")
    return request.param, card, load_circuit(folder / card["circuit"]), model


def test_card_and_circuit_follow_the_schema(shipped):
    name, card, circuit, model = shipped
    assert set(card) >= CARD_KEYS and card["name"] == name
    task = card["tasks"][0]
    assert card["accuracy"][task] >= 0.95
    validate(circuit, model.cfg.n_layers, model.cfg.n_heads)
    assert circuit["nodes"][0] == "embed" and circuit["nodes"][-1] == "logits"
    assert set(circuit["nodes"]) <= set(all_nodes(model.cfg.n_layers, model.cfg.n_heads))
    assert circuit == json.loads(json.dumps(RECIPES[name].circuit()))  # the file is what the recipe says
    for var, spec in circuit["alignment"].items():
        assert var in high_level(task).causal.variables and spec["node"] in circuit["nodes"]
    if hasattr(interp, "zoo") and hasattr(interp.zoo, "names"):
        assert name in interp.zoo.names()


def test_circuit_is_faithful_and_the_rest_irrelevant(shipped):
    name, card, circuit, model = shipped
    tm = high_level(card["tasks"][0])
    inner = [n for n in circuit["nodes"] if n not in ("embed", "logits")]
    alignment = {v: f"{s['node']}@{s['position']}" for v, s in circuit["alignment"].items()}
    result = evaluate_circuit(model, tm, alignment, inner, n=128, seed=77)
    assert result["accuracy"] >= 0.95
    assert min(result["iia"].values()) >= 0.95, result["iia"]
    assert abs(result["accuracy_drop"]) < 0.05, result


def test_a_non_circuit_head_carries_no_variable(shipped):
    name, card, circuit, model = shipped
    tm = high_level(card["tasks"][0])
    var, spec = next(iter(circuit["alignment"].items()))
    outside = next(
        n
        for n in all_nodes(model.cfg.n_layers, model.cfg.n_heads)
        if n.startswith("L") and n not in circuit["nodes"]
    )
    data = counterfactuals(tm, [var], 256, seed=5, changes=True)
    assert iia(model, data, Alignment(var, node_location(spec["node"], spec["position"]))) >= 0.9
    assert iia(model, data, Alignment(var, node_location(outside, spec["position"]))) < 0.5


def test_linear_das_beats_the_random_init_control():
    name = "greater-than-siit"
    if name not in SHIPPED:
        pytest.skip(f"{name} is not shipped")
    try:
        model = interp.load(str(MODELS_DIR / name))
    except (InterpError, AttributeError, ImportError, OSError) as exc:
        pytest.skip(f"interp.load cannot load a model folder yet: {exc}")
    spec = RECIPES[name].circuit()["alignment"]["year"]
    cfg = SearchConfig(method="das", subspace=8, steps=60, n_train=256, n_test=256, lr=0.02, batch_size=64)
    result = search(
        model, high_level("greater_than"), "year", [node_location(spec["node"], spec["position"])], cfg
    )
    best = result.best()
    assert best["iia"] >= 0.8 and best["control_iia"] < 0.3 and best["gap"] > 0.5, best


def test_das_on_the_zoo_hierarchical_equality_model_beats_its_control():
    """hier-eq-tiny's card says `left` is computed at position X: 1-d DAS finds it there, and the
    same search on a random initialisation stays at chance."""
    try:
        model = interp.load("hier-eq-tiny")
        card = interp.zoo.card("hier-eq-tiny")
    except (InterpError, AttributeError, ImportError, OSError) as exc:
        pytest.skip(f"hier-eq-tiny is not available: {exc}")
    assert any("at position X" in note for note in card["known_mechanisms"])
    cfg = SearchConfig(method="das", subspace=1, steps=200, n_train=512, n_test=256, lr=0.01)
    result = search(
        model, high_level("hierarchical_equality"), "left", [Location("blocks.0.hook_resid_post", "X")], cfg
    )
    best = result.best()
    assert best["iia"] >= 0.9 and 0.35 < best["control_iia"] < 0.65, best


def test_recipes_describe_valid_circuits():
    for name, recipe in RECIPES.items():
        circuit = recipe.circuit()
        a = recipe.architecture
        validate(circuit, a.n_layer, a.n_head)
        assert circuit == circuit_dict(list(recipe.edges), dict(recipe.alignment))
        assert {split_node(n)[0] for _, n in recipe.alignment} <= set(circuit["nodes"]), name
    with pytest.raises(InterpError, match="does not exist"):
        validate({"nodes": ["embed", "L5.H0"], "edges": []}, 2, 4)
    with pytest.raises(InterpError, match="backwards"):
        validate({"nodes": ["MLP1", "L0.H0"], "edges": [["MLP1", "L0.H0"]]}, 2, 4)
    with pytest.raises(InterpError, match="missing from 'nodes'"):
        validate({"nodes": ["embed"], "edges": [["embed", "logits"]]}, 2, 4)
