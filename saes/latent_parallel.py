"""One TopK SAE whose latents are split across ranks (tensor parallelism over the dictionary).

Rank r of R holds latents [r * d_sae / R, (r + 1) * d_sae / R): its columns of `W_enc`, entries of
`b_enc` and rows of `W_dec`; `b_dec` and the input scales are replicated. A step, on every rank:

1. all-gather the ranks' slices of the batch, so every rank sees the global batch [batch, d_in];
2. pre = (x - b_dec) W_enc_r + b_enc_r on the local latents; each rank proposes its local top k per
   token, the R * k proposals are all-gathered, and the global top k among them are kept (each rank
   keeps the winners it owns: the same latents one process would choose);
3. each rank decodes its winners, and the partial reconstructions are summed across ranks
   (`_SumOverRanks`: all-reduce forward, identity backward, since every rank computes the same loss);
4. backward: the gradient reaching (x - b_dec) is summed across ranks (`_CopyToRanks`: identity forward,
   all-reduce backward), so the replicated `b_dec` gets the full gradient on every rank;
5. the gradient norm for clipping is summed over the ranks' latent slices plus `b_dec` once; decoder-row
   constraints and Adam are per latent and need no communication. AuxK picks the global top k_aux
   among dead latents the same way as step 2.

With one process this is the ordinary TopK step. Memory per rank: 1 / R of the SAE and its Adam
state, plus the global batch. `LatentParallelTrainer` runs it through the normal `Trainer` loop.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from interp.errors import InterpError
from saes.architectures import SAELoss, SparseAutoencoder, build
from saes.config import SAEConfig, TrainConfig
from saes.distributed import DistContext
from saes.memory import MemoryReport, per_rank
from saes.trainer import Trainer


class _CopyToRanks(torch.autograd.Function):
    """Identity forward; the gradient is summed over ranks (entering the latent-parallel region)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: DistContext) -> Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return _all_reduce(grad.contiguous(), ctx.group), None


