"""What the edge-level engine needs to know about a model's architecture, read from its adapter.

`describe(model)` returns an `Architecture`: for every block the attention norm (the module whose
input is the heads' residual read), the MLP's input norm (the MLP's residual read), the final norm
(the logits' read), the per-head q/k/v and output weights, whether the residual is parallel, and
the module that post-processes the attention output before it joins the residual stream (a
post-sublayer norm) when there is one. Hook *names* stay the hook layer's (`blocks.{l}.attn.hook_q`,
...); this module only says which modules and weights sit behind them.

Everything here is derived from the adapter table (`model.adapter`) and the module tree; it is the
only place in `circuits/` that reads them, so a richer adapter-owned description replaces it in one
place. Families without a row in `NORMS` are refused with one clear error.

    >>> arch = describe(model)
    >>> arch.w_q(0).shape            # [n_heads, d_model, d_head]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from interp import HookedModel
from interp.adapters.spec import Direct, Fused, SumWithBase
from interp.errors import InterpError

NORMS: dict[str, tuple[str, str | None]] = {
    # family -> (attention input norm, MLP input norm; None = the adapter's resid_mid read site)
    "gpt2": ("h.{l}.ln_1", "h.{l}.ln_2"),
    "gpt_neox": ("layers.{l}.input_layernorm", "layers.{l}.post_attention_layernorm"),
    "llama": ("layers.{l}.input_layernorm", None),
}
"""Where each family's pre-sublayer norms live (the one fact its adapter table does not hold)."""

WHY_NOT = {
    "bert": "BERT normalises the residual stream itself after each sublayer (post-norm), so sublayer "
    "outputs do not add up to what later blocks read",
}


class UnwiredFamilyError(InterpError):
    """The engine cannot wire this family's computational graph."""


@dataclass(frozen=True)
class Projection:
    """Where one of q, k, v (or the output projection) lives: its module and how heads are laid out."""

    module: nn.Module
    heads: int
    part: int | None = None  # q/k/v index within a fused projection
    layout: str = "direct"  # direct | blocked (GPT-2 c_attn) | interleaved (GPT-NeoX)

    def _in_out(self) -> Tensor:
        """The weight as [in, out] (nn.Linear stores [out, in]; transformers' Conv1D [in, out])."""
        w = self.module.weight
        return w.T if isinstance(self.module, nn.Linear) else w

    def _split_out(self, t: Tensor, d_head: int) -> Tensor:
        """[..., out] -> [..., heads, d_head] of this projection's part."""
        if self.layout == "blocked":
            return t.unflatten(-1, (3, self.heads, d_head)).select(-3, self.part)
        if self.layout == "interleaved":
            return t.unflatten(-1, (self.heads, 3, d_head)).select(-2, self.part)
        return t.unflatten(-1, (self.heads, d_head))

    def weight(self, d_head: int) -> Tensor:
        """[heads, d_in, d_head]."""
        return self._split_out(self._in_out(), d_head).movedim(-2, 0)

    def bias(self, d_head: int) -> Tensor | None:
        """[heads, d_head] or None."""
        b = getattr(self.module, "bias", None)
        return None if b is None else self._split_out(b, d_head)


@dataclass(frozen=True)
class Architecture:
    """The modules and weights behind the hook points the engine uses (see the module docstring)."""

    family: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    parallel_residual: bool
    attn_norms: tuple[nn.Module, ...]
    mlp_norms: tuple[nn.Module, ...]
    final_norm: nn.Module
    qkv: tuple[tuple[Projection, Projection, Projection], ...]
    out: tuple[nn.Module, ...]  # the output projection (its input is hook_z)
    post_attn: tuple[nn.Module | None, ...]
    """A module between the output projection and the residual stream (a post-sublayer norm), or None."""

    def w_qkv(self, layer: int, part: int) -> Tensor:
        """[heads (n_heads for q, n_kv_heads for k/v), d_model, d_head]."""
        return self.qkv[layer][part].weight(self.d_head)

    def b_qkv(self, layer: int, part: int) -> Tensor | None:
        return self.qkv[layer][part].bias(self.d_head)

    def w_o(self, layer: int) -> Tensor:
        """[n_heads, d_head, d_model]."""
        module = self.out[layer]
        w = module.weight.T if isinstance(module, nn.Linear) else module.weight  # [n_heads * d_head, d_model]
        return w.unflatten(0, (self.n_heads, self.d_head))


