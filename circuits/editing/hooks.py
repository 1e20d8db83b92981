"""Edits made of interventions (ablations, steering): hooks installed for a `with` block only.

A `HookEdit` is a value (a tuple of `interp` interventions); `edit.applied(model)` installs them
through `HookedModel.hooks`, which removes every hook when the block exits, exceptions included, so a
model is never left edited by accident.

    >>> edit = ablation(["blocks.1.attn.hook_z"], heads=(2,))
    >>> with edit.applied(model):
    ...     logits = model(tokens)   # head 1.2 zero-ablated
    >>> model.hooks_installed()
    0
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs
from interp.interventions import Ablate, Intervention


@dataclass(frozen=True)
class HookEdit:
    """Interventions applied while the edit is active (in list order when several share a hook)."""

    interventions: tuple[Intervention, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "interventions", tuple(self.interventions))
        if not all(isinstance(iv, Intervention) for iv in self.interventions):
            raise InterpError("HookEdit takes interp interventions (Patch, Ablate, Add, Scale, Project)")

    def _hook_fns(self) -> dict[str, Callable[[Tensor, str], Tensor]]:
        by_hook: dict[str, list[Intervention]] = {}
        for iv in self.interventions:
            by_hook.setdefault(iv.hook, []).append(iv)

        def compose(ivs: list[Intervention]) -> Callable[[Tensor, str], Tensor]:
            def fn(act: Tensor, name: str) -> Tensor:
                for iv in ivs:
                    act = iv.apply(act)
                return act

            return fn

        return {hook: compose(ivs) for hook, ivs in by_hook.items()}

    @contextlib.contextmanager
    def applied(self, model: HookedModel) -> Iterator[HookedModel]:
        """Install the edit on `model` for the `with` block.

        Example:
            >>> with edit.applied(model):
            ...     edited = model(tokens)
        """
        with model.hooks(self._hook_fns()):
            yield model

    def run(self, model: HookedModel, inputs: Inputs) -> Tensor:
        """Logits of `model` on `inputs` with the edit applied (no gradients)."""
        with torch.no_grad(), self.applied(model):
            return model(inputs)

    def __add__(self, other: HookEdit) -> HookEdit:
        return HookEdit(self.interventions + other.interventions)


def ablation(
    hooks: Sequence[str],
    *,
    kind: Literal["zero", "mean", "resample"] = "zero",
    heads: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
    reference: Tensor | None = None,
) -> HookEdit:
    """An ablation edit: `Ablate` each hook (optionally some heads / positions).

    Example:
        >>> edit = ablation(["blocks.0.hook_mlp_out"], kind="mean", reference=cache["blocks.0.hook_mlp_out"])
    """
    chosen_heads = None if heads is None else tuple(heads)
    chosen_pos = None if positions is None else tuple(positions)
    return HookEdit(
        tuple(
            Ablate(h, kind=kind, heads=chosen_heads, positions=chosen_pos, reference=reference) for h in hooks
        )
    )
