"""Export an attribution graph: `graph.json` in the layout the circuit-tracer / Neuronpedia graph viewers
read, and a `Circuit` (DOT, SVG, GraphML, TikZ, JSON).

`graph.json` (one object):

- `metadata`: `slug`, `scan` (model name), `transcoder_list` (the transcoder folder), `prompt`,
  `prompt_tokens` (one string per position), `node_threshold`, `schema_version` (1), and `interp`
  (ours: `edge_threshold`, `replacement_score`, `completeness_score`, `n_layers`, `transcoder_kind`).
- `qParams`: the viewer's initial state: `pinnedIds` (the target logits), `supernodes` ([]),
  `linkType` ("both"), `clickedId` (""), `sg_pos` ("").
- `nodes[]`: `node_id`, `feature`, `layer` (a string), `ctx_idx` (position), `feature_type`,
  `token_prob`, `is_target_logit`, `run_idx` (0), `reverse_ctx_idx` (0), `jsNodeId`, `clerp`,
  `influence`, `activation`. By kind:
  - feature: node_id `"{layer}_{index}_{pos}"`, feature_type `"cross layer transcoder"` (also for
    per-layer sets: the viewers know this name), feature = Cantor pairing of (layer, index);
  - error: node_id `"{layer}_-1_{pos}"`, feature_type `"mlp reconstruction error"`, feature -1;
  - embedding: node_id `"E_{token id}_{pos}"`, layer `"E"`, feature_type `"embedding"`;
  - logit: node_id `"{n_layers + 1}_{token id}_{pos}"`, feature_type `"logit"`, `token_prob` and
    `clerp` `Output "tok" (p=0.123)`.
- `links[]`: `{"source": node_id, "target": node_id, "weight": float}`: the direct linear effect of
  source on target (`AttributionGraph.adjacency[target, source]`), kept edges of the pruned graph only.

The `Circuit` export collapses positions: node `L{l}.mlp.F{i}` sums a feature's edges over positions,
`L{l}.mlp.err` the errors of layer l, `embed` the token embeddings, `logits` the chosen logits.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from circuits.attribution.graph import AttributionGraph
from circuits.attribution.pruning import Pruned
from circuits.graph import Circuit, Node


def _cantor(x: int, y: int) -> int:
    return (x + y) * (x + y + 1) // 2 + y


def node_records(graph: AttributionGraph, influence: list[float]) -> list[dict[str, Any]]:
    """One viewer record per node of `graph`, in the graph's node order."""
    out: list[dict[str, Any]] = []
    for k, (layer, pos, idx) in enumerate(graph.features.tolist()):
        out.append(
            _node(
                f"{layer}_{idx}_{pos}",
                _cantor(layer, idx),
                str(layer),
                pos,
                "cross layer transcoder",
                f"{layer}_{idx}-0",
                influence[k],
                activation=float(graph.activations[k]),
            )
        )
    for layer in range(graph.n_layers):
        for pos in range(graph.n_pos):
            out.append(
                _node(
                    f"{layer}_-1_{pos}",
                    -1,
                    str(layer),
                    pos,
                    "mlp reconstruction error",
                    f"{layer}_-1-{pos}",
                    influence[graph.error_index(layer, pos)],
                )
            )
    for pos, tok in enumerate(graph.tokens):
        out.append(
            _node(
                f"E_{tok}_{pos}",
                pos,
                "E",
                pos,
                "embedding",
                f"E_{tok}-{pos}",
                influence[graph.embedding_index(pos)],
                clerp=graph.str_tokens[pos],
            )
        )
    last, layer = graph.n_pos - 1, str(graph.n_layers + 1)
    for tok, prob, text in zip(graph.logit_tokens, graph.logit_probs.tolist(), graph.logit_strs, strict=True):
        node = _node(
            f"{layer}_{tok}_{last}",
            tok,
            layer,
            last,
            "logit",
            f"L_{tok}-{last}",
            None,
            clerp=f'Output "{text}" (p={prob:.3f})',
        )
        node.update(token_prob=prob, is_target_logit=True)
        out.append(node)
    return out


def _node(
    node_id: str,
    feature: int,
    layer: str,
    pos: int,
    kind: str,
    js: str,
    infl: float | None,
    activation: float | None = None,
    clerp: str = "",
) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "feature": feature,
        "layer": layer,
        "ctx_idx": pos,
        "feature_type": kind,
        "token_prob": 0.0,
        "is_target_logit": False,
        "run_idx": 0,
        "reverse_ctx_idx": 0,
        "jsNodeId": js,
        "clerp": clerp,
        "influence": infl,
        "activation": activation,
    }


def viewer_json(
    graph: AttributionGraph,
    pruned: Pruned,
    *,
    slug: str,
    model_name: str,
    transcoders: str,
    prompt: str,
    node_threshold: float,
    edge_threshold: float,
    graph_scores: dict[str, float],
    transcoder_kind: str,
) -> dict[str, Any]:
    """The `graph.json` object (see the module docstring) for the kept nodes and edges."""
    infl = pruned.influence.tolist()
    records = node_records(graph, infl)
    keep = pruned.node_mask.tolist()
    nodes = [r for r, k in zip(records, keep, strict=True) if k]
    targets, sources = pruned.edge_mask.nonzero(as_tuple=True)
    links = [
        {
            "source": records[s]["node_id"],
            "target": records[t]["node_id"],
            "weight": float(graph.adjacency[t, s]),
        }
        for t, s in zip(targets.tolist(), sources.tolist(), strict=True)
    ]
    logit_ids = [r["node_id"] for r in records if r["feature_type"] == "logit"]
    return {
        "metadata": {
            "slug": slug,
            "scan": model_name,
            "transcoder_list": [transcoders],
            "prompt_tokens": graph.str_tokens,
            "prompt": prompt,
            "node_threshold": node_threshold,
            "schema_version": 1,
            "interp": {
                "edge_threshold": edge_threshold,
                "n_layers": graph.n_layers,
                "transcoder_kind": transcoder_kind,
                **graph_scores,
            },
        },
        "qParams": {
            "pinnedIds": logit_ids,
            "supernodes": [],
            "linkType": "both",
            "clickedId": "",
            "sg_pos": "",
        },
        "nodes": nodes,
        "links": links,
    }


def circuit_node(graph: AttributionGraph, i: int) -> Node:
    """The position-free `Circuit` node of graph node `i`."""
    kind = graph.node_kind(i)
    if kind == "features":
        layer, _, idx = graph.features[i].tolist()
        return Node.feature(layer, "mlp", idx)
    if kind == "errors":
        return Node.error((i - graph.n_features) // graph.n_pos, "mlp")
    return Node.embed() if kind == "embeddings" else Node.logits()


def to_circuit(graph: AttributionGraph, pruned: Pruned, metadata: dict[str, Any] | None = None) -> Circuit:
    """The pruned graph as a `Circuit`, positions collapsed (edge scores summed over positions)."""
    scores: dict[tuple[Node, Node], float] = defaultdict(float)
    targets, sources = pruned.edge_mask.nonzero(as_tuple=True)
    for t, s in zip(targets.tolist(), sources.tolist(), strict=True):
        src, dst = circuit_node(graph, s), circuit_node(graph, t)
        if src != dst:
            scores[(src, dst)] += float(graph.adjacency[t, s])
    edges = list(scores)
    return Circuit.from_edges(
        [(a.name, b.name) for a, b in edges],
        scores=[scores[e] for e in edges],
        metadata={"method": "attribution-graph", **(metadata or {})},
    )
