"""Data-parallel SAE training under `torchrun`, and SAEs for different hooks on different ranks.

Data parallelism is DDP's algorithm written out (gradients all-reduced and averaged after `backward`),
because an SAE's training entry point is `loss`, not `forward`, which `DistributedDataParallel` would
need. Each rank takes its contiguous slice of every global batch (`shard_batches`), so with equal
slices the averaged gradient equals the single-process gradient on the global batch; the first batch
is all-gathered for initialisation (input scale, b_dec), latent-firing statistics are combined across
ranks, and floating-point buffers (learned inference thresholds) are averaged after every step.
Only rank 0 writes checkpoints.

The same script runs with `python train.py` (one process, `DistContext()`) and with
`torchrun --nproc-per-node 2 train.py` (gloo on CPU, nccl on CUDA):

    ctx = saes.distributed.init_distributed()
    trainer = saes.Trainer(cfg, train_cfg, dist=ctx)
    sae = trainer.fit(saes.distributed.shard_batches(global_batches, ctx))

To train SAEs for many hooks at once, give each rank its own hooks (`hooks_for_rank`) and its own
`ActivationStore` over them (no communication), or use `saes.ParallelTrainer`, which keeps the model
forward data-parallel and places the SAEs by hook or splits their latents across ranks.

Collectives run on `DistContext.comm_device`: the GPU under nccl, the CPU under gloo (CUDA tensors are
staged through host memory, so several gloo ranks can share one GPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from interp.errors import InterpError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job. `DistContext()` is the single-process job."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes files and logs."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when there is more than one process."""
        return self.world_size > 1

    @property
    def comm_device(self) -> torch.device:
        """Where collectives run: the current GPU under nccl, the CPU under gloo (CUDA tensors are
        staged through host memory, so gloo also works for several ranks sharing one GPU)."""
        if self.active and dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def average_gradients(self, module: nn.Module) -> None:
        """All-reduce and average every parameter's gradient (a no-op on one process)."""
        if not self.active:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads]).to(self.comm_device)
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_buffers(self, module: nn.Module) -> None:
        """Average floating-point buffers across ranks (learned thresholds, scales)."""
        if not self.active:
            return
        for buf in module.buffers():
            if buf.is_floating_point():
                staged = buf.to(self.comm_device)
                dist.all_reduce(staged)
                buf.copy_(staged / self.world_size)

    def gather(self, tensor: Tensor) -> Tensor:
        """Concatenate every rank's `tensor` along dim 0, in rank order (all ranks get the result)."""
        if not self.active:
            return tensor
        staged = tensor.contiguous().to(self.comm_device)
        parts = [torch.empty_like(staged) for _ in range(self.world_size)]
        dist.all_gather(parts, staged)
        return torch.cat(parts).to(tensor.device)

    def gather_on(self, tensor: Tensor, dst: int) -> Tensor | None:
        """Concatenate every rank's `tensor` along dim 0, in rank order, on rank `dst` only (others get
        None). Every rank's tensor must have the same shape."""
        if not self.active:
            return tensor
        staged = tensor.contiguous().to(self.comm_device)
        parts = [torch.empty_like(staged) for _ in range(self.world_size)] if self.rank == dst else None
        dist.gather(staged, parts, dst=dst)
        return None if parts is None else torch.cat(parts).to(tensor.device)

    def any(self, mask: Tensor) -> Tensor:
        """Element-wise OR of a boolean tensor across ranks."""
        if not self.active:
            return mask
        as_int = mask.to(self.comm_device, torch.int32)
        dist.all_reduce(as_int, op=dist.ReduceOp.MAX)
        return as_int.bool().to(mask.device)

    def mean(self, tensor: Tensor) -> Tensor:
        """Element-wise mean of a float tensor across ranks."""
        if not self.active:
            return tensor
        out = tensor.to(self.comm_device, copy=True)
        dist.all_reduce(out)
        return (out / self.world_size).to(tensor.device)

    def sum_int(self, value: int) -> int:
        """Sum of an integer across ranks."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.comm_device)
        dist.all_reduce(t)
        return int(t.item())

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            dist.barrier()


def init_distributed(backend: str | None = None, timeout_s: float = 600) -> DistContext:
    """Join the `torchrun` job described by the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).

    Without those variables (plain `python`), returns the single-process context.
    Backend: `backend`, else $INTERP_DIST_BACKEND, else nccl when CUDA is available and gloo otherwise
    (gloo lets several ranks share one GPU, which nccl refuses). Under nccl each rank uses the GPU
    numbered by its LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = (
            backend
            or os.environ.get("INTERP_DIST_BACKEND")
            or ("nccl" if torch.cuda.is_available() else "gloo")
        )
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size())


def shard_batches(batches: Iterable, ctx: DistContext) -> Iterator:
    """This rank's contiguous slice of each global batch (tensors, tuples of tensors, or dicts).

    The global batch size must divide evenly by the world size, so every rank's mean loss has the
    same weight and averaged gradients equal the global-batch gradient.
    """
    for batch in batches:
        yield _slice(batch, ctx)


def _slice(batch, ctx: DistContext):
    if isinstance(batch, dict):
        return {k: _slice(v, ctx) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(_slice(v, ctx) for v in batch)
    if batch is None or not ctx.active:
        return batch
    n = batch.shape[0]
    if n % ctx.world_size:
        raise InterpError(f"global batch of {n} does not split evenly over {ctx.world_size} ranks")
    per = n // ctx.world_size
    return batch[ctx.rank * per : (ctx.rank + 1) * per]


def hooks_for_rank(hooks: Sequence[str], ctx: DistContext) -> list[str]:
    """The hooks this rank trains SAEs for: round-robin, so ranks get as equal a share as possible."""
    return [h for i, h in enumerate(hooks) if i % ctx.world_size == ctx.rank]
