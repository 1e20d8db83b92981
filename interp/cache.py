"""ActivationCache: the activations recorded by `HookedModel.run_with_cache`, with the usual views, and
the hook callbacks (`recorder`) that record them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import torch

from interp.errors import HookNameError, InterpError, closest
from interp.names import HookPoint

if TYPE_CHECKING:
    from interp.hooked import HookedModel


class ActivationCache(Mapping[str, torch.Tensor]):
    """A read-only mapping hook name -> tensor, plus layer-stacked views and a logit lens.

    >>> logits, cache = model.run_with_cache("When Mary and John went", names="blocks.*.hook_resid_post")
    >>> cache.stack("hook_resid_post").shape  # [layer, batch, pos, d_model]
    """

    def __init__(self, data: dict[str, torch.Tensor], model: HookedModel | None = None):
        self._data = data
        self._model = model

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self._data[name]
        except KeyError:
            hint = closest(name, self._data)
            raise HookNameError(
                f"{name!r} is not in this cache"
                + (f"; did you mean {', '.join(hint)}?" if hint else "")
                + " (pass it in names= to run_with_cache)"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} hooks: {', '.join(list(self)[:4])}{', ...' if len(self) > 4 else ''})"

    def to_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._data)

    def to(self, device: str | torch.device) -> ActivationCache:
        return ActivationCache({k: v.to(device) for k, v in self._data.items()}, self._model)

    def nbytes(self) -> int:
        """Bytes of the tensors held (views of one storage counted once per view)."""
        return sum(t.numel() * t.element_size() for t in self._data.values())

    def layers(self, kind: str) -> list[int]:
        """Block indices that have `blocks.{l}.{kind}` cached, ascending."""
        points = [HookPoint.try_parse(name) for name in self._data]
        return sorted(p.layer for p in points if p is not None and p.layer is not None and p.kind == kind)

    def stack(self, kind: str) -> torch.Tensor:
        """`blocks.{l}.{kind}` for every cached layer, stacked: [layer, ...]."""
        layers = self.layers(kind)
        if not layers:
            raise HookNameError(f"no blocks.*.{kind} in this cache; cache it with names='blocks.*.{kind}'")
        return torch.stack([self._data[f"blocks.{layer}.{kind}"] for layer in layers])

    def accumulated_resid(self) -> torch.Tensor:
        """The residual stream before each block and after the last: [layer + 1, batch, pos, d_model]."""
        pre = self.stack("hook_resid_pre")
        last = self.layers("hook_resid_pre")[-1]
        return torch.cat([pre, self[f"blocks.{last}.hook_resid_post"][None]])

    def decompose_resid(self) -> tuple[list[str], torch.Tensor]:
        """What each component added to the final residual stream: labels and [component, batch, pos, d_model].

        Components: the embedding (resid_pre of block 0), then each block's attn_out and mlp_out;
        they sum to the last block's resid_post.
        """
        labels, parts = ["embed"], [self["blocks.0.hook_resid_pre"]]
        for layer in self.layers("hook_attn_out"):
            labels += [f"attn{layer}", f"mlp{layer}"]
            parts += [self[f"blocks.{layer}.hook_attn_out"], self[f"blocks.{layer}.hook_mlp_out"]]
        return labels, torch.stack(parts)

    def logit_lens(self, pos: int | None = -1) -> torch.Tensor:
        """Logits read off the residual stream before each block and after the last, through the final
        norm and unembedding: [layer + 1, batch, vocab] at `pos` (or [layer + 1, batch, pos, vocab] if None).
        """
        if self._model is None:
            raise InterpError("this cache was built without a model; logit_lens needs one")
        resid = self.accumulated_resid()
        if pos is not None:
            resid = resid[:, :, pos]
        with torch.no_grad():
            return self._model.unembed(resid.to(self._model.device))


def recorder(store: dict, name: str, positions, device, grad: bool) -> Callable[[torch.Tensor], None]:
    """The hook callback `run_with_cache` places at `name`: it puts the activation into `store`,
    cut from the autograd graph unless `grad`, at `positions` only, on `device` if given."""
    if positions is None and device is None and not grad:  # the common case, kept lean: it runs per hook

        def record_plain(tensor: torch.Tensor) -> None:
            # detach() only where there is a graph to cut: outside autograd it would just make a
            # second handle on the same storage, once per hook point per forward
            store[name] = tensor.detach() if tensor.requires_grad else tensor

        return record_plain
    pos_dim = HookPoint(name).pos_dim
    if positions is not None:
        index = (slice(None),) * pos_dim + ((positions if isinstance(positions, slice) else list(positions)),)

    def record(tensor: torch.Tensor) -> None:
        value = tensor if grad else tensor.detach()
        if positions is not None:
            value = value[index]
        if device is not None:
            value = value.to(device)
        store[name] = value

    return record
