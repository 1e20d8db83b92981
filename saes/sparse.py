"""Sparse TopK kernels: encode to (values, indices), decode from them, and backpropagate only into the
latents that were chosen.

A TopK SAE keeps k of d_sae latents per token, yet the dense reference path scatters them into a
[batch, d_sae] code, decodes it with a dense matmul, and sends dense [batch, d_sae] gradients back
through the decoder and the encoder. Here nothing of width d_sae is built after the encoder matmul
and the selection. For a batch of B tokens with k active latents each:

1. encode (`topk_encode`): pre = (x - b_pre) W_enc + b_enc (one dense matmul, no autograd graph);
   idx = select(pre) [B, k]; vals = pre[b, idx[b, j]] [B, k].
2. decode (`topk_decode`): recon[b] = sum_j vals[b, j] W_dec[idx[b, j]] + b_dec, an embedding bag
   with per-sample weights.
3. decode backward: d vals[b, j] = <d recon[b], W_dec[idx[b, j]]>; d W_dec[i] = sum over (b, j) with
   idx[b, j] = i of vals[b, j] d recon[b] (rows no token chose get zero); d b_dec = sum_b d recon[b].
4. encode backward: d W_enc[:, i] = sum over (b, j) with idx[b, j] = i of d vals[b, j] (x - b_pre)[b];
   d b_enc[i] = the same sum of d vals; d b_pre = -W_enc d b_enc; d x[b] = sum_j d vals[b, j] W_enc[:, idx[b, j]].

The weight gradients in steps 3-4 are index_adds over the B*k (token, latent) pairs; `LatentBags`
sorts the pairs by latent once per step and does each as one CSR [d_sae, B] @ [B, d] product. The
per-pair dot products of step 3 and the decode of step 2 use `embedding_bag`'s kernels. Two of those
are private aten ops (`_embedding_bag_per_sample_weights_backward`, `_embedding_bag_dense_backward`)
called positionally: each is probed once per (device type, dtype) against a public-op version
(`private_ops_work`), and where it is missing, raises or disagrees, the public version runs instead
(it materialises the [batch*k, d] gathered rows). Both functions are checked against the dense
reference in `tests/saes/test_sparse.py` (same loss, same gradients), on both kernel paths.

Latent codes leave the training step as sparse COO tensors [batch, d_sae] (`sparse_codes`);
`firing_counts` and `mean_l0` read either layout.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

log = logging.getLogger(__name__)

Selector = Callable[[Tensor], Tensor]
"""Maps pre-activations [batch, d_sae] (no grad) to the chosen latent indices [batch, k]."""

USE_PRIVATE_OPS = True
"""Use the private embedding-bag kernels where `private_ops_work` says they run correctly (False: always
the public-op versions)."""


# ---- embedding-bag kernels: private aten ops, with public-op versions ---------------------------------
def _bag_index(idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(flat indices [batch*k], bag offsets [batch], bag of each flat index [batch*k]) of idx [batch, k]."""
    batch, k = idx.shape
    offsets = torch.arange(0, batch * k, k, device=idx.device)
    offset2bag = torch.arange(batch, device=idx.device).repeat_interleave(k)
    return idx.reshape(-1), offsets, offset2bag


def _gather_dot_private(src: Tensor, table: Tensor, idx: Tensor) -> Tensor:
    flat, offsets, offset2bag = _bag_index(idx)
    out = torch.ops.aten._embedding_bag_per_sample_weights_backward(
        src.contiguous(), table, flat, offsets, offset2bag, 0, -1
    )  # (grad, weight, indices, offsets, offset2bag, mode=sum, padding_idx=-1) -> [batch*k]
    return out.reshape(idx.shape)


def _gather_dot_public(src: Tensor, table: Tensor, idx: Tensor) -> Tensor:
    return (table[idx] * src[:, None, :]).sum(-1)  # [batch, k, d] -> [batch, k]


