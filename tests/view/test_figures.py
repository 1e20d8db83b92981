"""Static figures: attention patterns carry axis labels and a colour bar; circuit figures a legend
(edge colour = sign, width = |score|) and a title naming the method, model, task and size."""

from __future__ import annotations

import json

import torch

from circuits.graph import Circuit, export
from interp.demo import attention_figure


def test_attention_figure_has_axis_labels_and_colour_bar():
    patterns = torch.rand(2, 3, 4, 4).softmax(-1)  # [layer, head, q_pos, k_pos]
    fig = attention_figure(patterns, ["<bos>", "a", "b", "c"], "title")
    heads, bars = fig.axes[:6], fig.axes[6:]
    assert len(bars) == 1 and bars[0].get_ylabel() == "attention probability"
    assert [ax.get_ylabel() for ax in heads[::3]] == ["query position"] * 2
    assert [ax.get_xlabel() for ax in heads[3:]] == ["key position"] * 3
    # token labels on the outer axes of the grid: keys under the bottom row, queries left of the first column
    assert [t.get_text() for t in heads[3].get_xticklabels()] == ["<bos>", "a", "b", "c"]
    assert [t.get_text() for t in heads[3].get_yticklabels()] == ["<bos>", "a", "b", "c"]


def test_circuit_figure_has_legend_and_title(circuit_folder):
    circuit = Circuit.load(circuit_folder / "circuit.json")
    top = max(abs(e["score"]) for e in json.loads((circuit_folder / "circuit.json").read_text())["edges"])
    fig = export.figure(circuit)
    assert fig._suptitle.get_text() == (
        f"eap circuit: handset-induction on induction ({len(circuit.nodes)} nodes, {len(circuit.edges)} edges)"
    )
    legend = fig.axes[0].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["positive score", "negative score", f"|score| {0.25 * top:.3g}", f"|score| {top:.3g}"]
    widths = [line.get_linewidth() for line in legend.get_lines()]
    assert widths[2] < widths[3]
    dot = export.to_dot(circuit)
    assert f'label="{fig._suptitle.get_text()}"' in dot and "cluster_legend" in dot
    import pydot

    (graph,) = pydot.graph_from_dot_data(dot)
    assert graph.get_subgraph("cluster_legend")
