"""What a discovery method runs on: clean and corrupted inputs, a metric, and the ablation baseline.

`CircuitData` holds clean and corrupted token ids [batch, pos] and `metric(logits) -> scalar`
(higher = more of the behaviour, e.g. the logit difference). A `TaskBatch` from `interp.tasks`
converts with `CircuitData.from_task`, and every method accepts either.

An edge outside a circuit has its source's output replaced by an *ablation* value (`ABLATIONS`):
  * `corrupted`: the source's output on the corrupted input (activation patching, the default);
  * `resample`: its output on another clean example of the batch (example i takes i + 1's);
  * `mean`: its mean output over the clean batch, per position;
  * `zero`: nothing.

    >>> data = CircuitData.from_task(interp.tasks.get("ioi").generate(32, seed=0))
    >>> alt = ablate(model, graph, data, "mean").sources     # [n_sources, 1, pos, d_model]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from circuits.discovery.compgraph import ComputationalGraph
from circuits.discovery.engine import EdgeRun, forward
from interp import HookedModel
from interp.errors import InterpError

ABLATIONS = ("corrupted", "resample", "mean", "zero")
Metric = Callable[[Tensor], Tensor]


@dataclass(frozen=True, eq=False)
class CircuitData:
    """Clean/corrupted inputs and the metric a circuit must preserve.

    Example:
        >>> data = CircuitData(clean, corrupted, metric=lambda logits: logits[:, -1, 5].mean())
    """

    clean: Tensor
    """[batch, pos] token ids of the behaviour."""
    corrupted: Tensor
    """[batch, pos] token ids of the counterfactual (same shape)."""
    metric: Metric
    """logits [batch, pos, vocab] -> scalar tensor, differentiable; higher = more of the behaviour."""
    positions: Tensor | None = None
    """[batch] position where the prediction is read (for KL-based scores); None = the last one."""
    name: str = ""
    """A label for results (the task name)."""

    def __post_init__(self) -> None:
        for field_name in ("clean", "corrupted"):
            value = getattr(self, field_name)
            if not isinstance(value, Tensor) or value.ndim != 2 or value.dtype not in (torch.long, torch.int):
                raise InterpError(f"CircuitData.{field_name} must be a [batch, pos] tensor of token ids")
        if self.clean.shape != self.corrupted.shape:
            raise InterpError(
                f"clean {tuple(self.clean.shape)} and corrupted {tuple(self.corrupted.shape)} inputs differ in shape"
            )
        if not callable(self.metric):
            raise InterpError("CircuitData.metric must be callable: logits [batch, pos, vocab] -> scalar")

    @classmethod
    def from_task(cls, batch: Any, metric: str = "logit_diff") -> CircuitData:
        """From an `interp.tasks.TaskBatch`; `metric` is `"logit_diff"` or `"prob"`."""
        if metric not in ("logit_diff", "prob"):
            raise InterpError(f"metric must be 'logit_diff' or 'prob', got {metric!r}")
        return cls(
            batch.clean, batch.corrupted, getattr(batch, metric), batch.positions.get("END"), batch.task
        )

    def __len__(self) -> int:
        return self.clean.shape[0]

    def end_logits(self, logits: Tensor) -> Tensor:
        """[batch, pos, vocab] -> [batch, vocab] at `positions` (the last position by default)."""
        if self.positions is None:
            return logits[:, -1]
        return logits[torch.arange(logits.shape[0], device=logits.device), self.positions.to(logits.device)]


def as_data(data: Any) -> CircuitData:
    """`data` as `CircuitData` (a `TaskBatch` is converted with the logit-difference metric)."""
    if isinstance(data, CircuitData):
        return data
    if all(hasattr(data, a) for a in ("clean", "corrupted", "logit_diff", "positions")):
        return CircuitData.from_task(data)
    raise InterpError(f"expected CircuitData or an interp.tasks TaskBatch, got {type(data).__name__}")


def check_ablation(kind: str) -> str:
    if kind not in ABLATIONS:
        raise InterpError(f"unknown ablation {kind!r}; ablations: {', '.join(ABLATIONS)}")
    return kind


def default_ablation(card: dict | None, chosen: str | None = None) -> str:
    """The ablation a discovery run uses: `chosen`, else the model card's `ablation`, else `corrupted`."""
    return check_ablation(chosen or (card or {}).get("ablation") or "corrupted")


