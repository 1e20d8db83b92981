"""`interp align`: result.json with per-location IIA, the random-model control and `best`; figures;
bad input is one line and exit 2."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest

from circuits.abstraction.handbuilt import hierarchical_equality_network
from tests.circuits.cli_helpers import model_folder, run


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    network = hierarchical_equality_network(rotate=True)
    return model_folder(network.model.hf_model, tmp_path_factory.mktemp("handbuilt"))


def test_align_writes_result_and_figures(model_dir, tmp_path, capsys):
    out = tmp_path / "align"
    argv = ["align", str(model_dir), "--task", "hierarchical_equality", "--method", "das", "--out", str(out), "--quick",
            "--steps", "60", "--location", "blocks.0.hook_resid_post@END", "--location", "blocks.0.hook_resid_post@X"]  # fmt: skip
    plt.close("all")  # (the test's own process)
    mine = plt.figure()  # a figure of the caller's, as in a notebook
    assert run(argv) == 0, capsys.readouterr().err
    assert plt.get_fignums() == [mine.number]  # the report closed its figures and only those
    plt.close(mine)
    result = json.loads((out / "result.json").read_text())
    assert result["command"] == "align" and result["seed"] == 0 and result["inputs"]["variable"] == "left"
    assert {"inputs", "config", "versions", "metrics", "best", "locations", "figures"} <= set(result)
    best = result["best"]
    assert best["location"] == "blocks.0.hook_resid_post@END"
    assert (
        best["iia"] >= 0.9
        and best["control_iia"] < 0.7
        and best["gap"] == pytest.approx(best["iia"] - best["control_iia"])
    )
    assert [row["location"] for row in result["locations"]] == [
        "blocks.0.hook_resid_post@END",
        "blocks.0.hook_resid_post@X",
    ]
    assert all("control_iia" in row for row in result["locations"])
    assert sorted(p.name for p in out.iterdir()) == [
        "control_iia.png",
        "iia.png",
        "iia_vs_control.png",
        "result.json",
    ]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "magic"], "method must be one of"),
        (["--hook", "hook_resid_psot"], "closest"),
        (["--task", "ioi", "--variable", "nope"], "no intermediate or output variable"),
        (
            ["--location", "blocks.0.attn.hook_z[H0]@END", "--subspace", "40"],
            "larger than the activation width",
        ),
        (["--positions", "W,NOPE"], "unknown position"),
        (["--hook", "attn.hook_z", "--positions", "END"], "needs a head"),
    ],
)
def test_bad_input_is_one_line(model_dir, tmp_path, capsys, extra, message):
    argv = [
        "align",
        str(model_dir),
        "--task",
        "hierarchical_equality",
        "--out",
        str(tmp_path / "o"),
        "--quick",
        "--steps",
        "1",
        *extra,
    ]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
