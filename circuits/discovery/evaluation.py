"""Scoring discovery methods against known circuits: ROC curves and AUROC over edges and nodes.

Edges are compared as (src, dst) pairs: a method that scores q, k and v inputs separately gives a
pair the largest |score| of its channels (`EdgeScores.collapse_qkv`). Under grouped-query attention
the heads of a group share their k and v inputs: a k/v edge counts for every head of its group (so
no method can separate two heads of one group by their k/v inputs, only by their q inputs and outputs). AUROC is the probability that
a random true edge outscores a random other edge (ties count half; the Mann-Whitney statistic), so
1.0 means every true edge ranks above every other. Node AUROC leaves out `embed` and `logits`,
which every circuit contains.

    >>> truth = true_circuit(interp.zoo.card("ioi-siit"))          # or a Circuit, dict, JSON path
    >>> edge_auroc(scores, truth)
    >>> print(format_table(auroc_table({"eap": s1, "acdc": s2}, truth)))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from circuits.discovery.scores import EdgeScores
from circuits.graph import Circuit, Edge, Node, as_edge
from circuits.stats import auroc
from interp.errors import InterpError

Pair = tuple[Node, Node]
ScoresLike = EdgeScores | Mapping[Edge, float] | Circuit


def true_circuit(source: Any, folder: str | Path | None = None) -> Circuit:
    """A ground-truth circuit from a `Circuit`, a dict (full schema or the card short form
    `{"nodes": [...], "edges": [[src, dst], ...]}`), a model card holding one under `"circuit"` (inline,
    or a file name relative to `folder`), or a path to a JSON file."""
    if isinstance(source, Circuit):
        return source
    if isinstance(source, str | Path):
        return Circuit.load(source)
    if isinstance(source, Mapping):
        if "circuit" in source:
            inner = source["circuit"]
            if isinstance(inner, str | Path):
                path = Path(folder) / inner if folder is not None else Path(inner)
                return Circuit.load(path)
            return true_circuit(inner)
        return Circuit.from_dict(source)
    raise InterpError(f"cannot read a circuit from {type(source).__name__}")


def _grouped(scores: ScoresLike) -> bool:
    graph = getattr(scores, "graph", None)
    return getattr(graph, "n_kv_heads", None) not in (None, getattr(graph, "n_heads", None))


def _universe(scores: ScoresLike, true_edges: Circuit | Iterable[Any]) -> tuple[dict[Any, float], set]:
    """(pair -> score, true pairs)."""
    return pair_scores(scores), _truth_pairs(true_edges)


def pair_scores(scores: ScoresLike) -> dict[Pair, float]:
    """(src, dst) -> the largest-|score| score of its edges; on a grouped-query graph k/v edges
    count for every head of their group."""
    if not _grouped(scores):
        return _pairs(scores)
    graph = scores.graph
    group = graph.n_heads // graph.n_kv_heads
    out: dict[Pair, float] = {}
    for edge, score in scores.as_dict().items():
        if edge.qkv in ("k", "v"):
            dsts = [Node.attn_head(edge.dst.layer, edge.dst.head * group + i) for i in range(group)]
        else:
            dsts = [edge.dst]
        for dst in dsts:
            pair = (edge.src, dst)
            if pair not in out or abs(score) > abs(out[pair]):
                out[pair] = score
    return out


def _pairs(scores: ScoresLike) -> dict[Pair, float]:
    if isinstance(scores, EdgeScores):
        return scores.collapse_qkv()
    items = scores.edge_scores.items() if isinstance(scores, Circuit) else scores.items()
    out: dict[Pair, float] = {}
    for edge, score in items:
        pair = as_edge(edge).pair
        if pair not in out or abs(score) > abs(out[pair]):
            out[pair] = float(score)
    return out


def _truth_pairs(true_edges: Circuit | Iterable[Any]) -> set[Pair]:
    edges = true_edges.edges if isinstance(true_edges, Circuit) else true_edges
    return {as_edge(e).pair for e in edges}


def _ranked(scores: dict[Any, float], positives: set, absolute: bool) -> list[tuple[float, bool]]:
    missing = positives - set(scores)
    if missing:
        raise InterpError(
            f"{len(missing)} true element(s) are not in the scored graph, e.g. {sorted(map(str, missing))[:3]}; "
            "is the circuit from another model?"
        )
    values = [(abs(s) if absolute else s, key in positives) for key, s in scores.items()]
    n_pos = sum(p for _, p in values)
    if n_pos == 0 or n_pos == len(values):
        raise InterpError("AUROC needs at least one true and one false element")
    return values


def _mann_whitney(values: list[tuple[float, bool]]) -> float:
    return auroc([v for v, _ in values], [p for _, p in values])


def _roc(values: list[tuple[float, bool]]) -> tuple[list[float], list[float]]:
    ordered = sorted(values, key=lambda v: -v[0])
    n_pos = sum(p for _, p in values)
    n_neg = len(values) - n_pos
    fpr, tpr, tp, fp, i = [0.0], [0.0], 0, 0, 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            tp += ordered[j][1]
            fp += not ordered[j][1]
            j += 1
        fpr.append(fp / n_neg)
        tpr.append(tp / n_pos)
        i = j
    return fpr, tpr


def edge_auroc(scores: ScoresLike, true_edges: Circuit | Iterable[Any], absolute: bool = True) -> float:
    """Edge AUROC (`circuits.stats.auroc`) of `scores` (|score| unless `absolute=False`) against `true_edges`.

    Example:
        >>> edge_auroc(scores, [("embed", "L0.H0"), ("L0.H0", "L1.H0")])
    """
    return _mann_whitney(_ranked(*_universe(scores, true_edges), absolute))


def roc_curve(
    scores: ScoresLike, true_edges: Circuit | Iterable[Any], absolute: bool = True
) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) from the highest threshold down, starting at (0, 0)."""
    return _roc(_ranked(*_universe(scores, true_edges), absolute))


def node_auroc(
    scores: EdgeScores | Mapping[Node, float], true_nodes: Circuit | Iterable[Any], absolute: bool = True
) -> float:
    """Node AUROC (heads and MLPs; `embed` and `logits` left out) against the true circuit's nodes."""
    node_scores = scores.node_scores if isinstance(scores, EdgeScores) else scores
    if isinstance(true_nodes, Circuit):
        truth = {n for e in true_nodes.edges for n in e.pair} | set(true_nodes.nodes)
    else:
        truth = {Node.parse(n) for n in true_nodes}
    always = {Node.embed(), Node.logits()}
    values = {Node.parse(n): float(s) for n, s in (node_scores or {}).items() if Node.parse(n) not in always}
    return _mann_whitney(_ranked(values, truth - always, absolute))


def auroc_table(results: Mapping[str, EdgeScores], truth: Any, model: str = "") -> list[dict[str, Any]]:
    """One row per method: edge and node AUROC against `truth` (anything `true_circuit` reads)."""
    circuit = true_circuit(truth)
    rows = []
    for method, scores in results.items():
        row: dict[str, Any] = {"model": model, "method": method}
        for key, fn in (("edge_auroc", edge_auroc), ("node_auroc", node_auroc)):
            try:
                row[key] = fn(scores, circuit)
            except InterpError as exc:
                row[key], row[f"{key}_error"] = None, str(exc)
        row["seconds"] = scores.metadata.get("seconds")
        rows.append(row)
    return rows


def format_table(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...] = ("model", "method", "edge_auroc", "node_auroc", "seconds"),
) -> str:
    """A Markdown table of `rows` (numbers to 3 decimals, missing as '-')."""

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
