"""How close an estimated ICaCE is to the true one: ICaCE error, order-faithfulness, direction agreement.

For edit i let t_i be the true effect vector and e_i the estimate (both [label], probability space).

* ICaCE error (the headline number) is the mean Euclidean (L2) distance ||e_i - t_i||_2 over edits,
  as in CEBaB. Two CEBaB variants are reported beside it: cosine distance 1 - cos(e_i, t_i) (on edits
  whose true effect is not negligible) and NormDiff | ||e_i|| - ||t_i|| |.
* order-faithfulness (per concept): over pairs of edits (i, j) and labels y with
  |t_iy - t_jy| > tol, the fraction where e orders the pair as t does (sign(e_iy - e_jy) ==
  sign(t_iy - t_jy)); 1 = every ranking of effects preserved, 0.5 = chance.
* direction agreement (per concept): over edits whose true effect has L2 norm > tol, the fraction
  with cos(e_i, t_i) > 0 (the estimate moves the output distribution the same way).
Both are None when no edit (pair) clears `tol`, e.g. for a concept the model ignores.

    >>> metrics(estimate, true, edits)["icace_error"]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from circuits.concepts.data import Edits

TOL = 1e-2
"""Effects (and effect differences) smaller than this (in probability, L2) count as zero."""
MAX_PAIRS = 20_000


def l2_error(estimate: Tensor, true: Tensor) -> Tensor:
    """[edit]: ||estimate - true||_2 per edit (estimate, true: [edit, label])."""
    return (estimate - true).norm(dim=-1)


def cosine_error(estimate: Tensor, true: Tensor, tol: float = TOL) -> Tensor:
    """[edit]: 1 - cos(estimate, true); NaN where the true effect is below `tol` or the estimate is 0."""
    cos = torch.nn.functional.cosine_similarity(estimate, true, dim=-1, eps=1e-12)
    ok = (true.norm(dim=-1) > tol) & (estimate.norm(dim=-1) > 0)
    return torch.where(ok, 1 - cos, torch.nan)


def normdiff_error(estimate: Tensor, true: Tensor) -> Tensor:
    """[edit]: | ||estimate|| - ||true|| |."""
    return (estimate.norm(dim=-1) - true.norm(dim=-1)).abs()


def order_faithfulness(estimate: Tensor, true: Tensor, tol: float = TOL, seed: int = 0) -> float | None:
    """Fraction of (edit pair, label) orderings of the true effects that the estimate preserves."""
    n = true.shape[0]
    if n < 2:
        return None
    generator = torch.Generator().manual_seed(seed)
    if n * (n - 1) // 2 > MAX_PAIRS:  # a seeded random subset of pairs (i == j pairs are never counted)
        i, j = torch.randint(n, (2, MAX_PAIRS), generator=generator)
    else:
        i, j = torch.triu_indices(n, n, 1)
    dt, de = true[i] - true[j], estimate[i] - estimate[j]  # [pair, label]
    counted = dt.abs() > tol
    if not counted.any():
        return None
    return ((torch.sign(dt) == torch.sign(de)) & counted).sum().item() / counted.sum().item()


def direction_agreement(estimate: Tensor, true: Tensor, tol: float = TOL) -> float | None:
    """Fraction of edits with a non-negligible true effect whose estimate has positive cosine with it."""
    counted = true.norm(dim=-1) > tol
    if not counted.any():
        return None
    dot = (estimate * true).sum(-1)
    return ((dot > 0) & counted).sum().item() / counted.sum().item()


def _mean(x: Tensor) -> float | None:
    x = x[~torch.isnan(x)]
    return x.mean().item() if x.numel() else None


def summarise(estimate: Tensor, true: Tensor) -> dict[str, float | None]:
    """All scores of one set of edits (estimate, true: [edit, label])."""
    return {
        "icace_error": _mean(l2_error(estimate, true)),
        "icace_error_cosine": _mean(cosine_error(estimate, true)),
        "icace_error_normdiff": _mean(normdiff_error(estimate, true)),
        "order_faithfulness": order_faithfulness(estimate, true),
        "direction_agreement": direction_agreement(estimate, true),
        "true_effect": _mean(true.norm(dim=-1)),
        "estimated_effect": _mean(estimate.norm(dim=-1)),
        "n_edits": int(true.shape[0]),
    }


def metrics(estimate: Tensor, true: Tensor, edits: Edits) -> dict:
    """Scores over all edits plus `per_concept` scores.

    Example:
        >>> m = metrics(estimate, true, edits)
        >>> m["icace_error"], m["per_concept"]["food"]["direction_agreement"]
    """
    if estimate.shape != true.shape:
        raise ValueError(f"estimate has shape {tuple(estimate.shape)}, true {tuple(true.shape)}")
    if not torch.isfinite(estimate).all():
        raise ValueError("the estimate has NaN or infinite entries")
    out: dict = summarise(estimate, true)
    out["per_concept"] = {
        c: summarise(estimate[edits.mask(c)], true[edits.mask(c)]) for c in edits.concepts()
    }
    return out


def clean(value: float | None) -> float | None:
    """A JSON-safe number (None for NaN), rounded to 6 digits."""
    return None if value is None or math.isnan(value) else round(value, 6)
