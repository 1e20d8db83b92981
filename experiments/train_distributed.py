"""Cache activations on several ranks, then train one SAE per hook across ranks: the same script runs
as one process (`python`) or under `torchrun`, on one machine or many.

    python experiments/train_distributed.py --model shakespeare-tiny --hooks "blocks.*.hook_resid_post" --out runs/saes
    torchrun --standalone --nproc-per-node 4 experiments/train_distributed.py --model shakespeare-tiny \
        --hooks "blocks.*.hook_resid_post" --placement distribute_hooks --out runs/saes

1. Every rank loads the model (on its GPU under nccl, or spread by `--device-map auto` with
   `--dtype bfloat16`) and writes its share of the activation cache (`saes.parallel_store`); rerun
   the same command to resume an interrupted cache.
2. Every rank reads its slice of each shuffled batch from the cache (`ShardReader`) and trains with
   `saes.ParallelTrainer`: `data_parallel` (every rank holds every SAE), `distribute_hooks` (each
   rank owns some SAEs) or `distribute_latents` (every SAE's latents split across the ranks; TopK).
   Rank 0 saves the SAEs (under `distribute_hooks` each rank saves its own), and `result.json`
   records the peak memory of every rank.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import interp  # noqa: E402
import saes  # noqa: E402
from interp.io import atomic_write_json, package_versions  # noqa: E402
from saes.distributed import init_distributed  # noqa: E402
from saes.parallel_store import ShardReader, write_parallel  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="shakespeare-tiny", help="zoo name, model folder or hub id")
    parser.add_argument("--hooks", default="blocks.*.hook_resid_post", help="glob or comma-separated names")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None, help="activation cache folder (default OUT/acts)")
    parser.add_argument(
        "--placement",
        choices=("data_parallel", "distribute_hooks", "distribute_latents"),
        default="data_parallel",
    )
    parser.add_argument("--device-map", default=None, help="'auto' to spread the model over devices")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="model dtype")
    parser.add_argument(
        "--autocast", choices=("bfloat16", "float16"), default=None, help="SAE mixed precision"
    )
    parser.add_argument("--arch", default="topk")
    parser.add_argument("--expansion", type=int, default=8)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--context-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1024, help="global activations per step")
    parser.add_argument("--tokens", type=int, default=200_000, help="training activations")
    parser.add_argument("--cache-tokens", type=int, default=100_000, help="activations to cache")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    ctx = init_distributed()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    placement = {"device_map": args.device_map} if args.device_map else {"device": device}
    model = interp.load(args.model, dtype=DTYPES[args.dtype], **placement)
    hooks = model.select(args.hooks.split(",") if "," in args.hooks else args.hooks)
    cache = args.cache or args.out / "acts"
    store = saes.ActivationStore(
        model,
        interp.data.shakespeare(),
        hooks,
        context_len=args.context_len,
        max_tokens=args.cache_tokens,
        cache_dir=cache,
    )
    write_parallel(store, ctx, progress=ctx.is_main)

    reader = ShardReader(cache, batch_size=args.batch_size, dist=ctx, device=device)
    widths = reader.cache.widths
    cfgs = [
        saes.SAEConfig(args.arch, d_in=widths[h], d_sae=args.expansion * widths[h], k=args.k, hook_in=h)
        for h in hooks
    ]
    tc = saes.TrainConfig(
        lr=args.lr, batch_size=args.batch_size, total_tokens=args.tokens, autocast=args.autocast
    )
    trainer = saes.ParallelTrainer(cfgs, tc, dist=ctx, placement=args.placement, device=device)
    trained = trainer.fit(reader.batches())
    if args.placement == "distribute_hooks" or ctx.is_main:  # distribute_latents: every rank has them all
        for hook, sae in trained.items():
            sae.save(args.out / "saes" / hook)
    if ctx.is_main:
        atomic_write_json(
            args.out / "result.json",
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "world_size": ctx.world_size,
                "hooks": hooks,
                "steps": trainer.step,
                "peak_memory": [m.to_dict() for m in trainer.peak_memory],
                "versions": package_versions(),
            },
        )
        print(f"trained {len(hooks)} SAEs over {ctx.world_size} rank(s); wrote {args.out}")


if __name__ == "__main__":
    main()
