"""Circuit and attribution-graph files as the viewer's graph view: nodes placed row by row.

The viewer reads files, never the `circuits` package: node names of the circuit JSON (`embed`,
`L{l}.H{h}`, `MLP{l}`, `L{l}.{site}.F{i}`, `L{l}.{site}.err`, `logits`) are parsed by
`interp.names.Component`, which `circuits.graph.Node` extends, so both place them alike: rows run along the residual stream (embedding at the bottom, then the
heads of block l, SAE nodes on what they read, MLP l, ..., logits on top), and within a row nodes are
spread by head or latent index. Attribution graphs (nodes with `node_id`, `layer`, `ctx_idx`,
`feature_type`, and `links` with `source`, `target`, `weight`, the layout of circuit-tracer's and
Neuronpedia's graph files) get one row per layer and one column per prompt position.

A graph view: `{"kind": "graph", "rows": [label], "columns": [[label, col]] | None, "nodes": [{"id",
"label", "kind", "row", "col", "score", "info"}], "edges": [{"src", "dst", "score", "label"}]}`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from interp.errors import InterpError
from interp.names import Component


def _parse(name: str) -> dict[str, Any]:
    """kind, layer, head, site, index and depth along the residual stream of a circuit node name."""
    try:
        node = Component.parse(name)
    except InterpError:
        return {"kind": "other", "depth": 0.5}
    fields = {"layer": node.layer, "head": node.head, "site": node.site, "index": node.index}
    return {
        "kind": node.kind,
        **{k: v for k, v in fields.items() if v is not None},
        "depth": float(node.depth),
    }


def _row_label(node: dict[str, Any]) -> str:
    kind, layer = node["kind"], node.get("layer")
    if kind in ("embed", "logits", "other"):
        return kind
    if kind == "head":
        return f"L{layer} heads"
    if kind == "mlp":
        return f"MLP{layer}"
    return f"L{layer} {node['site']} SAE"


def _label(name: str, node: dict[str, Any]) -> str:
    if node["kind"] == "feature":
        return f"F{node['index']}"
    if node["kind"] == "error":
        return f"err {node['site']}"
    return name


def circuit_view(data: dict[str, Any], title: str = "Circuit") -> dict[str, Any]:
    """The graph view of a circuit JSON dict (full or short form, see `circuits.graph`)."""
    raw_nodes = [n if isinstance(n, dict) else {"name": n} for n in data.get("nodes", [])]
    raw_edges = []
    for e in data.get("edges", []):
        if isinstance(e, dict):
            raw_edges.append(e)
        else:
            raw_edges.append({"src": e[0], "dst": e[1]})
    scores = {n["name"]: n.get("score") for n in raw_nodes}
    names = list(scores)
    for e in raw_edges:  # the short form may name nodes only through edges
        names += [n for n in (e["src"], e["dst"]) if n not in scores and n not in names]
    parsed = {n: _parse(n) for n in names}
    depths = sorted({p["depth"] for p in parsed.values()})
    by_row: dict[int, list[str]] = defaultdict(list)
    for name, p in parsed.items():
        by_row[depths.index(p["depth"])].append(name)
    nodes = []
    for row, members in by_row.items():
        members.sort(
            key=lambda n: (parsed[n].get("head", -1), parsed[n].get("site", ""), parsed[n].get("index", -1))
        )
        for i, name in enumerate(members):
            p = parsed[name]
            info = {k: p[k] for k in ("layer", "head", "site", "index") if k in p}
            nodes.append(
                {
                    "id": name,
                    "label": _label(name, p),
                    "kind": p["kind"],
                    "row": row,
                    "col": i - (len(members) - 1) / 2,
                    "score": scores.get(name),
                    "info": info,
                }
            )
    rows = [""] * len(depths)
    for p in parsed.values():
        rows[depths.index(p["depth"])] = _row_label(p)
    edges = [
        {
            "src": e["src"],
            "dst": e["dst"],
            "score": e.get("score"),
            "label": e.get("qkv") or "",
        }
        for e in raw_edges
    ]
    return {
        "kind": "graph",
        "title": title,
        "rows": rows,
        "columns": None,
        "nodes": nodes,
        "edges": edges,
        "metadata": data.get("metadata", {}),
    }


def _attribution_kind(feature_type: str) -> str:
    text = feature_type.lower()
    for word, kind in (("embed", "embed"), ("logit", "logits"), ("error", "error")):
        if word in text:
            return kind
    return "feature"


def attribution_view(data: dict[str, Any], title: str = "Attribution graph") -> dict[str, Any]:
    """The graph view of an attribution graph in circuit-tracer's / Neuronpedia's JSON layout."""
    meta = data.get("metadata", {})
    raw = data.get("nodes", [])
    kinds = [_attribution_kind(str(n.get("feature_type", ""))) for n in raw]

    def layer_key(node: dict[str, Any], kind: str) -> float:
        if kind == "embed":
            return -1.0
        if kind == "logits":
            return 1e9
        try:
            return float(node.get("layer"))
        except (TypeError, ValueError):
            return 1e8

    keys = [layer_key(n, k) for n, k in zip(raw, kinds, strict=True)]
    ordered = sorted(set(keys))
    rows_of = [ordered.index(k) for k in keys]
    ctxs = [int(n.get("ctx_idx", 0)) for n in raw]
    slots, seen = [], defaultdict(int)
    for row, ctx in zip(rows_of, ctxs, strict=True):  # nodes sharing a row and a position sit side by side
        slots.append(seen[(row, ctx)])
        seen[(row, ctx)] += 1
    width = defaultdict(lambda: 1)
    for (_, ctx), n in seen.items():
        width[ctx] = max(width[ctx], n)
    n_pos = max([*ctxs, len(meta.get("prompt_tokens", [])) - 1, 0]) + 1
    start = [0.0] * (n_pos + 1)
    for ctx in range(
        n_pos
    ):  # each position's block of columns is as wide as its fullest row, labelled at its start
        start[ctx + 1] = start[ctx] + width[ctx] + 0.5
    nodes = []
    for node, kind, row, ctx, slot in zip(raw, kinds, rows_of, ctxs, slots, strict=True):
        feature = node.get("feature")
        clerp = str(node.get("clerp") or "")
        quoted = re.search(r'"(.+)"', clerp)
        label = {
            "embed": clerp.strip() or "emb",
            "logits": quoted[1].strip() if quoted else "logit",
            "error": "err",
        }.get(kind) or f"F{_feature_index(str(node['node_id']), feature)}"
        info = {
            k: node[k]
            for k in (
                "layer",
                "ctx_idx",
                "feature",
                "feature_type",
                "activation",
                "influence",
                "token_prob",
                "clerp",
            )
            if node.get(k) not in (None, "")
        }
        nodes.append(
            {
                "id": str(node["node_id"]),
                "label": str(label),
                "kind": kind,
                "row": row,
                "col": start[ctx] + slot,
                "score": node.get("influence", node.get("activation")),
                "info": info,
            }
        )
    rows = [
        "embed" if k == -1.0 else "logits" if k == 1e9 else f"L{k:g}" if k < 1e8 else "?" for k in ordered
    ]
    tokens = list(meta.get("prompt_tokens", []))
    columns = [[tokens[ctx] if ctx < len(tokens) else str(ctx), start[ctx]] for ctx in range(n_pos)]
    edges = [
        {"src": str(link["source"]), "dst": str(link["target"]), "score": link.get("weight"), "label": ""}
        for link in data.get("links", data.get("edges", []))
    ]
    return {
        "kind": "graph",
        "title": title,
        "rows": rows,
        "columns": columns,
        "nodes": nodes,
        "edges": edges,
        "metadata": meta,
    }


def _feature_index(node_id: str, feature: Any) -> Any:
    """The latent index within its layer: node ids read `{layer}_{index}_{position}`, while `feature`
    may be a global id."""
    parts = node_id.split("_")
    return parts[1] if len(parts) == 3 and parts[1].lstrip("-").isdigit() else feature


def is_attribution_graph(data: Any) -> bool:
    """Whether a JSON dict is an attribution graph (node_id / links), rather than a circuit."""
    nodes = data.get("nodes") if isinstance(data, dict) else None
    return bool(nodes) and isinstance(nodes[0], dict) and "node_id" in nodes[0]