def _scatter_private(src: Tensor, weight: Tensor, idx: Tensor, n_rows: int) -> Tensor:
    flat, _, offset2bag = _bag_index(idx)
    bag_size = torch.full((idx.shape[0],), idx.shape[1], dtype=torch.long, device=flat.device)
    no_max = torch.empty(0, dtype=torch.long, device=flat.device)
    return torch.ops.aten._embedding_bag_dense_backward(
        src.contiguous(), flat, offset2bag, bag_size, no_max, n_rows, False, 0, weight.reshape(-1), -1
    )  # (grad, indices, offset2bag, bag_size, max_indices, num_weights, scale_grad, mode=sum, psw, pad)


def _scatter_public(src: Tensor, weight: Tensor, idx: Tensor, n_rows: int) -> Tensor:
    pairs = (weight[:, :, None] * src[:, None, :]).flatten(0, 1)  # [batch*k, d]
    return src.new_zeros(n_rows, src.shape[1]).index_add_(0, idx.reshape(-1), pairs)


@functools.cache
def private_ops_work(device_type: str, dtype: torch.dtype) -> bool:
    """Whether both private kernels exist, run, and agree with their public versions on a small probe
    on this device type and dtype (checked once; a failure is logged and the public versions run)."""
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 7, (5, 3), generator=gen).to(device_type)
    src = torch.randn(5, 4, generator=gen).to(device_type, dtype)
    table = torch.randn(7, 4, generator=gen).to(device_type, dtype)
    weight = torch.randn(5, 3, generator=gen).to(device_type, dtype)
    tol = {"atol": 1e-2, "rtol": 1e-2} if dtype in (torch.float16, torch.bfloat16) else {}
    try:
        torch.testing.assert_close(
            _gather_dot_private(src, table, idx), _gather_dot_public(src, table, idx), **tol
        )
        torch.testing.assert_close(
            _scatter_private(src, weight, idx, 7), _scatter_public(src, weight, idx, 7), **tol
        )
    except (AttributeError, RuntimeError, TypeError, AssertionError) as exc:
        log.warning(
            "private embedding-bag kernels unusable on %s/%s (%s); using public ops", device_type, dtype, exc
        )
        return False
    return True


def _private(src: Tensor) -> bool:
    return USE_PRIVATE_OPS and private_ops_work(src.device.type, src.dtype)


# ---- the (token, latent) pairs of a selection ------------------------------------------------------
def _argsort_latents(flat: Int[Tensor, " pairs"], n_rows: int) -> Int[Tensor, " pairs"]:
    """Positions of `flat` (latent ids < n_rows) in ascending order of id, stable.

    On the CPU with at most 2^16 latents this is numpy's radix sort of 16-bit keys: 9x faster than
    torch's comparison sort at 16k pairs (0.07 against 0.59 ms on one core)."""
    if flat.device.type == "cpu" and n_rows <= 1 << 16:
        keys = flat.numpy().astype(np.uint16)  # ids < 2^16: exact
        return torch.from_numpy(np.argsort(keys, kind="stable"))
    return flat.argsort(stable=True)