class _SumOverRanks(torch.autograd.Function):
    """Sum of every rank's tensor forward; identity backward (leaving the latent-parallel region)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: DistContext) -> Tensor:
        return _all_reduce(x.contiguous(), group) if group.active else x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def _all_reduce(x: Tensor, group: DistContext) -> Tensor:
    if not group.active:
        return x
    staged = x.to(group.comm_device, copy=True)
    dist.all_reduce(staged)
    return staged.to(x.device)


def _global_topk(scores: Tensor, k: int, group: DistContext) -> tuple[Tensor, Tensor]:
    """(local slot indices [batch, k'], keep mask [batch, k']) of this rank's share of the global top k
    of `scores` [batch, d_local] over all ranks' latents (k' = min(k, d_local); no grad)."""
    k_local = min(k, scores.shape[1])
    values, slots = scores.topk(k_local, dim=-1, sorted=False)  # [batch, k']
    if not group.active:
        return slots, torch.ones_like(slots, dtype=torch.bool)
    batch, world = scores.shape[0], group.world_size
    proposals = group.gather(values).view(world, batch, k_local).permute(1, 0, 2).reshape(batch, -1)
    winners = proposals.topk(min(k, proposals.shape[1]), dim=-1).indices  # [batch, k] in [0, R*k')
    won = torch.zeros_like(proposals, dtype=torch.bool).scatter_(1, winners, True)
    return slots, won.view(batch, world, k_local)[:, group.rank]


class LatentShardedTopK(nn.Module):
    """This rank's slice of the latents of a TopK SAE (see the module docstring)."""

    unit_norm_decoder = True

    def __init__(self, full: SparseAutoencoder, group: DistContext) -> None:
        super().__init__()
        cfg = full.cfg
        if cfg.arch != "topk" or cfg.is_transcoder:
            raise InterpError(
                f"latents split across ranks support the topk SAE (not transcoders), got {cfg.arch!r}"
            )
        if cfg.d_sae % group.world_size:
            raise InterpError(f"d_sae={cfg.d_sae} does not split evenly over {group.world_size} ranks")
        self.cfg, self.group = cfg, group
        self.d_local = cfg.d_sae // group.world_size
        lo = group.rank * self.d_local
        part = slice(lo, lo + self.d_local)
        self.W_enc = nn.Parameter(full.W_enc.detach()[:, part].clone())  # [d_in, d_local]
        self.b_enc = nn.Parameter(full.b_enc.detach()[part].clone())  # [d_local]
        self.W_dec = nn.Parameter(full.W_dec.detach()[part].clone())  # [d_local, d_out]
        self.b_dec = nn.Parameter(full.b_dec.detach().clone())  # [d_out], replicated
        self.register_buffer("scale_in", full.scale_in.detach().clone())
        self.register_buffer("scale_out", full.scale_out.detach().clone())

    def loss(
        self,
        x: Tensor,
        target: Tensor | None = None,
        *,
        sparsity_coef: float = 1.0,
        aux_coef: float = 0.0,
        dead_mask: Tensor | None = None,
        density: Tensor | None = None,
        aux_k: int | None = None,
        grad: Tensor | None = None,
    ) -> SAELoss:
        """The TopK loss on the global batch `x` [batch, d_in]; `acts` holds this rank's latents only."""
        cfg = self.cfg
        x_n = x.to(self.W_enc.dtype) * self.scale_in  # [batch, d_in]
        t_n = (x if target is None else target).to(self.W_dec.dtype) * self.scale_out  # [batch, d_out]
        x_c = x_n - self.b_dec if cfg.apply_b_dec_to_input else x_n
        pre = torch.addmm(self.b_enc, _CopyToRanks.apply(x_c, self.group), self.W_enc)  # [batch, d_local]
        slots, keep = _global_topk(pre.detach(), cfg.k, self.group)
        vals = (pre.gather(1, slots) * keep).relu()  # [batch, k'], zero where another rank won
        partial = F.embedding_bag(slots, self.W_dec, per_sample_weights=vals.to(self.W_dec.dtype), mode="sum")
        recon = _SumOverRanks.apply(partial, self.group) + self.b_dec  # [batch, d_out]
        mse = (recon - t_n).pow(2).sum(-1).mean()
        aux = self._auxk(pre, (t_n - recon).detach(), dead_mask, aux_k or max(1, cfg.d_in // 2))
        acts = torch.zeros_like(pre).scatter_(1, slots, vals.detach())  # [batch, d_local]
        return SAELoss(total=mse + aux_coef * aux, mse=mse, sparsity=mse.new_zeros(()), aux=aux, acts=acts)

    def _auxk(self, pre: Tensor, residual: Tensor, dead_mask: Tensor | None, k_aux: int) -> Tensor:
        """AuxK over the dead latents of every rank (the same value as one process's AuxK)."""
        n_local = 0 if dead_mask is None else int(dead_mask.sum())
        n_dead = self.group.sum_int(n_local)
        if n_dead == 0:
            return pre.new_zeros(())
        k_aux = min(k_aux, n_dead)
        scores = (
            pre.relu().masked_fill(~dead_mask, -math.inf) if n_local else pre.new_full(pre.shape, -math.inf)
        )
        slots, keep = _global_topk(scores.detach(), k_aux, self.group)
        vals = pre.relu().gather(1, slots) * (keep & torch.isfinite(scores.gather(1, slots)))
        partial = F.embedding_bag(slots, self.W_dec, per_sample_weights=vals.to(self.W_dec.dtype), mode="sum")
        recon = _SumOverRanks.apply(partial, self.group)  # [batch, d_out]
        energy = residual.pow(2).sum(-1).mean().clamp_min(1e-12)
        return (recon - residual).pow(2).sum(-1).mean() / energy * min(1.0, n_dead / k_aux)

    def gather_full(self) -> SparseAutoencoder:
        """The whole SAE, assembled from every rank's slice (a collective; every rank gets it)."""
        full = build(self.cfg).to(self.W_enc.device)
        with torch.no_grad():
            full.W_enc.copy_(self.group.gather(self.W_enc.detach().T.contiguous()).T)
            full.b_enc.copy_(self.group.gather(self.b_enc.detach()))
            full.W_dec.copy_(self.group.gather(self.W_dec.detach()))
            full.b_dec.copy_(self.b_dec.detach())
            full.scale_in.copy_(self.scale_in)
            full.scale_out.copy_(self.scale_out)
        return full.eval()


class LatentParallelTrainer(Trainer):
    """`Trainer` for a TopK SAE whose latents are split across the ranks of `dist`.

    Every rank passes its own slice of each global batch (as with data parallelism); `fit` returns the
    whole SAE on every rank. With one process it trains exactly like `Trainer`.
    """

    def __init__(
        self,
        cfg: SAEConfig,
        train_cfg: TrainConfig | None = None,
        *,
        dist: DistContext | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        train_cfg = train_cfg or TrainConfig()
        if train_cfg.checkpoint_dir:
            raise InterpError("checkpoints of latent-split SAEs are not supported yet: drop checkpoint_dir")
        self.group = dist or DistContext()
        super().__init__(cfg, train_cfg, dist=DistContext(), device=device)  # the same init as one process
        if getattr(cfg.knobs, "sparse_topk", True) is False:
            raise InterpError(
                "latent-split training uses the sparse TopK path; keep SAEConfig.sparse_topk=True"
            )
        self.sae = LatentShardedTopK(self.sae, self.group).to(self.device)  # type: ignore[assignment]
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=self.tc.lr, betas=self.tc.adam_betas)
        self.tokens_since_fired = torch.zeros(self.sae.d_local, dtype=torch.int64, device=self.device)
        self.density = torch.zeros(self.sae.d_local, dtype=torch.float32, device=self.device)

    def _unpack(self, batch: Any) -> tuple[Tensor, Tensor | None, Tensor | None]:
        x, target, grad = super()._unpack(batch)
        return self.group.gather(x), None if target is None else self.group.gather(target), grad

    def _clip_gradients(self) -> Tensor:
        """Clip by the global norm: the latent slices of every rank, and the replicated b_dec once."""
        sae = self.sae
        sliced = [p.grad for p in (sae.W_enc, sae.b_enc, sae.W_dec) if p.grad is not None]
        local = sum((g.float().pow(2).sum() for g in sliced), torch.zeros((), device=self.device))
        total = _all_reduce(local.reshape(1), self.group)[0]
        if sae.b_dec.grad is not None:
            total = total + sae.b_dec.grad.float().pow(2).sum()
        norm = total.sqrt()
        if self.tc.grad_clip is not None:
            coef = (self.tc.grad_clip / (norm + 1e-6)).clamp(max=1.0)
            for p in sae.parameters():
                if p.grad is not None:
                    p.grad.mul_(coef)
        return norm

    def report_memory(self) -> list[MemoryReport]:
        self.peak_memory = per_rank(self.device, self.group)
        return self.peak_memory

    def fit(self, batches: Any, *, resume: bool = False) -> SparseAutoencoder:
        """Train, then assemble the whole SAE from the ranks' slices (returned on every rank)."""
        super().fit(batches, resume=resume)
        return self.sae.gather_full()
