"""Worker for test_parallel.py; the same script runs under `torchrun` (2 ranks) or in-process (1 rank).

python parallel_worker.py OUT data_parallel,distribute_hooks
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import saes  # noqa: E402
from saes.distributed import DistContext, init_distributed, shard_batches  # noqa: E402

HOOKS = ("a", "b", "c")
STEPS = 25


def global_batches(steps: int = STEPS, batch: int = 128):
    """Dicts {hook: [batch, 16]}: each hook a sparse combination of its own random directions."""
    g = torch.Generator().manual_seed(0)
    features = {h: torch.nn.functional.normalize(torch.randn(32, 16, generator=g), dim=-1) for h in HOOKS}
    for _ in range(steps):
        out = {}
        for hook in HOOKS:
            codes = (torch.rand(batch, 32, generator=g) < 0.08).float() * (
                torch.rand(batch, 32, generator=g) + 0.5
            )
            out[hook] = codes @ features[hook]
        yield out


def configs() -> list[saes.SAEConfig]:
    return [
        saes.SAEConfig("topk", d_in=16, d_sae=64, k=3, hook_in="a"),
        saes.SAEConfig("relu", d_in=16, d_sae=48, hook_in="b"),
        saes.SAEConfig("topk", d_in=16, d_sae=32, k=4, hook_in="c", hook_out="a"),  # a transcoder c -> a
    ]


def latent_configs() -> list[saes.SAEConfig]:
    """TopK SAEs whose latents split evenly over 1, 2 or 4 ranks."""
    return [
        saes.SAEConfig("topk", d_in=16, d_sae=64, k=3, hook_in="a"),
        saes.SAEConfig("topk", d_in=16, d_sae=48, k=4, hook_in="b"),
    ]


def train_config(placement: str = "distribute_latents") -> saes.TrainConfig:
    # a short dead window, so AuxK (over the dead latents of every rank) takes part. Not under data
    # parallelism: each rank normalises AuxK by its own slice's residual energy, so its averaged
    # gradient is not the global-batch gradient once latents die.
    window = 10**6 if placement == "data_parallel" else 256
    return saes.TrainConfig(
        lr=3e-3, total_steps=STEPS, lr_decay_steps=5, progress=False, log_every=1, dead_window_tokens=window
    )


def train(out: Path, ctx: DistContext, placement: str) -> dict:
    cfgs = latent_configs() if placement == "distribute_latents" else configs()
    trainer = saes.ParallelTrainer(cfgs, train_config(placement), dist=ctx, placement=placement)
    trained = trainer.fit(shard_batches(global_batches(), ctx))
    out.mkdir(parents=True, exist_ok=True)
    for hook, sae in trained.items():
        save_file({k: v.contiguous() for k, v in sae.state_dict().items()}, str(out / f"{hook}.safetensors"))
        (out / f"{hook}.rank").write_text(str(ctx.rank))
    return trainer.state()


if __name__ == "__main__":
    torch.set_num_threads(1)
    out_dir, placements = Path(sys.argv[1]), sys.argv[2].split(",")
    context = init_distributed()
    for name in placements:
        train(out_dir / name, context, name)
        context.barrier()