class LatentBags:
    """The batch*k (token, latent) pairs of a TopK selection: `idx` [batch, k] per token, and (built on
    first use, then shared by every backward of the step) the same pairs grouped by latent, as the
    sparsity pattern of a CSR matrix [n_rows, batch].

    Example:
        >>> bags = LatentBags(torch.tensor([[0, 2], [2, 1]]), n_rows=4)
        >>> bags.scatter_rows(torch.eye(2), torch.ones(2, 2))  # row i: sum of the tokens that chose i
        tensor([[1., 0.],
                [0., 1.],
                [1., 1.],
                [0., 0.]])
    """

    def __init__(self, idx: Int[Tensor, "batch k"], n_rows: int) -> None:
        self.idx = idx
        self.n_rows = n_rows
        self._pattern: tuple[Tensor, Tensor, Tensor] | None = None

    @property
    def k(self) -> int:
        """Latents per token."""
        return self.idx.shape[1]

    def _csr_pattern(self) -> tuple[Tensor, Tensor, Tensor]:
        """(order [batch*k] of the flat pairs sorted by latent, crow [n_rows + 1], token of each [batch*k])."""
        if self._pattern is None:
            flat = self.idx.reshape(-1)
            order = _argsort_latents(flat, self.n_rows)
            crow = torch.zeros(self.n_rows + 1, dtype=torch.long, device=flat.device)
            torch.cumsum(torch.bincount(flat, minlength=self.n_rows), 0, out=crow[1:])
            self._pattern = order, crow, order.div(self.k, rounding_mode="floor")
        return self._pattern

    def scatter_rows(
        self, src: Float[Tensor, "batch d"], weight: Float[Tensor, "batch k"]
    ) -> Float[Tensor, "n_rows d"]:
        """out[i] = sum over (b, j) with idx[b, j] == i of weight[b, j] * src[b]; untouched rows are zero
        (an index_add of the chosen rows, done as one CSR [n_rows, batch] @ src product)."""
        if src.dtype not in (torch.float32, torch.float64):  # no sparse CSR matmul: embedding-bag backward
            return self._scatter_rows_embedding_bag(src, weight)
        order, crow, col = self._csr_pattern()
        values = weight.to(src.dtype).reshape(-1)[order]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            pairs = torch.sparse_csr_tensor(
                crow, col, values, (self.n_rows, src.shape[0]), check_invariants=False
            )
        return pairs @ src.contiguous()

    def gather_dot(
        self, src: Float[Tensor, "batch d"], table: Float[Tensor, "n_rows d"]
    ) -> Float[Tensor, "batch k"]:
        """out[b, j] = <src[b], table[idx[b, j]]>, without materialising table[idx] [batch, k, d]
        (the kernel of an embedding bag's per-sample-weight gradient)."""
        kernel = _gather_dot_private if _private(src) else _gather_dot_public
        return kernel(src, table, self.idx)

    def bag_sum(
        self, table: Float[Tensor, "n_rows d"], weight: Float[Tensor, "batch k"]
    ) -> Float[Tensor, "batch d"]:
        """out[b] = sum_j weight[b, j] * table[idx[b, j]] (an embedding bag with per-sample weights)."""
        return F.embedding_bag(self.idx, table, per_sample_weights=weight.to(table.dtype), mode="sum")

    def _scatter_rows_embedding_bag(self, src: Tensor, weight: Tensor) -> Tensor:
        kernel = _scatter_private if _private(src) else _scatter_public
        return kernel(src, weight.to(src.dtype), self.idx, self.n_rows)


