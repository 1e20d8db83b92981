"""Interchange-intervention accuracy (IIA): how often the network, intervened on, does what the
high-level model says it should.

Algorithm (Geiger et al., "Causal Abstraction for Faithful Model Interpretation"):
  1. Sample (base, sources) counterfactuals from the high-level model; the label is the high-level
     output after each variable takes its value on its own source.
  2. Run every source once and record the activations at the aligned locations.
  3. Run the base with each aligned subspace set to its source's value (`sites.Interchange`).
  4. IIA = fraction of examples whose decoded prediction agrees with the label.

`iia` scores one (possibly multi-source) alignment; `sweep` grades one variable over many
locations in few forward passes (`HookedModel.run_batched`), giving the per-layer, per-position
(or per-head) table that approximate abstraction is read from.

    >>> data = counterfactuals(tm, ["left"], n=256)
    >>> sweep(model, data, "left", grid(model, data, "hook_resid_post")).best()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.abstraction.data import Counterfactuals
from circuits.abstraction.sites import Alignment, Location, check, interchange, position_index
from interp.errors import InterpError
from interp.figures import heatmap_figure
from interp.hooked import HookedModel
from interp.io import save_figure

logger = logging.getLogger(__name__)


def _source_cache(
    model: HookedModel, data: Counterfactuals, variable: str, hooks: Sequence[str]
) -> dict[str, Tensor]:
    _, cache = model.run_with_cache(data.source_ids[variable], names=list(dict.fromkeys(hooks)))
    return cache.to_dict()


def _interventions(
    model: HookedModel, data: Counterfactuals, alignments: Sequence[Alignment], caches: dict
) -> list:
    batch, n_pos = data.base_ids.shape
    out = []
    for a in alignments:
        if a.variable not in data.source_ids:
            raise InterpError(
                f"no source for variable {a.variable!r} in this data (variables: {', '.join(data.variables)})"
            )
        check(model, a, data.base_positions)
        base_pos = position_index(a.location, data.base_positions, batch)
        source_pos = position_index(a.location, data.source_positions[a.variable], batch)
        out.append(interchange(a, caches[a.variable][a.location.hook], base_pos, source_pos, n_pos))
    return out


@torch.no_grad()
def predictions(model: HookedModel, data: Counterfactuals, alignments: Sequence[Alignment]) -> Tensor:
    """[batch] decoded predictions of the base run with every alignment's interchange applied."""
    caches = {}
    for a in alignments:
        hooks = [b.location.hook for b in alignments if b.variable == a.variable]
        if a.variable in data.source_ids and a.variable not in caches:
            caches[a.variable] = _source_cache(model, data, a.variable, hooks)
    ivs = _interventions(model, data, alignments, caches)
    logits = model.run_with_interventions(data.base_ids, ivs)  # [batch, pos, vocab]
    return data.task.decode(_end(logits, data))


def iia(model: HookedModel, data: Counterfactuals, alignments: Alignment | Sequence[Alignment]) -> float:
    """IIA of one alignment, or of several applied together (multi-source: each from its own source).

    Example:
        >>> iia(model, data, Alignment("left", Location("blocks.0.attn.hook_z", "END", head=0)))
        1.0
    """
    alignments = [alignments] if isinstance(alignments, Alignment) else list(alignments)
    agree = data.task.agree(predictions(model, data, alignments), data.labels)
    return agree.float().mean().item()


@torch.no_grad()
def accuracy(model: HookedModel, data: Counterfactuals) -> float:
    """Task accuracy on the base inputs (no intervention), by the task model's `correct`."""
    logits = model(data.base_ids)
    return data.task.correct(_end(logits, data), data.base_outputs).float().mean().item()


def _end(logits: Tensor, data: Counterfactuals) -> Tensor:
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, data.base_positions["END"].to(logits.device)]  # [batch, vocab]


