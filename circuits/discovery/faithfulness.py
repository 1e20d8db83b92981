"""How well a circuit explains the model: faithfulness, completeness, and curves over circuit size.

A circuit is run by ablating every edge *outside* it (its source's contribution replaced, for that
destination only, by the ablation value: mean, resample, corrupted or zero; see `data.ABLATIONS`).

  * faithfulness = (m(C) - m(empty)) / (m(full) - m(empty)): 1 when the circuit alone recovers the
    full model's metric, 0 when it does no better than ablating everything (Wang et al. 2023).
  * completeness = 1 - (m(complement) - m(empty)) / (m(full) - m(empty)), where the complement
    keeps every edge except the circuit's: 1 when nothing outside the circuit can do the task.
  * faithfulness curve: faithfulness of the top-k edges by |score| for growing k; its area over
    the fraction of edges kept is CPR (higher is better) and the area between it and 1 is CMD
    (lower is better), the summaries of Mueller et al. 2025 (MIB).

    >>> f = faithfulness(model, data, circuit, ablation="mean")
    >>> f.faithfulness, f.completeness
    >>> curve = faithfulness_curve(model, data, scores)            # curve.cpr, curve.cmd, curve.plot("f.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.data import CircuitData, ablation_sources, as_data, check_ablation
from circuits.discovery.engine import forward
from circuits.discovery.scores import EdgeScores
from circuits.graph import Circuit
from interp import HookedModel
from interp.errors import InterpError
from interp.io import save_figure


@torch.no_grad()
def circuit_metrics(
    model: HookedModel,
    data: CircuitData,
    graph: ComputationalGraph,
    masks: Tensor,
    ablation: str = "mean",
    alt: Tensor | None = None,
    sets_per_pass: int = 8,
) -> Tensor:
    """The metric of each circuit in `masks` [n_sets, n_edges] (True = edge kept): [n_sets].

    Circuits are stacked along the batch axis, `sets_per_pass` per forward.
    """
    data = as_data(data)
    masks = masks.reshape(-1, len(graph.edges)).bool()
    if alt is None:
        alt = ablation_sources(model, graph, data, check_ablation(ablation))
    tokens, batch = data.clean.to(model.device), len(data)
    out = []
    for chunk in masks.split(max(1, sets_per_pass)):
        k = chunk.shape[0]
        patch = graph.dense((~chunk).float()).repeat_interleave(
            batch, dim=0
        )  # [k * batch, n_dests, n_sources]
        alt_k = alt if alt.shape[1] == 1 else alt.repeat(1, k, 1, 1)  # [n_sources, k * batch, pos, d_model]
        logits = forward(model, graph, tokens.repeat(k, 1), alt=alt_k, patch=patch.to(alt.device)).logits
        out += [float(data.metric(part)) for part in logits.split(batch)]
    return torch.tensor(out)


def _graph_and_mask(
    model: HookedModel, circuit: Circuit | Tensor, graph: ComputationalGraph | None
) -> tuple[ComputationalGraph, Tensor]:
    if isinstance(circuit, Tensor):
        if graph is None:
            raise InterpError("a circuit given as an edge mask needs graph=")
        return graph, circuit.bool()
    separate = any(e.qkv for e in circuit.edges)
    graph = graph or ComputationalGraph.build(model.cfg, separate_qkv=separate)
    return graph, graph.mask(circuit.edges)


@dataclass(frozen=True)
class Faithfulness:
    """Metric of the full model, the empty circuit, the circuit and its complement, and the ratios."""

    full: float
    empty: float
    circuit: float
    complement: float
    faithfulness: float
    completeness: float
    n_edges: int
    n_graph_edges: int
    ablation: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def faithfulness(
    model: HookedModel,
    data: Any,
    circuit: Circuit | Tensor,
    ablation: str = "mean",
    graph: ComputationalGraph | None = None,
) -> Faithfulness:
    """Faithfulness and completeness of `circuit` (a `Circuit`, or an edge mask with `graph=`).

    Example:
        >>> faithfulness(model, data, scores.to_circuit(top_n=20), ablation="mean").faithfulness
    """
    data = as_data(data)
    graph, mask = _graph_and_mask(model, circuit, graph)
    n = len(graph.edges)
    sets = torch.stack([torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool), mask, ~mask])
    full, empty, inside, outside = circuit_metrics(model, data, graph, sets, ablation).tolist()
    span = full - empty
    if abs(span) < 1e-9:
        raise InterpError(f"the metric is {full:.4g} with and without every edge: faithfulness is undefined")
    return Faithfulness(
        full,
        empty,
        inside,
        outside,
        (inside - empty) / span,
        1 - (outside - empty) / span,
        int(mask.sum()),
        n,
        ablation,
    )


@dataclass(frozen=True)
class FaithfulnessCurve:
    """Faithfulness of the top-k edges for each k in `n_edges`; `cpr` / `cmd` are its areas."""

    n_edges: tuple[int, ...]
    fraction: tuple[float, ...]
    faithfulness: tuple[float, ...]
    full: float
    empty: float
    cpr: float
    cmd: float
    method: str
    ablation: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def plot(self, path: str | Path | None = None, ax: Any = None) -> Any:
        """Faithfulness against the fraction of edges kept (PNG/PDF/SVG by suffix); returns the figure."""
        from matplotlib.figure import Figure

        figure = None
        if ax is None:
            figure = Figure(figsize=(4.5, 3.2), layout="constrained")
            ax = figure.add_subplot()
        ax.plot(
            self.fraction,
            self.faithfulness,
            marker="o",
            markersize=3,
            label=f"{self.method} (CPR {self.cpr:.2f}, CMD {self.cmd:.2f})",
        )
        ax.axhline(1.0, color="grey", linewidth=0.6, linestyle="--")
        ax.set_xlabel("fraction of edges kept")
        ax.set_ylabel(f"faithfulness ({self.ablation} ablation)")
        ax.legend(fontsize=7)
        if path is not None and figure is not None:
            save_figure(figure, path, dpi=150)
        return figure if figure is not None else ax.figure


def _default_grid(n: int) -> list[int]:
    grid = {0, n, *[min(n, 2**i) for i in range(n.bit_length())]}
    grid |= {round(n * f) for f in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)}
    return sorted(grid)


def faithfulness_curve(
    model: HookedModel,
    data: Any,
    scores: EdgeScores,
    n_edges: Sequence[int] | None = None,
    ablation: str = "mean",
    sets_per_pass: int = 8,
) -> FaithfulnessCurve:
    """Faithfulness of the top-k edges of `scores` for each k (default: 0, powers of two, fixed
    fractions, all edges), with CPR and CMD over the fraction of edges kept (trapezoids)."""
    data = as_data(data)
    graph = scores.graph
    total = len(graph.edges)
    ks = sorted({int(k) for k in (n_edges if n_edges is not None else _default_grid(total))})
    if not ks or ks[0] < 0 or ks[-1] > total:
        raise InterpError(f"n_edges must lie in 0..{total}")
    order = scores.order()
    masks = torch.zeros(len(ks) + 2, total, dtype=torch.bool)
    masks[1] = True  # full model
    for row, k in enumerate(ks, start=2):
        masks[row, order[:k]] = True
    values = circuit_metrics(model, data, graph, masks, ablation, sets_per_pass=sets_per_pass).tolist()
    empty, full, curve = values[0], values[1], values[2:]
    span = full - empty
    if abs(span) < 1e-9:
        raise InterpError("the metric is the same with and without every edge: faithfulness is undefined")
    faith = [(v - empty) / span for v in curve]
    frac = [k / total for k in ks]
    cpr = cmd = 0.0
    for i in range(1, len(ks)):
        width = frac[i] - frac[i - 1]
        cpr += width * (faith[i] + faith[i - 1]) / 2
        cmd += width * (abs(1 - faith[i]) + abs(1 - faith[i - 1])) / 2
    return FaithfulnessCurve(
        tuple(ks), tuple(frac), tuple(faith), full, empty, cpr, cmd, scores.method, ablation
    )
