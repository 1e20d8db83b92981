"""Patching metrics: callables `metric(logits [batch, pos, vocab]) -> scalar tensor`.

Every method in `circuits.patching` takes any callable of that shape (a `TaskBatch`'s `logit_diff` or
`prob` method is one), so nothing here depends on a task's internals. This module builds the usual
ones from token ids and answer positions, checks that a metric returns a scalar, and defines the
normalised form used by every sweep: 0 = the corrupted run's value, 1 = the clean run's.

    >>> metric = logit_diff(answer=batch.answer, wrong=batch.wrong, position=batch.positions["END"])
    >>> metric(model(batch.clean))  # tensor(4.2)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import Tensor

from interp.errors import InterpError

logger = logging.getLogger(__name__)

Metric = Callable[[Tensor], Tensor]
"""`metric(logits [batch, pos, vocab]) -> scalar tensor`; differentiable for attribution patching."""

Position = int | Tensor  # one position for every example, or [batch] per-example positions


def _at(logits: Tensor, position: Position) -> Tensor:
    """Logits at `position`: [batch, pos, vocab] -> [batch, vocab]."""
    if isinstance(position, int):
        return logits[:, position]
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, position.to(logits.device)]


def _ids(ids: int | Tensor, batch: int, device: torch.device) -> Tensor:
    ids = torch.as_tensor(ids, device=device).long()
    return ids.expand(batch) if ids.ndim == 0 else ids


def logit_diff(answer: int | Tensor, wrong: int | Tensor, position: Position = -1) -> Metric:
    """Mean over the batch of logit[answer] - logit[wrong] at `position`.

    Example:
        >>> metric = logit_diff(batch.answer, batch.wrong, batch.positions["END"])
    """

    def metric(logits: Tensor) -> Tensor:
        end = _at(logits, position)  # [batch, vocab]
        a, w = _ids(answer, end.shape[0], end.device), _ids(wrong, end.shape[0], end.device)
        return (end.gather(1, a[:, None]) - end.gather(1, w[:, None])).mean()

    return metric


def prob(answer: int | Tensor, position: Position = -1) -> Metric:
    """Mean over the batch of the probability of `answer` at `position`.

    Example:
        >>> metric = prob(batch.answer, batch.positions["END"])
    """

    def metric(logits: Tensor) -> Tensor:
        probs = _at(logits, position).float().softmax(-1)  # [batch, vocab]
        return probs.gather(1, _ids(answer, probs.shape[0], probs.device)[:, None]).mean()

    return metric


def kl_div(reference_logits: Tensor, position: Position = -1) -> Metric:
    """Mean over the batch of KL(reference || model) between next-token distributions at `position`.

    `reference_logits` [batch, pos, vocab] or [batch, vocab] (already at the position), e.g. the clean
    run's. Zero when the output matches the reference; normalised, 1 - KL / KL(corrupted).

    Example:
        >>> metric = kl_div(model(batch.clean), batch.positions["END"])
    """
    ref = reference_logits if reference_logits.ndim == 2 else _at(reference_logits, position)
    ref_logp = ref.detach().float().log_softmax(-1)  # [batch, vocab]

    def metric(logits: Tensor) -> Tensor:
        logp = _at(logits, position).float().log_softmax(-1)
        ref_ = ref_logp.to(logp.device)
        return (ref_.exp() * (ref_ - logp)).sum(-1).mean()

    return metric


def scalar(metric: Metric, logits: Tensor) -> Tensor:
    """`metric(logits)` as a 0-d tensor, or an `InterpError` naming what it returned instead."""
    value = metric(logits)
    if isinstance(value, (int, float)):
        return torch.tensor(float(value))
    if not isinstance(value, Tensor):
        raise InterpError(f"the metric must return a scalar tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise InterpError(
            f"the metric must return a scalar, got a tensor of shape {tuple(value.shape)} "
            "(average over the batch, e.g. .mean())"
        )
    return value.reshape(())


def reducer(metric: Metric) -> Callable[[Tensor], Tensor]:
    """`metric` as a `run_batched(reduce=...)` function: logits of one set -> 0-d float tensor (no grad)."""
    return lambda logits: scalar(metric, logits).detach().float()


def normalise(values: Tensor, clean: float, corrupted: float) -> Tensor:
    """(values - corrupted) / (clean - corrupted): 0 = corrupted run, 1 = clean run.

    Raises when clean and corrupted give the same value (nothing to restore, the scale is undefined).
    """
    span = clean - corrupted
    if abs(span) < 1e-12:
        raise InterpError(
            f"the metric is {clean:.4g} on both clean and corrupted inputs, so it cannot be normalised; "
            "pick inputs that differ in the metric, or pass normalise=False"
        )
    if abs(span) < 1e-2 * max(1.0, abs(clean), abs(corrupted)):
        logger.warning(
            "clean (%.4g) and corrupted (%.4g) metrics barely differ: normalised values will be noisy",
            clean,
            corrupted,
        )
    return (values - corrupted) / span