@dataclass(frozen=True)
class IIAResult:
    """IIA of one variable at each of many locations (whole-vector or fixed-subspace interchange)."""

    variable: str
    locations: tuple[Location, ...]
    iia: tuple[float, ...]
    n: int
    """Examples per location."""

    def best(self) -> tuple[Location, float]:
        """The location with the highest IIA, and that IIA (first one on ties)."""
        i = max(range(len(self.iia)), key=lambda j: self.iia[j])
        return self.locations[i], self.iia[i]

    def table(self) -> list[dict]:
        """One row per location: `location`, `hook`, `layer`, `position`, `head`, `iia`."""
        return [
            {
                "location": str(loc),
                "hook": loc.hook,
                "layer": loc.layer,
                "position": loc.position,
                "head": loc.head,
                "iia": v,
            }
            for loc, v in zip(self.locations, self.iia, strict=True)
        ]

    def to_dict(self) -> dict:
        return {
            "variable": self.variable,
            "n": self.n,
            "iia": {str(loc): v for loc, v in zip(self.locations, self.iia, strict=True)},
        }

    def grid(self) -> tuple[list[str], list[str], list[list[float | None]]]:
        """(row labels, column labels, values) for a heatmap: rows are hooks (with head), columns positions."""
        rows = list(dict.fromkeys(_row(loc) for loc in self.locations))
        cols = list(dict.fromkeys(str(loc.position) for loc in self.locations))
        values: list[list[float | None]] = [[None] * len(cols) for _ in rows]
        for loc, v in zip(self.locations, self.iia, strict=True):
            values[rows.index(_row(loc))][cols.index(str(loc.position))] = v
        return rows, cols, values

    def plot(self, path: str | None = None, title: str | None = None):
        """Heatmap of `grid()`; saved to `path` (PNG/PDF/SVG by suffix) when given. Returns the figure."""
        rows, cols, values = self.grid()
        figure = heatmap_figure(
            [values], rows, cols, title=title or f"IIA of {self.variable}", vmin=0.0, vmax=1.0, annotate=True
        )
        if path is not None:
            save_figure(figure, path, dpi=150, tight=True)
        return figure


def _row(loc: Location) -> str:
    return loc.hook if loc.head is None else f"{loc.hook}[H{loc.head}]"


def grid(
    model: HookedModel,
    data: Counterfactuals,
    hook: str = "hook_resid_post",
    positions: Sequence[str | int] | None = None,
    heads: bool = False,
) -> list[Location]:
    """Locations `blocks.{l}.{hook}` for every layer x position (x head when `heads`).

    Example:
        >>> grid(model, data, "attn.hook_z", positions=["END"], heads=True)  # every head at END
    """
    positions = list(positions) if positions is not None else list(data.base_positions)
    head_list: list[int | None] = list(range(model.cfg.n_heads)) if heads else [None]
    locs = [
        Location(f"blocks.{layer}.{hook}", pos, h)
        for layer in range(model.cfg.n_layers)
        for pos in positions
        for h in head_list
    ]
    for loc in locs:
        check(model, loc, data.base_positions)
    return locs


def sweep(
    model: HookedModel,
    data: Counterfactuals,
    variable: str,
    locations: Sequence[Location],
    basis: Tensor | None = None,
    progress: bool = False,
) -> IIAResult:
    """IIA of `variable` aligned (whole vector, or `basis`) at each location, batched with `run_batched`.

    Example:
        >>> result = sweep(model, data, "left", grid(model, data))
        >>> result.plot("iia.png")
    """
    if variable not in data.source_ids:
        raise InterpError(
            f"no source for variable {variable!r} in this data (variables: {', '.join(data.variables)})"
        )
    alignments = [Alignment(variable, loc, basis) for loc in locations]
    caches = {variable: _source_cache(model, data, variable, [loc.hook for loc in locations])}
    sets = [_interventions(model, data, [a], caches) for a in alignments]
    end = data.base_positions["END"]

    def reduce(logits: Tensor) -> Tensor:  # [batch, pos, vocab] -> [batch] codes
        rows = torch.arange(logits.shape[0], device=logits.device)
        return data.task.decode(logits[rows, end.to(logits.device)])

    with torch.no_grad():
        codes = model.run_batched(data.base_ids, sets, reduce=reduce, progress=progress)  # [n_loc, batch]
    scores = tuple(data.task.agree(c, data.labels).float().mean().item() for c in codes)
    logger.info(
        "IIA sweep of %s over %d locations: best %.3f", variable, len(locations), max(scores, default=0.0)
    )
    return IIAResult(variable, tuple(locations), scores, len(data))
