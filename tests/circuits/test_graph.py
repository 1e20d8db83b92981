"""circuits.graph: node/edge values, the Circuit JSON schema (round trip, card short form), and every
export: DOT parsed by pydot, GraphML by networkx, TikZ, and figures with and without graphviz."""

from __future__ import annotations

import io
import json

import networkx as nx
import pytest

from circuits.graph import Circuit, Edge, Node, check_format
from circuits.graph import export as export_module
from interp.errors import InterpError


@pytest.fixture
def circuit() -> Circuit:
    return Circuit.from_edges(
        [
            ("embed", "L0.H0"),
            ("L0.H0", "L1.H2", "k"),
            ("L0.H0", "L1.H2", "v"),
            ("L1.H2", "MLP1"),
            ("MLP1", "logits"),
            ("L1.resid.F17", "logits"),
            ("L1.resid.err", "logits"),
        ],
        scores=[1.5, -0.25, 0.75, 2.0, 3.0, 0.5, -0.1],
        metadata={"method": "eap", "model": "test", "seed": 0},
    )


def test_nodes_and_edges_are_frozen_printable_values():
    for name in ("embed", "logits", "L3.H11", "MLP0", "L2.resid.F1024", "L0.mlp.err"):
        assert Node.parse(name).name == name and str(Node.parse(name)) == name
    edge = Edge.parse("L0.H1->L1.H2.k")
    assert (edge.src, edge.dst, edge.qkv) == (Node.attn_head(0, 1), Node.attn_head(1, 2), "k")
    assert edge.name == "L0.H1->L1.H2.k" and repr(edge) == "Edge('L0.H1->L1.H2.k')"
    assert len({Edge.of("embed", "MLP0"), Edge.parse("embed->MLP0")}) == 1
    with pytest.raises(AttributeError):
        edge.qkv = "q"  # type: ignore[misc]
    for bad in ("L1", "head3", "L1.H"):
        with pytest.raises(InterpError, match="cannot parse node"):
            Node.parse(bad)
    with pytest.raises(InterpError):
        Edge.of("embed", "MLP0", "q")  # q/k/v only into heads


def test_json_round_trip_is_exact(circuit, tmp_path):
    assert Circuit.from_json(circuit.to_json()) == circuit
    path = circuit.save(tmp_path / "c.json")
    loaded = Circuit.load(path)
    assert loaded == circuit and loaded.edge_scores[Edge.of("L0.H0", "L1.H2", "k")] == -0.25
    data = json.loads(path.read_text())
    assert data["schema"] == "interp-toolkit/circuit" and data["version"] == 1
    assert {"name", "kind", "layer", "head", "score"} <= set(data["nodes"][0])
    assert {"src", "dst", "qkv", "score"} == set(data["edges"][0])


def test_card_short_form_loads():
    card = {
        "nodes": ["embed", "L0.H0", "MLP1", "logits"],
        "edges": [["embed", "L0.H0"], ["L0.H0", "MLP1"], ["MLP1", "logits"]],
        "alignment": {"x": {"node": "L0.H0"}},
        "position": "END",
    }
    c = Circuit.from_dict(card)
    assert c.edge_pairs() == {
        (Node.embed(), Node.attn_head(0, 0)),
        (Node.attn_head(0, 0), Node.mlp(1)),
        (Node.mlp(1), Node.logits()),
    }
    with pytest.raises(InterpError, match="edges"):
        Circuit.from_dict({"nodes": []})
    with pytest.raises(InterpError, match="unsupported circuit schema"):
        Circuit.from_dict({"schema": "other", "edges": []})


def test_dot_parses_with_pydot_and_lays_out_by_layer(circuit):
    pydot = pytest.importorskip("pydot")
    text = circuit.to_dot()
    (graph,) = pydot.graph_from_dot_data(text)
    assert len(graph.get_edges()) == len(circuit.edges)
    rows = [sub for sub in graph.get_subgraphs() if sub.get_name() != "cluster_legend"]
    names = {n.get_name().strip('"') for sub in rows for n in sub.get_nodes()}
    assert names == {n.name for n in circuit.nodes}
    assert "rankdir=BT" in text and text.count("rank=same") == 6  # embed, L0, L1 heads, MLP1, SAE row, logits


def test_graphml_reads_back_with_networkx(circuit, tmp_path):
    path = circuit.save(tmp_path / "c.graphml")
    graph = nx.read_graphml(path)
    assert set(graph.nodes) == {n.name for n in circuit.nodes}
    assert graph.number_of_edges() == len(circuit.edges) - 1  # the k and v edges share a graph edge
    assert graph.edges["L0.H0", "L1.H2"]["qkv"] == "k,v" and graph.edges["L0.H0", "L1.H2"]["score"] == 0.75
    assert graph.nodes["L1.H2"]["layer"] == 1 and graph.nodes["L1.H2"]["kind"] == "head"
    assert nx.read_graphml(io.BytesIO(circuit.to_graphml().encode())).number_of_nodes() == len(circuit.nodes)


def test_tikz_has_a_picture_with_every_node_and_edge(circuit):
    text = circuit.to_tikz()
    assert text.count("\\begin{tikzpicture}") == 1 and text.rstrip().endswith("\\end{tikzpicture}")
    for node in circuit.nodes:
        label = (
            node.name
            if node.kind not in ("feature", "error")
            else ("F17" if node.kind == "feature" else "err")
        )
        assert label in text
    assert text.count("\\draw[->") == len(circuit.edges)
    assert text.count("{") == text.count("}")


@pytest.mark.parametrize("renderer", ["graphviz", "matplotlib"])
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_figures_with_and_without_graphviz(circuit, tmp_path, monkeypatch, renderer, fmt, magic):
    if renderer == "graphviz" and export_module.renderer() != "graphviz":
        pytest.skip("graphviz `dot` is not on PATH")
    if renderer == "matplotlib":
        monkeypatch.setattr(export_module.shutil, "which", lambda name: None)
    path = circuit.save(tmp_path / f"c.{fmt}")
    head = path.read_bytes()[:256]
    assert magic in head


def test_export_writes_every_format_and_refuses_unknown_ones(circuit, tmp_path):
    paths = circuit.export(tmp_path / "out", ["json", "dot", "graphml", "tikz", "svg"])
    assert sorted(p.name for p in paths) == [
        "circuit.dot",
        "circuit.graphml",
        "circuit.json",
        "circuit.svg",
        "circuit.tex",
    ]
    with pytest.raises(InterpError, match="unknown circuit export format 'gexf'"):
        circuit.export(tmp_path / "bad", ["json", "gexf"])
    assert not (tmp_path / "bad").exists()  # formats are checked before anything is written
    assert check_format(".TEX") == "tikz"


def test_empty_circuit_exports(tmp_path):
    empty = Circuit((), ())
    empty.export(tmp_path, ["json", "dot", "graphml", "tikz", "png"])
    assert Circuit.load(tmp_path / "circuit.json") == empty
    assert "\\begin{tikzpicture}" in (tmp_path / "circuit.tex").read_text()
