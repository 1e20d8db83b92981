"""Projection edits of an MLP's output (Limisiewicz et al. 2024, DAMA: Debiasing Algorithm through
Model Adaptation): remove a direction from what one MLP writes into the residual stream.

Algorithm:
  1. Find the direction(s) to remove, [k, d_model]: e.g. with `direction_from_pairs`, the normalised
     difference of the MLP's mean outputs on contrasting prompts (DAMA derives them with PLS over
     contrasting prompts; any basis works here).
  2. Orthonormalise the basis, Q [d_model, k], and replace the output projection by its projection
     onto the orthogonal complement: W' = W (I - Q Q^T), b' = b (I - Q Q^T) (W [d_mlp, d_model]).
     Afterwards the MLP's output has exactly zero component along the basis, for every input, while
     everything orthogonal to it is unchanged.
Applied for a `with` block (a `WeightEdit`); measure what it broke with `circuits.editing.evaluate`.

    >>> u = direction_from_pairs(model, prompts_a, prompts_b, layer=1)
    >>> with ProjectionEdit(layer=1, basis=u).applied(model):
    ...     logits = model(tokens)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.editing.weights import WeightEdit
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs


def orthonormal(basis: Tensor) -> Tensor:
    """Q [d, k] with orthonormal columns spanning the rows of `basis` [k, d] (or one [d] vector)."""
    rows = basis.reshape(-1, basis.shape[-1]).double()
    if not bool(torch.isfinite(rows).all()) or float(rows.norm()) == 0.0:
        raise InterpError("the projection basis must be finite and non-zero")
    q, _ = torch.linalg.qr(rows.T)
    return q


@dataclass(frozen=True, eq=False)
class ProjectionEdit(WeightEdit):
    """Remove the span of `basis` [k, d_model] from block `layer`'s MLP output (weights and bias)."""

    layer: int
    basis: Tensor

    def new_parameters(self, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        q = orthonormal(self.basis).to(weight.device)  # [d_model, k]
        if q.shape[0] != weight.shape[1]:
            raise InterpError(f"basis vectors have size {q.shape[0]}, the MLP writes {weight.shape[1]}")
        keep = torch.eye(q.shape[0], dtype=q.dtype, device=q.device) - q @ q.T  # [d_model, d_model]
        new_bias = None if bias is None else (bias.double() @ keep).to(bias.dtype)
        return (weight.double() @ keep).to(weight.dtype), new_bias


def direction_from_pairs(
    model: HookedModel, positive: Inputs, negative: Inputs, layer: int, position: int | Tensor = -1
) -> Tensor:
    """Unit vector [d_model]: mean `mlp_out` of block `layer` on `positive` minus on `negative` at `position`.

    Example:
        >>> u = direction_from_pairs(model, city_paris_prompts, city_rome_prompts, layer=1)
    """
    hook = f"blocks.{layer}.hook_mlp_out"

    def mean_at(inputs: Inputs) -> Tensor:
        with torch.no_grad():
            _, cache = model.run_with_cache(inputs, names=[hook])
        act = cache[hook]  # [batch, pos, d_model]
        if isinstance(position, int):
            return act[:, position].mean(0)
        return act[torch.arange(act.shape[0], device=act.device), position.to(act.device)].mean(0)

    diff = mean_at(positive) - mean_at(negative)
    norm = diff.norm()
    if float(norm) == 0.0:
        raise InterpError(
            "positive and negative prompts give the same mean MLP output: no direction to remove"
        )
    return diff / norm


def component_along(model: HookedModel, inputs: Inputs, layer: int, basis: Tensor) -> Tensor:
    """Norm of the MLP output's component in span(basis), per token: [batch, pos]."""
    hook = f"blocks.{layer}.hook_mlp_out"
    with torch.no_grad():
        _, cache = model.run_with_cache(inputs, names=[hook])
    q = orthonormal(basis).to(cache[hook].device)
    return (cache[hook].double() @ q).norm(dim=-1).float()
