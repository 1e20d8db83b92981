"""Attention knockout (Geva et al. 2023, "Dissecting Recall of Factual Associations"): block attention
from some query positions to some key positions, and see how the output changes.

Implementation: on `attn.hook_pattern` (the attention probabilities), the blocked entries are set to
zero and each query's row is renormalised to sum to 1. That equals adding -inf to the blocked scores
before the softmax (softmax restricted to the allowed keys), the formulation of Geva et al., but it
needs only the pattern hook. A query whose every key is blocked gets an all-zero row (its heads then
output nothing at that position), where the -inf form would be undefined.

Algorithm of the sweep: for each layer (or window of consecutive layers), one intervention set that
knocks out `queries -> keys` in every (or the given) head of those layers; all sets run in one
`run_batched` call; values are the metric, or its change relative to the clean run.

    >>> res = attention_knockout(model, batch.clean, batch.logit_diff, queries=[-1], keys=[1, 2])
    >>> res.values  # [layer]: metric with END -> subject attention blocked at that layer
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from circuits.patching.metrics import Metric, scalar
from circuits.patching.runner import run_sets, token_ids
from circuits.patching.sites import check_layers
from circuits.results import LabelledArray
from interp.errors import InterpError, ShapeError
from interp.hooked import HookedModel, Inputs
from interp.interventions import Intervention

Positions = Sequence[int] | Tensor  # indices shared by the batch, or a [batch, pos] bool mask


@dataclass(frozen=True, eq=False)
class Knockout(Intervention):
    """Block attention where `blocked` [batch or 1, q_pos, k_pos] is True (zero and renormalise rows).

    Use on `blocks.{l}.attn.hook_pattern`, optionally with `heads=`.
    """

    blocked: Tensor = None  # type: ignore[assignment]
    _tensor_fields: ClassVar[tuple[str, ...]] = ("blocked",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hook.endswith("attn.hook_pattern"):
            raise InterpError(
                f"Knockout acts on attention patterns (blocks.{{l}}.attn.hook_pattern), not {self.hook}"
            )
        if self.blocked is None or self.blocked.ndim != 3:
            raise InterpError("Knockout needs blocked= a [batch or 1, q_pos, k_pos] bool tensor")

    def new_value(self, act: Tensor) -> Tensor:  # act: [batch, head, q_pos, k_pos]
        blocked = self.blocked.to(device=act.device, dtype=torch.bool)[:, None]  # [batch, 1, q, k]
        if blocked.shape[-2:] != act.shape[-2:] or blocked.shape[0] not in (1, act.shape[0]):
            raise ShapeError(
                f"Knockout on {self.hook}: blocked has shape {tuple(self.blocked.shape)}, expected "
                f"[{act.shape[0]} or 1, {act.shape[2]}, {act.shape[3]}]"
            )
        kept = act.masked_fill(blocked, 0.0)
        total = kept.sum(-1, keepdim=True)
        return torch.where(
            total > 0, kept / total.clamp_min(torch.finfo(act.dtype).tiny), torch.zeros_like(kept)
        )


def _mask(positions: Positions, n_pos: int, what: str) -> Tensor:
    """[batch or 1, pos] bool from indices or a mask."""
    if isinstance(positions, Tensor) and positions.dtype == torch.bool:
        mask = positions if positions.ndim == 2 else positions[None]
        if mask.shape[-1] != n_pos:
            raise InterpError(f"{what} mask has {mask.shape[-1]} positions, inputs have {n_pos}")
        return mask
    index = [int(p) for p in positions]
    bad = [p for p in index if not -n_pos <= p < n_pos]
    if bad:
        raise InterpError(f"{what} position {bad[0]} out of range for inputs of {n_pos} positions")
    mask = torch.zeros(1, n_pos, dtype=torch.bool)
    mask[0, index] = True
    return mask


def blocked_mask(queries: Positions, keys: Positions, n_pos: int) -> Tensor:
    """[batch or 1, q_pos, k_pos] bool: True where a query in `queries` would attend to a key in `keys`."""
    q, k = _mask(queries, n_pos, "query"), _mask(keys, n_pos, "key")
    return q[:, :, None] & k[:, None, :]


def knockout_interventions(
    layers: Sequence[int], blocked: Tensor, heads: Sequence[int] | None = None
) -> list[Intervention]:
    """Knockouts of `blocked` in `layers` (all heads, or `heads`); for `run_with_interventions`."""
    chosen = None if heads is None else tuple(heads)
    return [Knockout(f"blocks.{layer}.attn.hook_pattern", blocked=blocked, heads=chosen) for layer in layers]


def attention_knockout(
    model: HookedModel,
    inputs: Inputs,
    metric: Metric,
    queries: Positions,
    keys: Positions,
    *,
    window: int = 1,
    per_head: bool = False,
    layers: Sequence[int] | None = None,
    relative: bool = True,
    memory_budget: int | None = None,
) -> LabelledArray:
    """Metric with `queries -> keys` attention blocked in each layer (values [layer], or [layer, head]).

    `window`: block the same edges in `window` consecutive layers starting at each layer (Geva et
    al. use windows of several layers). `relative`: report (m - m_clean) / |m_clean| (the relative
    change; -1 = metric wiped out), else the raw metric.

    Example:
        >>> res = attention_knockout(model, batch.clean, batch.prob, queries=[-1], keys=[1, 2], window=2)
    """
    ids = token_ids(model, inputs)
    n_pos = ids.shape[1]
    blocked = blocked_mask(queries, keys, n_pos)
    if blocked.shape[0] not in (1, ids.shape[0]):
        raise InterpError(f"query/key masks have {blocked.shape[0]} rows for a batch of {ids.shape[0]}")
    n_layers = model.cfg.n_layers
    starts = check_layers(model, layers)
    if window < 1:
        raise InterpError(f"window must be >= 1, got {window}")
    heads = list(range(model.cfg.n_heads)) if per_head else [None]
    sets = [
        knockout_interventions(
            range(start, min(n_layers, start + window)), blocked, None if h is None else (h,)
        )
        for start in starts
        for h in heads
    ]
    with torch.no_grad():
        m_clean = scalar(metric, model(ids)).item()
    values, passes = run_sets(model, ids, sets, metric, memory_budget)
    if relative:
        values = (values - m_clean) / max(abs(m_clean), 1e-12)
    values = values.reshape(len(starts), -1) if per_head else values
    dims = ("layer", "head") if per_head else ("layer",)
    meta = {
        "method": "attention_knockout",
        "implementation": "pattern zeroed and renormalised (= -inf scores)",
        "window": window,
        "relative": relative,
        "metric_clean": m_clean,
        "forward_passes": passes + 1,
    }
    name = "relative change of the metric" if relative else "metric"
    return LabelledArray(values, dims, {"layer": tuple(str(s) for s in starts)}, name, meta)
