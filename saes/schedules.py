"""The trainer's learning-rate schedule and its initial decoder bias (small pure functions, tested alone)."""

from __future__ import annotations

from torch import Tensor


def geometric_median(points: Tensor, iters: int = 50, tol: float = 1e-6) -> Tensor:
    """Geometric median of the rows of `points` [n, d] by Weiszfeld's algorithm."""
    median = points.mean(0)
    for _ in range(iters):
        dist = (points - median).norm(dim=-1).clamp_min(1e-8)  # [n]
        weights = 1 / dist
        new = (weights[:, None] * points).sum(0) / weights.sum()
        if (new - median).norm() < tol * max(1.0, float(median.norm())):
            return new
        median = new
    return median


def lr_factor(step: int, warmup: int, decay: int, max_steps: int | None) -> float:
    """Multiplier of the peak learning rate at `step` (0-based): linear warm-up, flat, linear decay."""
    factor = 1.0
    if warmup:
        factor = min(factor, (step + 1) / warmup)
    if decay and max_steps:
        factor = min(factor, max(0.0, (max_steps - step) / decay))
    return factor
