"""What the edge-level engine needs to know about a model, read from its adapter (`model.arch`,
`model.module`, `model.weight`).

`describe(model)` returns the `Wiring` of one model: for every block the module whose input is the
heads' read of the residual stream (the attention norm), the module the MLP's read goes through
(its input norm, or the attention norm on parallel blocks that share it), the final norm (the
logits' read), per-head q/k/v weights (k/v per key/value head, not expanded under grouped-query
attention) and output weights, the residual layout, and what happens to the attention output before
it joins the stream (a post-sublayer norm, a multiplier). Hook *names* stay the hook layer's
(`blocks.{l}.attn.hook_q`, ...).

Refused with one error naming the family (`UnwiredFamilyError`): post-norm encoders (BERT), whose
residual stream is itself normalised after each sublayer, so sublayer outputs do not add up to what
later blocks read; and attention outputs that reach the stream through a module other than the
output projection or a post-norm.

    >>> wiring = describe(model)
    >>> wiring.w_qkv(0, part=1).shape            # [n_kv_heads, d_model, d_head]
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from interp import HookedModel
from interp.errors import InterpError


class UnwiredFamilyError(InterpError):
    """The engine cannot wire this family's computational graph."""


@dataclass(frozen=True, eq=False)
class Wiring:
    """The modules and weights behind the hook points the engine uses (see the module docstring)."""

    model: HookedModel
    family: str
    n_heads: int
    n_kv_heads: int
    parallel_residual: bool
    attn_norms: tuple[nn.Module, ...]
    mlp_reads: tuple[nn.Module, ...]
    """Per block: the module whose first input is the MLP's read of the residual stream."""
    mlp_shares_attn_norm: bool
    """Parallel blocks whose MLP reads the attention norm's output (GPT-J, Phi): `mlp_reads` is then
    the MLP itself, and its input is the attention norm applied to the MLP's own read."""
    final_norm: nn.Module
    post_attn: tuple[nn.Module | None, ...]
    """A norm between the output projection and the residual stream, or None."""
    attn_scale: float
    """Residual multiplier on the attention output."""

    def w_qkv(self, layer: int, part: int) -> Tensor:
        """[heads (n_heads for q, n_kv_heads for k/v), d_model, d_head]."""
        w = self.model.weight(("W_Q", "W_K", "W_V")[part], layer)
        return w if part == 0 else w[:: self.n_heads // self.n_kv_heads]  # undo the GQA expansion

    def b_qkv(self, layer: int, part: int) -> Tensor:
        """[heads, d_head] (zeros when the projection has no bias)."""
        b = self.model.weight(("b_Q", "b_K", "b_V")[part], layer)
        return b if part == 0 else b[:: self.n_heads // self.n_kv_heads]

    def w_o(self, layer: int) -> Tensor:
        """[n_heads, d_head, d_model]."""
        return self.model.weight("W_O", layer)


_CACHE: weakref.WeakKeyDictionary[HookedModel, Wiring] = weakref.WeakKeyDictionary()


def describe(model: HookedModel) -> Wiring:
    """The `Wiring` of `model` (an `UnwiredFamilyError` naming the family when it cannot be wired);
    built once per model (it holds modules, not weights, which are read per forward)."""
    wiring = _CACHE.get(model)
    if wiring is None:
        wiring = _CACHE[model] = _describe(model)
    return wiring


def _describe(model: HookedModel) -> Wiring:
    cfg = model.cfg
    family = cfg.family
    try:
        arch = model.arch
    except InterpError as exc:
        raise UnwiredFamilyError(
            f"edge-level circuit discovery cannot wire the {family!r} family: its adapter describes no architecture ({exc})"
        ) from exc
    if arch.residual == "post_norm":
        raise UnwiredFamilyError(
            f"edge-level circuit discovery cannot wire the {family!r} family: it normalises the residual stream "
            "itself after each sublayer (post-norm), so sublayer outputs do not add up to what later blocks read"
        )
    if arch.attn_add is not None and arch.attn_add != arch.o.path:
        raise UnwiredFamilyError(
            f"edge-level circuit discovery cannot wire the {family!r} family: its attention output reaches the "
            f"residual stream through {arch.attn_add}, not through the output projection or a post-norm"
        )
    layers = range(cfg.n_layers)

    def modules(path: str | None) -> tuple[nn.Module, ...]:
        return tuple(model.module(path, i) if path else nn.Identity() for i in layers)

    if arch.final_norm is None:
        raise UnwiredFamilyError(
            f"edge-level circuit discovery cannot wire the {family!r} family: it has no final norm to read the logits' input at"
        )
    parallel = arch.residual == "parallel"
    shares = parallel and arch.mlp_norm is None
    if shares:
        mlp_reads = modules(arch.mlp)
    else:
        mlp_reads = modules(arch.mlp_norm) if arch.mlp_norm else modules(arch.mlp)
    return Wiring(
        model=model,
        family=family,
        n_heads=cfg.n_heads,
        n_kv_heads=cfg.n_kv_heads,
        parallel_residual=parallel,
        attn_norms=modules(arch.attn_norm),
        mlp_reads=mlp_reads,
        mlp_shares_attn_norm=shares,
        final_norm=model.module(arch.final_norm),
        post_attn=tuple(model.module(arch.attn_post_norm, i) for i in layers)
        if arch.attn_post_norm
        else (None,) * cfg.n_layers,
        attn_scale=float(arch.attn_scale),
    )


def post_scale(post_in: Tensor, post_out: Tensor) -> Tensor:
    """Per-coordinate factor D with post_out = D * post_in (0 where post_in is 0): a post-sublayer
    norm with its scale frozen at this run, so head outputs times D add up to what joins the stream."""
    safe = torch.where(post_in == 0, torch.ones_like(post_in), post_in)
    return torch.where(post_in == 0, torch.zeros_like(post_in), post_out / safe)
