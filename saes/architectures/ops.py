"""Small tensor operations shared by the architectures: selections and auxiliary losses."""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor


def topk_indices(score: Float[Tensor, "batch d_sae"], k: int) -> Int[Tensor, "batch k"]:
    """Indices of the k largest entries of each row (unordered), as `score.topk(k).indices` chooses them
    up to ties.

    On a CPU a row-wise topk costs several ns per entry, so on wide rows it runs in two stages:
    split each row into n = d_sae / c strided groups of c entries, take the k groups with the largest
    maxima, then the top k of those k * c entries. Exact: every top-k entry lies in one of those groups,
    since the maxima of the chosen groups are k entries at least as large as any entry of the other
    groups. The group maxima are reductions over a middle axis, which vectorise; the two selections
    see 2 * sqrt(k * d_sae) entries per row instead of d_sae (`_largest`).
    """
    d_sae = score.shape[-1]
    c = _group_size(d_sae, k)
    if score.device.type != "cpu" or score.ndim != 2:
        return score.topk(k, dim=-1, sorted=False).indices
    if c is None:
        return _sortable(score).topk(k, dim=-1, sorted=False).indices
    batch, n = score.shape[0], d_sae // c
    groups = score.detach().reshape(batch, c, n)  # entry j of group g is score[:, j * n + g]
    best = _largest(groups.amax(1), k)  # [batch, k] groups
    cand = groups.gather(2, best[:, None, :].expand(-1, c, -1)).reshape(batch, c * k)  # [batch, (c, k)]
    pick = _largest(cand, k)  # [batch, k] into (member, group)
    # the latent of each candidate, then one gather: cheaper than `pick % k` and `pick // k` (int64
    # division is not vectorised; 0.09 against 0.16 ms at 1024 x 16 on one core)
    members = torch.arange(0, c * n, n, device=score.device)[None, :, None]  # [1, c, 1]
    return (best[:, None, :] + members).reshape(batch, c * k).gather(1, pick)


def _largest(x: Float[Tensor, "rows m"], k: int) -> Int[Tensor, "rows k"]:
    """Positions of the k largest entries of each row of a CPU matrix, unordered (NaN counts as largest).

    Short float rows go to numpy's introselect (`argpartition`): on one core, 1024 rows of 128 took
    0.53 ms there against 1.04 ms in torch's topk on int32 keys (`_sortable`; comparing ints skips the
    NaN test) and 1.34 ms on the floats. From 512 entries a row torch's topk on the keys is faster
    (3.3 against 3.7 ms), and it serves every other case."""
    m = x.shape[-1]
    if x.dtype in (torch.float32, torch.float64) and m <= 256:
        part = np.argpartition(x.contiguous().numpy(), m - k, axis=-1)[:, m - k :]
        return torch.from_numpy(np.ascontiguousarray(part))
    return _sortable(x).topk(k, dim=-1, sorted=False).indices


def _sortable(x: Tensor) -> Tensor:
    """Integer keys in the order of `x`'s values (float32 bit patterns with the negatives' magnitude bits
    flipped; -0.0 sorts just below +0.0), or `x` itself for other dtypes."""
    if x.dtype != torch.float32:
        return x
    bits = x.view(torch.int32)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def _group_size(d_sae: int, k: int) -> int | None:
    """Group size for `topk_indices`' two stages (about sqrt(d_sae / k), a power of two dividing
    d_sae), or None where one topk is cheaper (rows less than 16 k wide)."""
    if k < 1 or d_sae < 16 * k:
        return None
    c = 1 << max(1, round(math.log2(d_sae / k) / 2))
    while c > 1 and d_sae % c:
        c //= 2
    return c if c > 1 and d_sae // c >= k else None


def topk_per_row(score: Float[Tensor, "batch d_sae"], values: Tensor, k: int) -> Tensor:
    """Keep `values` at the k largest `score` entries of each row, zero elsewhere."""
    idx = topk_indices(score, k)  # [batch, k]
    return torch.zeros_like(values).scatter(-1, idx, values.gather(-1, idx))


def topk_global(values: Float[Tensor, "batch d_sae"], n: int) -> Tensor:
    """Keep the n largest entries of the whole matrix (BatchTopK / Mutual Choice allocation)."""
    flat = values.flatten()
    n = max(1, min(n, flat.numel()))
    idx = flat.topk(n, sorted=False).indices
    return torch.zeros_like(flat).scatter(0, idx, flat[idx]).reshape(values.shape)


def topk_per_column(values: Float[Tensor, "batch d_sae"], m: int) -> Tensor:
    """Keep the m largest entries of each column: each latent picks its m tokens (Feature Choice)."""
    m = max(1, min(m, values.shape[0]))
    idx = values.topk(m, dim=0, sorted=False).indices  # [m, d_sae]
    return torch.zeros_like(values).scatter(0, idx, values.gather(0, idx))


def auxk_loss(
    pre: Float[Tensor, "batch d_sae"],
    residual: Float[Tensor, "batch d_out"],
    W_dec: Float[Tensor, "d_sae d_out"],
    weight: Float[Tensor, " d_sae"],
    k_aux: int,
) -> Tensor:
    """Auxiliary reconstruction of the (detached) residual by under-used latents (Gao et al. 2024, AuxK).

    `weight` in [0, 1] says how much each latent takes part: 1 for dead latents, 0 for healthy ones,
    in between for under-used ones (the Zipf generalisation). The top `k_aux` of relu(pre) * weight
    reconstruct the residual without bias; the loss is normalised by the residual's energy and scaled
    by min(1, participating / k_aux) as in SAELens, so it is 0 when no latent is under-used.
    """
    participating = int((weight > 0).sum())
    if participating == 0:
        return pre.new_zeros(())
    k_aux = min(k_aux, participating)
    candidates = pre.relu() * weight  # [batch, d_sae]
    acts = topk_per_row(candidates, candidates, k_aux)
    recon = acts @ W_dec  # [batch, d_out]
    energy = residual.pow(2).sum(-1).mean().clamp_min(1e-12)
    loss = (recon - residual).pow(2).sum(-1).mean() / energy
    return loss * min(1.0, participating / k_aux)


def zipf_weights(density: Float[Tensor, " d_sae"], total_density: float, exponent: float) -> Tensor:
    """How under-used each latent is against a Zipf-shaped target density, in [0, 1].

    Latents are ranked by observed firing frequency; the target for rank r (1-based) is
    c * r^-exponent with c chosen so targets sum to `total_density` (the mean L0). A latent firing at
    or above its target weighs 0, a dead one 1, and one in between 1 - density / target. With every
    latent either dead or healthy this is exactly AuxK's dead mask; the Zipf loss generalises it to the
    latents that are dying but not yet dead.
    """
    d_sae = density.shape[0]
    ranks = torch.arange(1, d_sae + 1, dtype=torch.float32, device=density.device)
    target_sorted = ranks.pow(-exponent)
    target_sorted = target_sorted * (total_density / target_sorted.sum())
    order = density.argsort(descending=True)
    target = torch.empty_like(target_sorted).scatter(0, order, target_sorted).clamp(max=1.0)
    return (1 - density.float() / target.clamp_min(1e-12)).clamp(0, 1)