# ---- autograd functions --------------------------------------------------------------------------
class TopKDecode(torch.autograd.Function):
    """recon = sum_j vals[:, j] W_dec[idx[:, j]] + b_dec, with a backward that touches only chosen rows.

    Inputs: vals [batch, k], bags (the indices), W_dec [d_sae, d_out], b_dec [d_out] or None.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx, vals: Tensor, bags: LatentBags, W_dec: Tensor, b_dec: Tensor | None
    ) -> Float[Tensor, "batch d_out"]:
        ctx.save_for_backward(vals, W_dec)
        ctx.bags, ctx.has_bias = bags, b_dec is not None
        recon = bags.bag_sum(W_dec, vals)  # [batch, d_out]
        return recon if b_dec is None else recon + b_dec

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, None, Tensor | None, Tensor | None]:
        vals, W_dec = ctx.saved_tensors
        bags: LatentBags = ctx.bags
        need_vals, _, need_w, need_b = ctx.needs_input_grad
        grad_vals = bags.gather_dot(grad, W_dec).to(vals.dtype) if need_vals else None  # [batch, k]
        grad_w = bags.scatter_rows(grad, vals) if need_w else None  # [d_sae, d_out]
        grad_b = grad.sum(0) if (need_b and ctx.has_bias) else None  # [d_out]
        return grad_vals, None, grad_w, grad_b


class TopKEncode(torch.autograd.Function):
    """vals = pre[b, idx[b, j]] for pre = (x - b_pre) W_enc + b_enc, with a backward that touches only
    the chosen latents.

    Inputs: x [batch, d_in], W_enc [d_in, d_sae], b_enc [d_sae], b_pre [d_in] or None, `pre`
    [batch, d_sae] (those pre-activations, computed by the caller without grad; see `topk_encode`)
    and the bags of the selection. Output: vals [batch, k].
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        W_enc: Tensor,
        b_enc: Tensor,
        b_pre: Tensor | None,
        pre: Tensor,
        bags: LatentBags,
    ) -> Float[Tensor, "batch k"]:
        ctx.save_for_backward(x, W_enc, b_pre)
        ctx.bags = bags
        return pre.gather(-1, bags.idx)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_vals: Tensor) -> tuple:
        x, W_enc, b_pre = ctx.saved_tensors
        bags: LatentBags = ctx.bags
        need_x, need_w, need_b, need_pre, _, _ = ctx.needs_input_grad
        grad_x = grad_w = grad_b = grad_pre = None
        if need_w:  # [d_sae, d_in] -> [d_in, d_sae]
            x_c = x if b_pre is None else x - b_pre
            grad_w = bags.scatter_rows(x_c, grad_vals).t()
        if need_b or need_pre:
            grad_b = torch.zeros(bags.n_rows, dtype=grad_vals.dtype, device=grad_vals.device)
            grad_b.index_add_(0, bags.idx.reshape(-1), grad_vals.reshape(-1))  # [d_sae]
            if need_pre:
                grad_pre = -(W_enc @ grad_b.to(W_enc.dtype))  # [d_in]
        if need_x:
            grad_x = bags.bag_sum(W_enc.t().contiguous(), grad_vals)  # [batch, d_in]
        return grad_x, grad_w, grad_b if need_b else None, grad_pre, None, None


def topk_encode(
    x: Float[Tensor, "batch d_in"],
    W_enc: Float[Tensor, "d_in d_sae"],
    b_enc: Float[Tensor, " d_sae"],
    b_pre: Float[Tensor, " d_in"] | None,
    select: Selector,
) -> tuple[Float[Tensor, "batch k"], LatentBags]:
    """Pre-activations of the latents `select` chooses, and the choice; gradients reach only those.

    pre = (x - b_pre) W_enc + b_enc is the one dense [batch, d_sae] tensor, computed without an
    autograd graph; `select(pre)` returns the chosen indices [batch, k].

    Example:
        >>> x, W, b = torch.randn(8, 4), torch.randn(4, 32, requires_grad=True), torch.zeros(32)
        >>> vals, bags = topk_encode(x, W, b, None, lambda pre: pre.topk(3, dim=-1).indices)
        >>> vals.shape, bags.idx.shape
        (torch.Size([8, 3]), torch.Size([8, 3]))
    """
    with torch.no_grad():
        x_c = x if b_pre is None else x - b_pre
        pre = torch.addmm(b_enc, x_c, W_enc)  # [batch, d_sae]
        bags = LatentBags(select(pre), W_enc.shape[1])
    return TopKEncode.apply(x, W_enc, b_enc, b_pre, pre, bags), bags


def topk_decode(
    vals: Float[Tensor, "batch k"],
    bags: LatentBags,
    W_dec: Float[Tensor, "d_sae d_out"],
    b_dec: Float[Tensor, " d_out"] | None = None,
) -> Float[Tensor, "batch d_out"]:
    """`sum_j vals[:, j] * W_dec[idx[:, j]] + b_dec` without building the dense [batch, d_sae] code.

    Example:
        >>> W = torch.randn(32, 4, requires_grad=True)
        >>> topk_decode(torch.rand(8, 3), LatentBags(torch.randint(0, 32, (8, 3)), 32), W).shape
        torch.Size([8, 4])
    """
    return TopKDecode.apply(vals, bags, W_dec, b_dec)


