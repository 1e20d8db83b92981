"""The attention norm's vector-Jacobian product for many gradients at one input, in closed form.

EAP needs, for every head destination d of a block, dMetric/dx = J(x)^T W_d^T g_d, where x is the
block input [batch, pos, d_model], J(x) the Jacobian of the block's attention norm at x, W_d the
head's q/k/v weights and g_d the gradient at its q/k/v. `torch.func.vjp` under `vmap` computes this
for any norm, but on a CPU it costs several passes over [n_dests, batch, pos, d_model] per op of the
norm. The norms in the attribution table (`circuits.attribution.norms`) all have the form

    y = a * xhat + b,   xhat = (x - c mean(x)) r,   r = (mean((x - c mean(x))^2) + eps)^(-1/2)

(c = 1 for LayerNorm, c = 0 for RMSNorm; a = w, or 1 + w for Gemma's offset RMSNorm), whose
vector-Jacobian product is

    J^T u = r (a u - c mean(a u) - xhat mean(xhat * a u)).

Both `a *` and `- c mean(.)` are linear in u, so they are folded into W_d once per forward
(`fold`), and what is left per gradient is `r (v - xhat mean(xhat * v))` with v = folded W_d^T g_d.

A module is used in closed form only when its kind is in the table, its dtype is float32/float64,
and the closed form matches `torch.func.vjp` on a random input (checked once per module); any other
norm keeps the generic `vmap(vjp)`, so an unknown norm costs time, never correctness.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from circuits.attribution.norms import UnfreezableModelError, norm_kind

_EXACT_DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True)
class ClosedFormNorm:
    """The closed-form VJP of one norm module (see the module docstring)."""

    module: nn.Module
    centred: bool  # c = 1 (LayerNorm) or 0 (RMSNorm)
    offset: bool  # a = 1 + w (Gemma) instead of w
    eps: float

    def gain(self, dtype: torch.dtype) -> Tensor | None:
        """a [d_model], or None when the norm has no weight (a = 1)."""
        weight = getattr(self.module, "weight", None)
        if weight is None:
            return None
        weight = weight.detach().to(dtype)
        return 1 + weight if self.offset else weight

    def fold(self, w: Tensor) -> Tensor:
        """W [..., d_model] -> W a, centred over d_model for LayerNorm (so v = fold(W)^T g is
        a u - c mean(a u))."""
        gain = self.gain(w.dtype)
        if gain is not None:
            w = w * gain
        return w - w.mean(-1, keepdim=True) if self.centred else w

    def normalised(self, x: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """xhat [..., d_model] and r [..., 1] of the norm's input x [..., d_model]."""
        x = x.detach().to(dtype)
        if self.centred:
            x = x - x.mean(-1, keepdim=True)
        r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * r, r

    def vjp(self, x: Tensor, v: Tensor) -> Tensor:
        """x [batch, pos, d_model] (the norm's input), v [n, batch, pos, d_model] (folded products)
        -> J(x)^T u for each of the n gradients: [n, batch, pos, d_model]."""
        xhat, r = self.normalised(x, v.dtype)
        dot = (v * xhat).mean(-1, keepdim=True)  # [n, batch, pos, 1]
        return torch.addcmul(v, xhat, dot, value=-1.0).mul_(r)

    def bias_term(self, w: Tensor, b: Tensor) -> Tensor:
        """What a projection's output out = norm(x) W^T + b holds besides (a xhat) W^T: b + beta W^T
        [..., c], for weights w [..., d_model, c] and bias b [..., c] (beta: the norm's own bias).
        As xhat of a LayerNorm sums to zero over d_model, (a xhat) W^T = xhat fold(W)^T, so
        `out - bias_term` is the product `vjp_summed` needs, read off the model's own q, k, v."""
        beta = getattr(self.module, "bias", None)
        if beta is None:
            return b
        return b + torch.einsum("d,...dc->...c", beta.detach().to(w.dtype), w)

    def vjp_summed(self, x: Tensor, g: Tensor, w: Tensor, groups: int, dots: Tensor | None = None) -> Tensor:
        """sum over the `groups` stacked copies of the batch of J(x)^T W^T g, never forming the
        per-copy [n, batch, pos, d_model] products.

        x [batch, pos, d_model] is the norm's input (`groups` copies of the batch stacked),
        g [n, batch * pos, c] the gradients at the projections' outputs and w [n, c, d_model] the
        folded weights (`fold`). Returns [n, batch / groups, pos, d_model].

        Per copy k, J^T u = r_k v_k - r_k mean(v_k xhat_k) xhat_k with v_k = g_k w. The first term
        summed over k is one product of g scaled by r (all copies side by side along c) with w
        repeated; mean(v_k xhat_k) = mean over c of g_k (xhat_k w^T), whose width is c, not d_model.
        `dots` [n, batch * pos], when given, is sum over c of g (xhat w^T) already (see `bias_term`).
        """
        batch, pos, width = x.shape
        xhat, r = self.normalised(x, g.dtype)
        xhat, r = xhat.flatten(0, 1), r.flatten(0, 1)  # [batch * pos, d_model], [batch * pos, 1]
        n, rows, c = g.shape
        gr = g * r  # [n, batch * pos, c]
        side = (
            gr.unflatten(1, (groups, rows // groups)).transpose(1, 2).flatten(2)
        )  # [n, rows / groups, groups c]
        out = torch.bmm(side, w.repeat(1, groups, 1))  # [n, rows / groups, d_model]
        if dots is None:
            dots = (g * torch.matmul(xhat, w.transpose(1, 2))).sum(-1)  # [n, batch * pos]
        coef = dots * r[:, 0] / width  # [n, batch * pos]
        for coef_k, xhat_k in zip(coef.chunk(groups, 1), xhat.chunk(groups), strict=True):
            out.addcmul_(coef_k[..., None], xhat_k, value=-1.0)
        return out.unflatten(1, (batch // groups, pos))


_CACHE: weakref.WeakKeyDictionary[nn.Module, ClosedFormNorm | None] = weakref.WeakKeyDictionary()


def closed_form(module: nn.Module) -> ClosedFormNorm | None:
    """The closed form of `module`'s VJP, or None when it has none we can trust (module docstring)."""
    if module not in _CACHE:
        _CACHE[module] = _build(module)
    return _CACHE[module]


def _build(module: nn.Module) -> ClosedFormNorm | None:
    try:
        kind = norm_kind(module)
    except UnfreezableModelError:  # a norm outside the table: the generic path handles it
        return None
    if kind is None:
        return None
    params = list(module.parameters())
    dtype = params[0].dtype if params else torch.float32
    if dtype not in _EXACT_DTYPES:
        return None
    if kind == "layer" and tuple(getattr(module, "normalized_shape", ())) != (_width(module),):
        return None
    eps = float(getattr(module, "eps", getattr(module, "variance_epsilon", 1e-6)))
    form = ClosedFormNorm(module, centred=kind == "layer", offset=kind == "rms_offset", eps=eps)
    return form if _agrees(form, dtype) else None


def _width(module: nn.Module) -> int:
    shape = getattr(module, "normalized_shape", None)
    if shape:
        return int(shape[-1])
    return int(module.weight.shape[-1])


def _agrees(form: ClosedFormNorm, dtype: torch.dtype) -> bool:
    """The closed form against autograd through the module itself, on a random input."""
    width = _width(form.module)
    device = next(form.module.parameters()).device if list(form.module.parameters()) else None
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 3, width, generator=gen, dtype=torch.float64) * 3 + 0.5).to(
        dtype=dtype, device=device
    )
    u = torch.randn(4, 2, 3, width, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    with torch.no_grad():
        _, pullback = torch.func.vjp(form.module, x)
        expected = torch.vmap(pullback)(u)[0]
        eye = torch.eye(width, dtype=dtype, device=device)
        got = form.vjp(x, u @ form.fold(eye))  # u fold(I) = a u - c mean(a u)
    # float32 precision even for float64 modules: several (Llama's RMSNorm) compute in float32 inside,
    # where the closed form is the more exact of the two; a wrong formula is off by O(1)
    tol = 1e-4
    return bool(torch.allclose(got, expected, rtol=tol, atol=tol * float(expected.abs().max())))
