"""interp.zoo: shipped models load, meet their cards, and retrain reproducibly; the zoo/eval CLI."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from interp import tasks, zoo  # noqa: E402
from interp.cli import main  # noqa: E402
from interp.errors import InterpError  # noqa: E402

REQUIRED = [
    "ioi-tiny",
    "induction-tiny",
    "greater-than-tiny",
    "hier-eq-tiny",
    "facts-tiny",
    "shakespeare-tiny",
]
CARD_KEYS = {
    "name",
    "tasks",
    "accuracy",
    "recipe",
    "seed",
    "train_seconds",
    "description",
    "known_mechanisms",
}
FRESH_SEED = 424242  # neither a training stream nor the card's evaluation seed
TASK_MODELS = [(name, task) for name in zoo.names() for task in zoo.card(name)["accuracy"]]


def test_required_models_are_shipped():
    assert set(REQUIRED) <= set(zoo.names())


@pytest.mark.parametrize("name", zoo.names())
def test_card_and_files(name):
    card = zoo.card(name)
    assert set(card) >= CARD_KEYS and card["name"] == name
    assert set(card["accuracy"]) == set(card["tasks"])
    folder = zoo.path(name)
    for file in ("config.json", "model.safetensors", "tokenizer.json", "card.json"):
        assert (folder / file).is_file()
    assert (folder / "model.safetensors").stat().st_size < 3_200_000


def test_recipes_match_cards():
    for name, r in zoo.RECIPES.items():
        card = zoo.card(name)
        assert card["recipe"]["steps"] == r.steps and card["recipe"]["n_layer"] == r.n_layer
        if r.task != "shakespeare":
            assert card["tasks"] == [r.task] and card["accuracy"][r.task] >= 0.95


@pytest.mark.parametrize(("name", "task"), TASK_MODELS)
def test_model_meets_card_accuracy_on_fresh_samples(name, task):
    model, tok = zoo.load_hf(name)
    assert not model.training and model.dtype == torch.float32
    assert tasks.same_vocabulary(tok)
    n, card_acc = 200, zoo.card(name)["accuracy"][task]
    tolerance = max(0.02, 3 * math.sqrt(card_acc * (1 - card_acc) / n))  # 2 points or 3 sampling SDs
    metrics = zoo.evaluate(model, tok, task, n=n, seed=FRESH_SEED)
    assert metrics["accuracy"] >= card_acc - tolerance
    if name in zoo.RECIPES:
        assert metrics["logit_diff"] > 0


def test_shakespeare_validation_loss_matches_card():
    from interp.zoo.text_lm import validation_loss

    card = zoo.card("shakespeare-tiny")
    model, tok = zoo.load_hf("shakespeare-tiny")
    assert card["tasks"] == [] and card["val_loss"] < 6.0
    assert validation_loss(model, tok, card["recipe"]["n_ctx"])["val_loss"] == pytest.approx(
        card["val_loss"], abs=1e-3
    )
    text = "To be, or not to be: that is the question.\nWhether 'tis nobler"
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text
    assert len(tok) <= 4096


def test_evaluate_rejects_foreign_tokenizer():
    model, tok = zoo.load_hf("shakespeare-tiny")
    with pytest.raises(InterpError, match="task tokenizer"):
        zoo.evaluate(model, tok, "ioi", n=4)


def test_unknown_names_list_what_exists():
    for call in (zoo.card, zoo.path, zoo.load_hf):
        with pytest.raises(
            InterpError, match="unknown zoo model 'ioi-tiyn'.*did you mean ioi-tiny.*zoo models"
        ):
            call("ioi-tiyn")
    with pytest.raises(InterpError, match="no recipe.*ioi-tiny"):
        zoo.recipe("nope")
    with pytest.raises(InterpError, match="no recipe"):
        zoo.train("nope", "/nonexistent")


def test_cli_list_and_eval(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "list"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED)
    with pytest.raises(SystemExit):
        main(
            ["eval", "hier-eq-tiny", "--task", "hierarchical_equality", "--n", "64", "--seed", "1", "--json"]
        )
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"accuracy", "logit_diff", "prob"} and result["accuracy"] > 0.95


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "nope", "--task", "ioi"], "unknown zoo model"),
        (["eval", "ioi-tiny", "--task", "iox"], "unknown task"),
        (["zoo", "train", "nope"], "no recipe"),
    ],
)
def test_cli_bad_input_exits_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_zoo_train_reproduces_shipped_model(tmp_path, capsys):
    """`interp zoo train` on the fastest recipe matches the shipped card (~20-60 s on 2 cores)."""
    out = tmp_path / "hier-eq-tiny"
    with pytest.raises(SystemExit):
        main(["zoo", "train", "hier-eq-tiny", "--out", str(out), "--seed", "0", "--json"])
    card = json.loads(capsys.readouterr().out)
    shipped = zoo.card("hier-eq-tiny")
    task = "hierarchical_equality"
    assert abs(card["accuracy"][task] - shipped["accuracy"][task]) <= 0.01
    assert zoo.card(out)["seed"] == 0 and not list(tmp_path.glob(".*tmp*"))
    model, tok = zoo.load_hf(out)
    assert (
        zoo.evaluate(model, tok, task, n=200, seed=FRESH_SEED)["accuracy"] >= shipped["accuracy"][task] - 0.02
    )
