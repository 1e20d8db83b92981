"""Peak memory of SAE training, per rank.

On CUDA the figure is the caching allocator's peak of allocated bytes since the trainer started
(`torch.cuda.max_memory_allocated`, reset when a trainer is built), which is what limits the batch
and dictionary sizes. On CPU there is no allocator counter, so it is the process's peak resident set
size (`ru_maxrss`), which also counts the Python interpreter and libraries (a few hundred MiB).
"""

from __future__ import annotations

import resource
import sys
from dataclasses import asdict, dataclass

import torch

from saes.distributed import DistContext


@dataclass(frozen=True)
class MemoryReport:
    """One rank's peak memory."""

    rank: int
    device: str
    peak_bytes: int
    measure: str
    """`cuda_max_allocated` or `process_peak_rss` (see the module docstring)."""

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / 1024**3

    def to_dict(self) -> dict:
        return {**asdict(self), "peak_gib": round(self.peak_gib, 4)}


def reset_peak(device: torch.device) -> None:
    """Start counting the CUDA peak afresh (a no-op on CPU, whose peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak(device: torch.device, rank: int = 0) -> MemoryReport:
    """This process's peak memory on `device`."""
    if device.type == "cuda":
        return MemoryReport(
            rank, str(device), int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return MemoryReport(rank, str(device), int(rss * scale), "process_peak_rss")


def per_rank(device: torch.device, ctx: DistContext) -> list[MemoryReport]:
    """Every rank's peak, in rank order (a collective: every rank calls it)."""
    mine = peak(device, ctx.rank)
    values = ctx.gather(torch.tensor([mine.peak_bytes], dtype=torch.int64))
    return [MemoryReport(r, mine.device, int(v), mine.measure) for r, v in enumerate(values.tolist())]


def state_bytes(module: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Bytes of a module's parameters, buffers, gradients and optimizer state: the part of training
    memory that placement decides (exact on any device, unlike a process-wide peak)."""
    tensors = [*module.parameters(), *module.buffers()]
    tensors += [p.grad for p in module.parameters() if p.grad is not None]
    if optimizer is not None:
        tensors += [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)
