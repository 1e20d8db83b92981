"""`interp circuit`: a full run on the hand-set induction model (result.json with AUROC, every export
format, atomic folder) and bad input (unknown format/method, features without SAEs)."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import torch
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


# -- selection: never silently empty ---------------------------------------------------------------------
def _run(app, tmp_path, name, *args):
    out = tmp_path / name
    result = CliRunner().invoke(
        app, ["circuit", "ioi-tiny", "--task", "ioi", "--n", "8", "--out", str(out), *args]
    )
    return result, out


def test_default_selection_is_widened_not_empty_and_reports_counts(app, tmp_path):
    """On ioi-tiny the top 20 EAP edges hold no embed-to-logits path: the selection is widened to
    the fewest top edges that do, and the CLI reports requested and kept counts."""
    result, out = _run(app, tmp_path, "eap", "--method", "eap", "--top-n", "5")
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    selection = payload["metrics"]["selection"]
    assert selection["top_n"] == 5 and payload["metrics"]["n_edges"] == selection["n_kept"] > 0
    assert selection["widened"] and "widened to the top" in selection["note"]
    assert "(requested top 5: " in result.output and f"kept {selection['n_kept']} of" in result.output
    assert len(Circuit.load(out / "circuit.json").edges) == selection["n_kept"]


def test_an_explicit_threshold_that_keeps_nothing_exits_non_zero_but_writes_the_graph(app, tmp_path):
    result, out = _run(app, tmp_path, "empty", "--method", "eap", "--threshold", "1e6")
    assert isinstance(result.exception, InterpError) and "the circuit is empty" in str(result.exception)
    assert Circuit.load(out / "circuit.json").edges == ()
    assert json.loads((out / "result.json").read_text())["metrics"]["n_edges"] == 0


def test_acdc_explicit_threshold_that_keeps_nothing_fails(app, tmp_path):
    result, _ = _run(app, tmp_path, "acdc-empty", "--method", "acdc", "--threshold", "50")
    assert isinstance(result.exception, InterpError) and "lower --threshold" in str(result.exception)


def test_scores_selection_widens_only_without_a_threshold():
    from circuits.discovery import ComputationalGraph, EdgeScores

    class Cfg:
        n_layers, n_heads = 1, 2

    graph = ComputationalGraph.build(Cfg())
    values = torch.zeros(len(graph.edges))
    values[graph.edge_index("L0.H0->MLP0")] = 5.0  # the top edge alone reaches neither embed nor logits
    values[graph.edge_index("MLP0->logits")] = 1.0
    values[graph.edge_index("embed->L0.H0")] = 0.5
    scores = EdgeScores(graph, values, "eap")
    circuit = scores.to_circuit(top_n=1)
    assert {str(e) for e in circuit.edges} == {"embed->L0.H0", "L0.H0->MLP0", "MLP0->logits"}
    assert (
        circuit.metadata["selection"]["n_kept"] == 3
        and "widened to the top 3" in circuit.metadata["selection"]["note"]
    )
    empty = scores.to_circuit(threshold=2.0)
    assert empty.edges == () and "the circuit is empty" in empty.metadata["selection"]["note"]


def test_the_new_user_command_gives_a_non_empty_eap_ig_circuit(app, tmp_path):
    """`interp circuit ioi-tiny --task ioi --out DIR` with every default: EAP-IG (the most faithful
    method on the zoo), top 20 edges, a circuit that is not empty."""
    out = tmp_path / "defaults"
    result = CliRunner().invoke(app, ["circuit", "ioi-tiny", "--task", "ioi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["inputs"]["method"] == "eap-ig" == CircuitOptions(task="ioi").method
    assert payload["metrics"]["n_edges"] > 0 and payload["metrics"]["selection"]["top_n"] == 20
    assert payload["metrics"]["faithfulness"] > 0.3
    assert "eap-ig: kept" in result.output and "(requested top 20: 20 edges)" in result.output
