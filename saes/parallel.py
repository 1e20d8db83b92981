"""Many SAEs (one per hook) trained in lockstep on one activation stream, on one process or many.

Two placements, one code path (with one process both are plain single-process training):

- `data_parallel`: every rank holds every SAE, reads its own slice of each global batch and averages
  gradients after `backward` (`saes.distributed`). Memory per rank: all SAEs and their Adam state.
- `distribute_hooks`: the SAEs are dealt round-robin to the ranks. Every rank still computes the
  activations of its slice of the batch for all hooks (the model forward stays data-parallel); then
  each hook's slices are gathered, in rank order, on the rank that owns its SAE, which trains on the
  whole global batch. No gradient traffic; memory per rank: its SAEs plus a global batch of their
  hooks. Each SAE then follows exactly the single-process trajectory.
- `distribute_latents`: every SAE's latents are split across all ranks (`saes.latent_parallel`, TopK
  SAEs): each rank holds 1 / R of every SAE and its Adam state and gathers the global batch; `fit`
  assembles the whole SAEs at the end.

    ctx = saes.distributed.init_distributed()
    cfgs = [saes.SAEConfig("topk", d_in=768, d_sae=24576, k=32, hook_in=h) for h in hooks]
    trainer = saes.ParallelTrainer(cfgs, train_cfg, dist=ctx, placement="distribute_hooks")
    mine = trainer.fit(saes.distributed.shard_batches(store, ctx))   # {hook: SAE} owned by this rank

Batches are dicts {hook: [batch, d]} as an `ActivationStore` yields them (all ranks the same keys).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm import tqdm

from interp.errors import InterpError
from saes.architectures import SparseAutoencoder
from saes.config import SAEConfig, TrainConfig
from saes.distributed import DistContext
from saes.latent_parallel import LatentParallelTrainer
from saes.memory import MemoryReport, per_rank
from saes.trainer import Trainer

logger = logging.getLogger(__name__)

Placement = Literal["data_parallel", "distribute_hooks", "distribute_latents"]
PLACEMENTS: tuple[str, ...] = ("data_parallel", "distribute_hooks", "distribute_latents")


class ParallelTrainer:
    """Train one SAE per config in lockstep; `fit` returns {hook_in: SAE} for the SAEs this rank owns.

    Example:
        >>> cfgs = [saes.SAEConfig("topk", d_in=16, d_sae=64, k=4, hook_in=h) for h in ("a", "b")]
        >>> batches = ({"a": torch.randn(64, 16), "b": torch.randn(64, 16)} for _ in range(5))
        >>> trained = saes.ParallelTrainer(cfgs, saes.TrainConfig(progress=False)).fit(batches)
        >>> sorted(trained)
        ['a', 'b']
    """

    def __init__(
        self,
        cfgs: Sequence[SAEConfig],
        train_cfg: TrainConfig | None = None,
        *,
        dist: DistContext | None = None,
        placement: Placement = "data_parallel",
        device: str | torch.device = "cpu",
    ) -> None:
        if placement not in PLACEMENTS:
            raise InterpError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        hooks = [cfg.hook_in for cfg in cfgs]
        if not hooks or len(set(hooks)) != len(hooks) or "" in hooks:
            raise InterpError(
                f"ParallelTrainer needs SAE configs with distinct, non-empty hook_in; got {hooks}"
            )
        self.cfgs = list(cfgs)
        self.tc = train_cfg or TrainConfig()
        self.dist = dist or DistContext()
        self.placement = placement
        self.device = torch.device(device)
        self.owner = {
            cfg.hook_in: (i % self.dist.world_size if placement == "distribute_hooks" else None)
            for i, cfg in enumerate(self.cfgs)
        }
        per_sae_dist = DistContext() if placement == "distribute_hooks" else self.dist
        kind = LatentParallelTrainer if placement == "distribute_latents" else Trainer
        self.trainers: dict[str, Trainer] = {
            cfg.hook_in: kind(cfg, self._train_cfg(cfg), dist=per_sae_dist, device=self.device)
            for cfg in self.cfgs
            if self.owner[cfg.hook_in] in (None, self.dist.rank)
        }
        self.step = 0
        self.peak_memory: list[MemoryReport] = []
        """Peak memory of every rank, filled in when `fit` returns (see `saes.memory`)."""

    def _train_cfg(self, cfg: SAEConfig) -> TrainConfig:
        """The shared config, with one checkpoint folder per hook and no per-SAE progress bar."""
        folder = self.tc.checkpoint_dir and str(Path(self.tc.checkpoint_dir) / cfg.hook_in)
        return dataclasses.replace(self.tc, checkpoint_dir=folder, progress=False, wandb_project=None)

    def fit(self, batches: Iterable[dict[str, Tensor]]) -> dict[str, SparseAutoencoder]:
        """Train every SAE this rank owns until `TrainConfig.max_steps` or the end of the data."""
        max_steps = self.tc.max_steps
        show = self.tc.progress and self.dist.is_main
        with tqdm(total=max_steps, disable=not show, desc=f"{len(self.cfgs)} SAEs") as bar:
            for batch in batches:
                if max_steps is not None and self.step >= max_steps:
                    break
                if not isinstance(batch, dict):
                    raise InterpError(
                        f"ParallelTrainer reads batches {{hook: activations}}, got {type(batch).__name__}"
                    )
                mine = self._exchange(batch) if self.placement == "distribute_hooks" else batch
                for trainer in self.trainers.values():
                    trainer.train_batch(mine)
                self.step += 1
                bar.update(1)
        if self.step == 0:
            raise InterpError("no training batches: the dataset or activation stream is empty")
        for trainer in self.trainers.values():
            if trainer.tc.checkpoint_dir:
                trainer.save_checkpoint()
        self.peak_memory = per_rank(self.device, self.dist)
        if self.dist.is_main:
            logger.info("peak memory per rank (GiB): %s", [round(m.peak_gib, 3) for m in self.peak_memory])
        if self.placement == "distribute_latents":  # collective: every rank assembles every SAE
            return {hook: trainer.sae.gather_full() for hook, trainer in self.trainers.items()}
        return {hook: trainer.sae.eval() for hook, trainer in self.trainers.items()}

    def _exchange(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Gather each hook's per-rank slices on the ranks whose SAEs read it (rank order = batch order)."""
        wanted: dict[str, set[int]] = {}
        for cfg in self.cfgs:
            for key in (cfg.hook_in, cfg.out_hook, f"{cfg.out_hook}:grad"):
                if key in batch:
                    wanted.setdefault(key, set()).add(self.owner[cfg.hook_in])
        missing = [hook for hook in self.owner if hook not in batch]
        if missing:
            raise InterpError(f"batch has hooks {sorted(batch)}, but SAEs also read {missing}")
        mine: dict[str, Tensor] = {}
        for key in sorted(wanted):  # the same order on every rank: every gather has all ranks
            for dst in sorted(wanted[key]):
                gathered = self.dist.gather_on(batch[key], dst)
                if gathered is not None:
                    mine[key] = gathered
        return mine

    def state(self) -> dict[str, Any]:
        """Placement and ownership, for logs and benchmark records."""
        return {
            "placement": self.placement,
            "rank": self.dist.rank,
            "world_size": self.dist.world_size,
            "owned": sorted(self.trainers),
            "step": self.step,
        }
