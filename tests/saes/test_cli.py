"""`interp sae train` + `interp sae eval` end to end on a tiny model folder and a token dataset."""

import json

import pytest

import interp.zoo
from interp.cli import main

from .helpers import tiny_gpt2, token_dataset

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tiny_gpt2().save_pretrained(root / "model")
    token_dataset(rows=60, length=80).save_to_disk(str(root / "data"))
    return root / "model", root / "data"


@pytest.fixture(autouse=True)
def _zoo_names(monkeypatch):
    # `interp.load` consults the zoo's names before local folders; until the zoo package exposes
    # `names()` in this tree, an empty zoo stands in (no effect once it exists).
    if not hasattr(interp.zoo, "names"):
        monkeypatch.setattr(interp.zoo, "names", lambda: [], raising=False)


def run_cli(args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_train_then_eval(model_and_data, tmp_path, capsys):
    model, data = model_and_data
    out = tmp_path / "run"
    code = run_cli(
        [
            "sae",
            "train",
            str(model),
            "--hook",
            HOOK,
            "--arch",
            "topk",
            "--k",
            "4",
            "--expansion",
            "4",
            "--tokens",
            "8192",
            "--batch-size",
            "256",
            "--context-len",
            "32",
            "--dataset",
            str(data),
            "--eval-windows",
            "8",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code in (0, None)
    printed = json.loads(capsys.readouterr().out)
    result = json.loads((out / "result.json").read_text())
    assert printed == result
    assert result["inputs"]["hook"] == HOOK and result["seed"] == 0
    assert result["config"]["sae"]["d_sae"] == 256 and result["config"]["sae"]["k"] == 4
    assert {"torch", "transformers", "python"} <= set(result["versions"])
    assert result["metrics"]["train"]["steps"] == 32
    ev = result["metrics"]["eval"]
    train = result["metrics"]["train"]
    # train metrics are means over the last logging window, and `mse` is on eval's scale
    assert 0 < train["log_window_steps"] <= 31 and train["l0"] <= 4
    assert 0.2 < train["mse"] / ev["mse"] < 5
    assert ev["l0"] <= 4 and 0 <= ev["fvu"] < 1 and ev["ce_loss_recovered"] is not None
    for name in ("sae/cfg.json", "sae/sae_weights.safetensors", "eval.json", "density.png", "features.html"):
        assert (out / name).is_file(), name

    code = run_cli(["sae", "eval", str(out), "--json", "--eval-windows", "4"])
    assert code in (0, None)
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["command"] == "sae eval" and evaluated["metrics"]["eval"]["n_tokens"] == 4 * 32
    assert json.loads((out / "result.json").read_text()) == evaluated


def test_train_with_only_the_required_options_uses_the_default_k(model_and_data, tmp_path, capsys):
    """The default architecture (TopK) needs k; a run that names none gets `DEFAULT_K`, not an error."""
    from saes.run_inputs import DEFAULT_K

    model, data = model_and_data
    out = tmp_path / "run"
    args = ["sae", "train", str(model), "--hook", HOOK, "--dataset", str(data), "--out", str(out)]
    code = run_cli([*args, "--tokens", "2048", "--context-len", "32", "--eval-windows", "4", "--json"])
    assert code in (0, None)
    result = json.loads(capsys.readouterr().out)
    assert result["inputs"]["k"] is None and result["config"]["sae"]["arch"] == "topk"
    assert result["config"]["sae"]["k"] == DEFAULT_K
    assert result["metrics"]["eval"]["l0"] <= DEFAULT_K


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "nope"], "unknown SAE architecture"),
        (["--arch", "topk", "--k", "1000"], "k=1000"),
        (["--arch", "topk", "--k", "4", "--hook", "blocks.0.hook_resid_pots"], "closest"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(model_and_data, tmp_path, capsys, extra, message):
    model, data = model_and_data
    args = [
        "sae",
        "train",
        str(model),
        "--hook",
        HOOK,
        "--dataset",
        str(data),
        "--out",
        str(tmp_path / "x"),
        "--tokens",
        "1024",
        "--batch-size",
        "256",
        *extra,
    ]
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x" / "result.json").exists()


def test_eval_of_a_folder_without_a_run_is_an_error(tmp_path, capsys):
    assert run_cli(["sae", "eval", str(tmp_path)]) == 2
    assert "not an `interp sae train` folder" in capsys.readouterr().err
