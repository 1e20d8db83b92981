"""Worker for test_parallel_store.py, under `torchrun`: write a cache on N ranks, or read one on N ranks.

python store_worker.py write FOLDER           # write_parallel into FOLDER
python store_worker.py read FOLDER OUT        # this rank's slices of the first batches -> OUT/rank_R.safetensors
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import interp  # noqa: E402
import saes  # noqa: E402
from saes.distributed import init_distributed  # noqa: E402
from saes.parallel_store import ShardReader, write_parallel  # noqa: E402
from tests.saes.helpers import tiny_gpt2, token_dataset  # noqa: E402

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"]
STORE = dict(context_len=16, model_batch_size=4, shard_size=128, batch_size=96, shuffle_buffer=384)
READ = dict(batch_size=96, chunk_windows=4, shuffle_buffer=384)
N_BATCHES = 8


def store(folder: Path) -> saes.ActivationStore:
    model = interp.HookedModel(tiny_gpt2(seed=0))
    return saes.ActivationStore(model, token_dataset(rows=24, length=50), HOOKS, cache_dir=folder, **STORE)


def read(folder: Path, out: Path, ctx) -> None:
    reader = ShardReader(folder, dist=ctx, **READ)
    tensors = {}
    for i, batch in enumerate(reader.batches(n_tokens=READ["batch_size"] * N_BATCHES)):
        tensors |= {f"{i}/{name}": t.contiguous() for name, t in batch.items()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / f"rank_{ctx.rank}.safetensors"))


if __name__ == "__main__":
    torch.set_num_threads(1)
    context = init_distributed()
    if sys.argv[1] == "write":
        write_parallel(store(Path(sys.argv[2])), context, progress=False)
    else:
        read(Path(sys.argv[2]), Path(sys.argv[3]), context)
