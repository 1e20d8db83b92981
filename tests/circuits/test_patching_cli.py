"""`interp patch` and `interp trace`: result.json and figures written, bad input is one line and exit 2."""

from __future__ import annotations

import json

import pytest

from tests.circuits.cli_helpers import model_folder, run


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A randomly initialised task-vocabulary GPT-2 saved as a model folder (any zoo-shaped model works)."""
    from interp.tasks.vocab import VOCAB
    from interp.zoo.recipes import recipe
    from interp.zoo.train import build_model

    return model_folder(build_model(recipe("facts-tiny"), len(VOCAB)), tmp_path_factory.mktemp("model"))


def test_patch_writes_result_and_figures(model_dir, tmp_path, capsys):
    out = tmp_path / "patch"
    argv = [
        "patch",
        str(model_dir),
        "--task",
        "ioi",
        "--hooks",
        "resid_pre,z",
        "--n",
        "4",
        "--out",
        str(out),
        "--format",
        "png,svg",
    ]
    assert run(argv) == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["command"] == "patch" and result["seed"] == 0
    assert {"inputs", "config", "versions", "metrics", "results", "figures"} <= set(result)
    assert result["results"]["resid_pre"]["dims"] == ["layer", "position"]
    assert result["results"]["z"]["dims"] == ["layer", "head"]
    assert "[END]" in result["results"]["resid_pre"]["labels"]["position"][-1]
    assert {p.name for p in out.iterdir()} == {
        "result.json",
        "resid_pre.png",
        "resid_pre.svg",
        "z.png",
        "z.svg",
    }
    # refuses a non-empty folder, one red line and exit 2; --force replaces it
    capsys.readouterr()
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert run([*argv, "--force"]) == 0


def test_trace_writes_tables(model_dir, tmp_path, capsys):
    out = tmp_path / "trace"
    assert (
        run(["trace", str(model_dir), "--out", str(out), "--n", "4", "--samples", "2", "--kinds", "mlp"]) == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert result["results"]["mlp"]["dims"] == ["layer", "position"]
    assert "subject_last_peak" in result["metrics"] and (out / "trace_mlp.png").exists()
    assert "indirect effects" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["patch", "{model}", "--task", "ioi", "--hooks", "resid_pre,nope", "--out", "{out}"], "--hooks"),
        (["patch", "{model}", "--task", "nosuchtask", "--out", "{out}"], "unknown task"),
        (["trace", "{model}", "--task", "ioi", "--out", "{out}", "--n", "2"], "SUBJ_FIRST"),
    ],
)
def test_bad_input_is_one_line(model_dir, tmp_path, capsys, argv, message):
    argv = [a.format(model=model_dir, out=tmp_path / "out") for a in argv]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "result.json").exists()
