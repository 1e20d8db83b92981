"""Weight edits of an MLP's output projection, applied for a `with` block and restored after.

Every family stores the MLP output projection differently (GPT-2's `Conv1D` weight is [d_mlp, d_model],
`nn.Linear` weights are [d_model, d_mlp]). `OutputProjection` finds it through the adapter table (the
module whose input is `mlp.hook_post`) and presents it in one convention: `mlp_out = post @ W + b`,
W [d_mlp, d_model], b [d_model]. A `WeightEdit` computes new (W, b) from the old ones;
`edit.applied(model)` writes them and restores the originals on exit, exceptions included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from interp.adapters.spec import Direct
from interp.errors import InterpError
from interp.hooked import HookedModel


@dataclass(frozen=True)
class OutputProjection:
    """The MLP output projection of one block, read and written as W [d_mlp, d_model] and b [d_model]."""

    module: nn.Module
    transposed: bool  # True for nn.Linear ([d_model, d_mlp] storage)

    @staticmethod
    def of(model: HookedModel, layer: int) -> OutputProjection:
        """The output projection of block `layer`'s MLP.

        Example:
            >>> proj = OutputProjection.of(model, 1)
            >>> proj.weight().shape  # [d_mlp, d_model]
        """
        if not 0 <= layer < model.cfg.n_layers:
            raise InterpError(f"layer {layer} out of range: the model has {model.cfg.n_layers} layers")
        point = model.adapter.block_points.get("mlp.hook_post")
        if not isinstance(point, Direct) or point.site.io != "in":
            raise InterpError(f"{model.cfg.family}: cannot locate the MLP output projection for weight edits")
        module = model.base_model.get_submodule(point.site.path.format(l=layer))
        if isinstance(module, nn.Linear):
            return OutputProjection(module, transposed=True)
        if type(module).__name__ == "Conv1D":
            return OutputProjection(module, transposed=False)
        raise InterpError(
            f"unsupported MLP output projection {type(module).__name__} (expected Linear or Conv1D)"
        )

    def weight(self) -> Tensor:
        """W [d_mlp, d_model] (a copy)."""
        w = self.module.weight.detach()
        return (w.T if self.transposed else w).clone()

    def bias(self) -> Tensor | None:
        b = getattr(self.module, "bias", None)
        return None if b is None else b.detach().clone()

    def write(self, weight: Tensor, bias: Tensor | None) -> None:
        """Overwrite the parameters in place (W [d_mlp, d_model], b [d_model] or None)."""
        with torch.no_grad():
            target = self.module.weight
            target.copy_((weight.T if self.transposed else weight).to(target.dtype))
            if bias is not None and getattr(self.module, "bias", None) is not None:
                self.module.bias.copy_(bias.to(self.module.bias.dtype))


class WeightEdit:
    """Base class: subclasses set `layer` and implement `new_parameters(W, b) -> (W', b')`."""

    layer: int

    def new_parameters(self, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    @contextlib.contextmanager
    def applied(self, model: HookedModel) -> Iterator[HookedModel]:
        """Edit the weights for the `with` block; the originals are restored on exit.

        Example:
            >>> with edit.applied(model):
            ...     logits = model(tokens)
        """
        proj = OutputProjection.of(model, self.layer)
        weight, bias = proj.weight(), proj.bias()
        try:
            proj.write(*self.new_parameters(weight, bias))
            yield model
        finally:
            proj.write(weight, bias)

    def apply_permanently(self, model: HookedModel) -> None:
        """Write the edited weights and keep them (save the model to keep the edit)."""
        proj = OutputProjection.of(model, self.layer)
        proj.write(*self.new_parameters(proj.weight(), proj.bias()))
