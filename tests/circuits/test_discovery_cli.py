"""`interp circuit`: a full run on the hand-set induction model (result.json with AUROC, every export
format, atomic folder) and bad input (unknown format/method, features without SAEs)."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import typer
from typer.testing import CliRunner

from circuits.commands.circuit import register
from circuits.discovery.report import CircuitOptions
from circuits.graph import Circuit
from interp.errors import InterpError


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep `circuit` a subcommand
        pass

    return app


def test_circuit_command_writes_a_checked_exported_circuit(app, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "circuit",
            "handset-induction",
            "--task",
            "induction",
            "--method",
            "acdc",
            "--out",
            str(out),
            "--format",
            "json,dot,graphml,tikz,png",
            "--n",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["command"] == "circuit" and payload["inputs"]["method"] == "acdc"
    assert payload["auroc"]["edge"] == 1.0 and payload["auroc"]["node"] == 1.0
    assert payload["metrics"]["n_edges"] == 5 and payload["metrics"]["faithfulness"] == pytest.approx(
        1.0, abs=1e-3
    )
    assert payload["config"]["options"]["ablation"] == "resample"  # from the model card
    assert {"python", "torch", "transformers"} <= set(payload["versions"])
    for name in (
        "circuit.json",
        "circuit.dot",
        "circuit.graphml",
        "circuit.tex",
        "circuit.png",
        "scores.json",
        "faithfulness.png",
    ):
        assert (out / name).is_file(), name
    assert len(Circuit.load(out / "circuit.json").edges) == 5
    assert len(Circuit.load(out / "scores.json").edges) == payload["metrics"]["n_graph_edges"]
    assert nx.read_graphml(out / "circuit.graphml").number_of_edges() == 5
    again = CliRunner().invoke(
        app, ["circuit", "handset-induction", "--task", "induction", "--out", str(out)]
    )
    assert isinstance(again.exception, InterpError) and "--force" in str(again.exception)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "json,gexf"], "unknown circuit export format"),
        (["--method", "acdcc"], "did you mean acdc"),
        (["--method", "features"], "needs SAEs"),
        (["--ablation", "noise"], "unknown ablation"),
    ],
)
def test_bad_arguments_raise_interp_error_before_writing(app, tmp_path, args, message):
    out = tmp_path / "bad"
    result = CliRunner().invoke(
        app, ["circuit", "handset-induction", "--task", "induction", "--out", str(out), *args]
    )
    assert isinstance(result.exception, InterpError) and message in str(result.exception)
    assert not out.exists()


def test_options_validate_eagerly():
    with pytest.raises(InterpError, match="--n must be at least 2"):
        CircuitOptions(task="ioi", n=1)
    assert CircuitOptions(task="ioi", formats=("TEX", "gv")).formats == ("tikz", "dot")
