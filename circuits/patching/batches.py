"""Task batches whose prompts share one layout, so a position means the same slot in every prompt.

Positional sweeps (a heatmap over layer x position) compare position p across the batch; with IOI's
five templates and two name orders, p is a name in one prompt and "the" in another. `same_layout`
keeps the examples whose named positions all equal the first example's.

    >>> pool = interp.tasks.get("ioi").generate(512, seed=0)
    >>> batch = same_layout(pool, 16)
    >>> batch.positions["IO"]  # one value repeated
"""

from __future__ import annotations

import torch

from interp.errors import InterpError
from interp.tasks import TaskBatch


def same_layout(batch: TaskBatch, n: int | None = None) -> TaskBatch:
    """The first `n` examples (all, by default) whose named positions equal example 0's.

    Example:
        >>> same_layout(interp.tasks.get("ioi").generate(256, seed=1), 8).clean.shape
        torch.Size([8, 15])
    """
    if len(batch) == 0:
        raise InterpError("same_layout needs a non-empty batch")
    keep = torch.ones(len(batch), dtype=torch.bool)
    for index in batch.positions.values():
        keep &= index.cpu() == index[0].cpu()
    return batch.select(keep.nonzero()[:, 0][:n].tolist())