def _projection(base: nn.Module, point: object, layer: int, n_heads: int, n_kv: int, kind: str) -> Projection:
    if isinstance(point, Fused) and point.site.io == "out":
        return Projection(
            base.get_submodule(point.site.path.format(l=layer)), n_heads, point.part, point.layout
        )
    if isinstance(point, Direct) and point.site.io == "out" and point.heads in ("q", "kv"):
        heads = n_heads if point.heads == "q" else n_kv
        return Projection(base.get_submodule(point.site.path.format(l=layer)), heads)
    raise UnwiredFamilyError(
        f"attn.hook_{kind} is not the output of a q/k/v projection in this family's adapter"
    )


def describe(model: HookedModel) -> Architecture:
    """The `Architecture` of `model` (an `UnwiredFamilyError` naming the family when it cannot be wired)."""
    cfg, adapter, base = model.cfg, model.adapter, model.base_model
    family = cfg.family
    if family not in NORMS or getattr(cfg, "is_encoder", False):
        why = WHY_NOT.get(family, "its norms are not described")
        raise UnwiredFamilyError(
            f"edge-level circuit discovery cannot wire the {family!r} family: {why}. Wired families: "
            f"{', '.join(NORMS)}; add one with a row in circuits/discovery/architecture.py:NORMS"
        )
    attn_norm, mlp_norm = NORMS[family]
    points = adapter.block_points
    if mlp_norm is None:
        mid = points.get("hook_resid_mid")
        if not (isinstance(mid, SumWithBase) and mid.read is not None and mid.read.io == "in"):
            raise UnwiredFamilyError(
                f"the {family!r} adapter does not say where the MLP reads the residual stream"
            )
        mlp_norm = mid.read.path
    z = points.get("attn.hook_z")
    attn_out = points.get("hook_attn_out")
    if not (isinstance(z, Direct) and z.site.io == "in" and isinstance(attn_out, Direct)):
        raise UnwiredFamilyError(f"the {family!r} adapter has no per-head output projection input (hook_z)")
    attn_module = z.site.path.rsplit(".", 1)[0]
    layers = range(cfg.n_layers)

    def modules(path: str) -> tuple[nn.Module, ...]:
        return tuple(base.get_submodule(path.format(l=i)) for i in layers)

    post = None if attn_out.site.path == attn_module else attn_out.site.path
    return Architecture(
        family=family,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        n_kv_heads=cfg.n_kv_heads,
        d_head=cfg.d_head,
        parallel_residual=bool(cfg.parallel_residual),
        attn_norms=modules(attn_norm),
        mlp_norms=modules(mlp_norm),
        final_norm=base.get_submodule(adapter.final_norm),
        qkv=tuple(
            tuple(  # type: ignore[misc]
                _projection(base, points[f"attn.hook_{k}"], i, cfg.n_heads, cfg.n_kv_heads, k) for k in "qkv"
            )
            for i in layers
        ),
        out=modules(z.site.path),
        post_attn=modules(post) if post else (None,) * cfg.n_layers,
    )


def post_scale(post_in: Tensor, post_out: Tensor) -> Tensor:
    """Per-coordinate factor D with post_out = D * post_in (0 where post_in is 0): a post-sublayer
    norm with its scale frozen at this run, so head outputs times D add up to what joins the stream."""
    safe = torch.where(post_in == 0, torch.ones_like(post_in), post_in)
    return torch.where(post_in == 0, torch.zeros_like(post_in), post_out / safe)
