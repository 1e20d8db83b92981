"""Steering by activation addition (Turner et al. 2023; Rimsky et al. 2024, contrastive activation addition).

Algorithm:
  1. Cache the hook (usually the residual stream of one layer) on prompts with the behaviour
     (`positive`) and on matched prompts without it (`negative`).
  2. The steering vector is the difference of their means at the chosen position (the last token by
     default, or every position averaged): v = mean(positive) - mean(negative), [d_model].
  3. Steer by adding `coeff * v` to that hook while generating (`interp.Add` inside a `HookEdit`).

    >>> v = steering_vector(model, happy_prompts, sad_prompts, "blocks.1.hook_resid_post")
    >>> with steer("blocks.1.hook_resid_post", v, coeff=4.0).applied(model):
    ...     logits = model(prompt)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from circuits.editing.hooks import HookEdit
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs
from interp.interventions import Add


def _pooled(act: Tensor, position: int | Tensor | Literal["mean"]) -> Tensor:
    """[batch, pos, d] -> [batch, d] at `position` (int, [batch] tensor) or averaged over positions."""
    if isinstance(position, str):
        if position != "mean":
            raise InterpError(f"position must be an int, a [batch] tensor or 'mean', got {position!r}")
        return act.mean(1)
    if isinstance(position, int):
        return act[:, position]
    return act[torch.arange(act.shape[0], device=act.device), position.to(act.device)]


def steering_vector(
    model: HookedModel,
    positive: Inputs,
    negative: Inputs,
    hook: str,
    *,
    position: int | Tensor | Literal["mean"] = -1,
    negative_position: int | Tensor | Literal["mean"] | None = None,
) -> Tensor:
    """mean(act(positive)) - mean(act(negative)) at `hook` and `position`: [d_model] (or the hook's last dim).

    Example:
        >>> v = steering_vector(model, ["I love it"], ["I hate it"], "blocks.0.hook_resid_post")
    """
    with torch.no_grad():
        _, pos_cache = model.run_with_cache(positive, names=[hook])
        _, neg_cache = model.run_with_cache(negative, names=[hook])
    other = position if negative_position is None else negative_position
    return _pooled(pos_cache[hook], position).mean(0) - _pooled(neg_cache[hook], other).mean(0)


def steer(hook: str, vector: Tensor, coeff: float = 1.0, positions: Sequence[int] | None = None) -> HookEdit:
    """An edit adding `coeff * vector` at `hook` (every position, or `positions`).

    Example:
        >>> edit = steer("blocks.1.hook_resid_post", v, coeff=2.0)
        >>> edited_logits = edit.run(model, tokens)
    """
    chosen = None if positions is None else tuple(positions)
    return HookEdit((Add(hook, vector=vector.detach(), coeff=float(coeff), positions=chosen),))