def derangement(n: int) -> Tensor:
    """Example i is paired with example i + 1 (mod n): a permutation with no fixed point for n > 1."""
    return torch.roll(torch.arange(n), -1)


@dataclass
class Ablation:
    """Ablation values of every source, and the logits with every edge ablated when they came free."""

    sources: Tensor  # [n_sources, batch (1 for mean/zero), pos, d_model]
    logits: (
        Tensor | None
    )  # [batch, pos, vocab]: the corrupted run, or the clean run resampled; None otherwise


@torch.no_grad()
@torch.no_grad()  # values to patch in, never differentiated: no autograd graph to build
def ablate(
    model: HookedModel, graph: ComputationalGraph, data: CircuitData, kind: str, clean: EdgeRun | None = None
) -> Ablation:
    """The ablation values of kind `kind` (see the module docstring).

    `clean` (a recorded clean run) saves a forward for `resample` and `mean`.
    """
    check_ablation(kind)
    if kind == "corrupted":
        run = forward(model, graph, data.corrupted.to(model.device), record=True)
        return Ablation(run.sources, run.logits)
    if clean is None or clean.sources is None:
        clean = forward(model, graph, data.clean.to(model.device), record=True)
    sources = clean.sources.detach()
    if kind == "resample":
        if len(data) < 2:
            raise InterpError("resample ablation needs a batch of at least 2 examples")
        order = derangement(len(data)).to(sources.device)
        return Ablation(
            sources[:, order], clean.logits.detach()[order]
        )  # every edge ablated = another example's run
    if kind == "mean":
        return Ablation(sources.mean(1, keepdim=True), None)
    return Ablation(torch.zeros_like(sources[:, :1]), None)


def ablation_sources(
    model: HookedModel, graph: ComputationalGraph, data: CircuitData, kind: str, clean: EdgeRun | None = None
) -> Tensor:
    """Source outputs that replace an ablated edge's: [n_sources, batch (1 for mean/zero), pos, d_model]."""
    return ablate(model, graph, data, kind, clean).sources


@torch.no_grad()
def ablated_logits(
    model: HookedModel, graph: ComputationalGraph, data: CircuitData, ablation: Ablation
) -> Tensor:
    """Logits with every edge ablated (free for corrupted/resample, one forward otherwise)."""
    if ablation.logits is not None:
        return ablation.logits
    every = graph.dense(torch.ones(len(graph.edges)))
    return forward(model, graph, data.clean.to(model.device), alt=ablation.sources, patch=every).logits


def check_metric(clean: Tensor, alt: Tensor, needs_grad: bool = False) -> tuple[float, float]:
    """The metric on the full model and on the all-ablated model, refusing metrics that cannot guide a search.

    Raises `InterpError` when the metric is not a finite scalar, does not depend on the model
    (no gradient when one is needed), or has the same value with and without ablation.
    """
    for value in (clean, alt):
        if not isinstance(value, Tensor) or value.numel() != 1 or not torch.isfinite(value).all():
            raise InterpError(
                f"the metric must return one finite number (a scalar tensor) per batch, got {value!r}"
            )
    if needs_grad and not clean.requires_grad:  # checked first: a constant metric is also "equal"
        raise InterpError(
            "the metric does not depend on the model's logits (no gradient flows to them): "
            "compute it from the logits it is given"
        )
    c, a = float(clean), float(alt)
    if abs(c - a) <= 1e-6 * max(1.0, abs(c)):
        raise InterpError(
            f"the metric is {c:.4g} both on the full model and with every edge ablated: it does not measure "
            "anything the model computes from these inputs (check the metric, or use a different corruption/ablation)"
        )
    return c, a
