"""The one AUROC of the package: ranking quality of scores against binary labels.

AUROC is the Mann-Whitney statistic: P(score of a random positive > score of a random negative)
+ 0.5 P(tie), computed from average ranks. `circuits.abstraction` scores out-of-distribution
predictors with it, and `circuits.discovery.edge_auroc` / `node_auroc` score discovered circuits
against known ones with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interp.errors import InterpError


def auroc(scores: Tensor | Sequence[float], labels: Tensor | Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` for binary `labels` (NaN when one class is missing).

    Example:
        >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        0.75
    """
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    y = torch.as_tensor(labels).flatten().bool()
    if s.shape != y.shape:
        raise InterpError(f"auroc: {s.numel()} scores but {y.numel()} labels")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(s)
    _, inverse, counts = torch.unique_consecutive(s[order], return_inverse=True, return_counts=True)
    average = counts.cumsum(0).double() - (counts.double() - 1) / 2  # mean 1-based rank of each tie group
    ranks = torch.empty_like(s)
    ranks[order] = average[inverse]
    u = ranks[y].sum().item() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)