# ---- sparse codes --------------------------------------------------------------------------------
def sparse_codes(vals: Float[Tensor, "batch k"], bags: LatentBags) -> Tensor:
    """The detached codes as a coalesced sparse COO tensor [batch, d_sae] (zeros from relu kept)."""
    idx, d_sae = bags.idx, bags.n_rows
    batch, k = idx.shape
    order = _argsort_rows(idx)  # coalesced: rows ascending, columns ascending within a row
    idx_sorted = idx.gather(-1, order)
    rows = torch.arange(batch, device=idx.device).repeat_interleave(k)
    indices = torch.stack([rows, idx_sorted.reshape(-1)])  # [2, batch*k]
    values = vals.detach().gather(-1, order).reshape(-1)
    return torch.sparse_coo_tensor(indices, values, (batch, d_sae), is_coalesced=True, check_invariants=False)


def _argsort_rows(idx: Int[Tensor, "batch k"]) -> Int[Tensor, "batch k"]:
    """The order that sorts each row of `idx` (distinct within a row, so every sort gives the same one).

    On the CPU numpy's sort (vectorised where the CPU allows) took 0.11 against torch's 0.22 ms at
    1024 x 16 on one core."""
    if idx.device.type == "cpu":
        return torch.from_numpy(np.argsort(idx.numpy(), axis=-1))
    return idx.argsort(-1)


def firing_counts(acts: Tensor) -> Int[Tensor, " d_sae"]:
    """Tokens on which each latent is positive, from dense or sparse COO codes [batch, d_sae]."""
    if acts.is_sparse:  # a weighted count, not a boolean index (2.5x faster at 16k pairs; exact below 2^24)
        fired = (acts.values() > 0).float()
        return torch.bincount(acts.indices()[1], weights=fired, minlength=acts.shape[-1]).long()
    return (acts > 0).sum(0)


def mean_l0(acts: Tensor) -> Tensor:
    """Mean number of non-zero latents per token, from dense or sparse COO codes [batch, d_sae]."""
    if acts.is_sparse:
        return (acts.values() != 0).sum().float() / acts.shape[0]
    return (acts != 0).sum(-1).float().mean()


def auxk_loss(
    x_c: Float[Tensor, "batch d_in"],
    W_enc: Float[Tensor, "d_in d_sae"],
    b_enc: Float[Tensor, " d_sae"],
    W_dec: Float[Tensor, "d_sae d_out"],
    residual: Float[Tensor, "batch d_out"],
    dead_mask: Tensor,
    k_aux: int,
) -> Tensor:
    """AuxK (Gao et al. 2024) computed densely on the dead latents only.

    The same value and gradients as `saes.architectures.ops.auxk_loss` with `weight = dead_mask`:
    the top `k_aux` of relu(pre) over dead latents reconstruct the detached residual without bias,
    normalised by the residual's energy and scaled by min(1, n_dead / k_aux).
    """
    dead = dead_mask.nonzero().squeeze(-1)  # [n_dead]
    if dead.numel() == 0:
        return x_c.new_zeros(())
    k_aux = min(k_aux, dead.numel())
    pre_dead = torch.addmm(b_enc[dead], x_c, W_enc[:, dead]).relu()  # [batch, n_dead]
    vals, j = pre_dead.topk(k_aux, dim=-1, sorted=False)  # [batch, k_aux]
    recon = topk_decode(vals, LatentBags(dead[j], W_dec.shape[0]), W_dec)  # [batch, d_out]
    energy = residual.pow(2).sum(-1).mean().clamp_min(1e-12)
    loss = (recon - residual).pow(2).sum(-1).mean() / energy
    return loss * min(1.0, dead.numel() / k_aux)
