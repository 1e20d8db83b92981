"""`interp concepts`: result.json with `icace_error` per method, a figure, and clear errors on bad input."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from circuits.commands.concepts import register
from circuits.concepts.handset import handset_model
from interp.errors import InterpError


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # a group, so the command is addressed by name as in `interp concepts`
        pass

    register(app)
    return app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model, _ = handset_model("food")
    folder = tmp_path_factory.mktemp("handset")
    model.hf_model.save_pretrained(folder)
    model.tokenizer.save_pretrained(str(folder))
    return folder


def test_writes_result_json_and_figure(app, model_dir, tmp_path):
    out = tmp_path / "run"
    args = ["concepts", str(model_dir), "--task", "concepts", "--methods", "leace,steering,matched"]
    result = CliRunner().invoke(
        app, [*args, "--out", str(out), "--n-test", "10", "--n-train", "300", "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((out / "result.json").read_text())
    assert json.loads(result.stdout) == written
    assert written["command"] == "concepts" and written["seed"] == 0 and "torch" in written["versions"]
    methods = written["metrics"]["methods"]
    assert set(methods) == {"leace", "steering", "matched"}
    assert all(isinstance(m["icace_error"], float) for m in methods.values())
    assert methods["leace"]["per_concept"]["food"]["icace_error"] < 1e-3
    assert (out / "concepts.png").stat().st_size > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "leace,bogus"], "bogus is not one of"),
        (["--task", "ioi"], "no concept annotations"),
        (["--concepts", "taste"], "taste is not one of"),
        (["--hook", "blocks.7.hook_resid_post", "--methods", "inlp"], "needs the hook"),
    ],
)
def test_bad_input_raises_interp_error(app, model_dir, tmp_path, extra, message):
    args = [
        "concepts",
        str(model_dir),
        "--out",
        str(tmp_path / "x"),
        "--n-test",
        "4",
        "--n-train",
        "50",
        *extra,
    ]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, InterpError), result.output
    assert message in str(result.exception)
