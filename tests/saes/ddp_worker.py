"""Worker for test_distributed.py; the same script runs under `torchrun` (2 ranks) or plain `python`.

python ddp_worker.py OUT data_parallel            # trains one TopK SAE on fixed global batches
python ddp_worker.py OUT per_hook                 # each rank trains the SAEs of its own hooks
python ddp_worker.py OUT data_parallel,per_hook   # both, in OUT/data_parallel and OUT/per_hook
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

import interp  # noqa: E402
import saes  # noqa: E402
from saes.distributed import hooks_for_rank, init_distributed, shard_batches  # noqa: E402


def global_batches(steps: int, batch: int = 256):
    g = torch.Generator().manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(32, 16, generator=g), dim=-1)
    for _ in range(steps):
        codes = (torch.rand(batch, 32, generator=g) < 0.06).float() * (
            torch.rand(batch, 32, generator=g) + 0.5
        )
        yield codes @ features


def data_parallel(out: Path, ctx) -> None:
    cfg = saes.SAEConfig("topk", d_in=16, d_sae=64, k=3)
    tc = saes.TrainConfig(
        lr=3e-3,
        total_steps=30,
        lr_decay_steps=10,
        progress=False,
        checkpoint_dir=str(out / "ckpt"),
        checkpoint_every=10,
    )
    sae = saes.Trainer(cfg, tc, dist=ctx).fit(shard_batches(global_batches(30), ctx))
    if ctx.is_main:
        save_file({k: v.contiguous() for k, v in sae.state_dict().items()}, str(out / "weights.safetensors"))


def per_hook(out: Path, ctx) -> None:
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=32)).eval()
    model = interp.HookedModel(hf, tokenizer=None)
    g = torch.Generator().manual_seed(0)
    ds = datasets.Dataset.from_dict({"input_ids": torch.randint(0, 50, (20, 40), generator=g).tolist()})
    mine = hooks_for_rank(
        ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.1.hook_mlp_out"], ctx
    )
    store = saes.ActivationStore(model, ds, mine, context_len=16, batch_size=64)
    for hook in mine:
        cfg = saes.SAEConfig("topk", d_in=32, d_sae=64, k=4, hook_in=hook)
        sae = saes.Trainer(cfg, saes.TrainConfig(total_steps=4, progress=False)).fit(store)
        sae.save(out / hook)
        (out / hook / "rank.json").write_text(json.dumps({"rank": ctx.rank, "world_size": ctx.world_size}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    out_dir, modes = Path(sys.argv[1]), sys.argv[2].split(",")
    context = init_distributed()
    for mode in modes:
        (out_dir / mode).mkdir(parents=True, exist_ok=True)
        {"data_parallel": data_parallel, "per_hook": per_hook}[mode](out_dir / mode, context)
        context.barrier()
