"""An activation cache written by several ranks at once and read by training on any number of ranks.

The folder is the one format of `saes.shards` (safetensors shards plus `index.json`), so a cache
written here is read by `ActivationStore(cache_dir=...)` and `ShardCache`, and the other way round.

Writing (`write_parallel(store, ctx)`, under `torchrun`; the folder must be shared by every rank):
1. The token stream is cut into blocks of `W` windows (`W * context_len` rows = the store's
   `shard_size`, rounded down to whole model batches). Block `b` belongs to rank `b % world_size`.
2. Every rank tokenises the stream (cheap) but runs the model only on its own blocks, in model batches
   aligned with the single-process store's, and writes each block as one shard (temp file, rename),
   then records it in its part file `parts/rank_XXXXX.json`. Host memory: one block per rank.
3. After a barrier, rank 0 checks the blocks cover windows 0..n without gaps and writes `index.json`.
   Resuming: a rank skips the blocks its part file already lists; a finished cache is left alone.

Reading (`ShardReader(folder, batch_size=..., dist=ctx)`): every rank follows the same seeded shuffle
plan as `ActivationStore` over the cached windows (`saes.shuffle`) and keeps its contiguous slice of
each global batch, so the slices of R ranks, joined in rank order, are the single-process batches.
Host memory per rank is bounded by the shuffle buffer (`shuffle_buffer` rows, default 8 batches);
`batches(n).skip_batches(k)` resumes without reading the skipped batches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor
from tqdm import tqdm

from interp.errors import InterpError
from interp.io import atomic_write_json
from saes.distributed import DistContext, shard_batches
from saes.shards import FORMAT, INDEX, VERSION, ShardCache
from saes.shuffle import Chunk, PassBatches, PassCount, shuffled

logger = logging.getLogger(__name__)

PARTS = "parts"


def block_windows(store: Any) -> int:
    """Windows per block (one shard): the store's shard size in whole model batches (at least one)."""
    mb = store.model_batch_size
    return max(mb, (store.shard_size // store.context_len) // mb * mb)


def write_parallel(store: Any, ctx: DistContext | None = None, *, progress: bool = True) -> Path:
    """Compute `store`'s activations into `store.cache_dir`, this rank's blocks only; returns the folder.

    Example (the same script under `torchrun --nproc-per-node 4`):
        >>> store = saes.ActivationStore(model, dataset, hooks, cache_dir="/shared/acts")  # doctest: +SKIP
        >>> write_parallel(store, saes.distributed.init_distributed())  # doctest: +SKIP
    """
    ctx = ctx or DistContext()
    if store.cache_dir is None:
        raise InterpError("write_parallel needs an ActivationStore with cache_dir=<a folder every rank sees>")
    folder = Path(store.cache_dir)
    key = store._cache_key()
    if _finished(folder, key):
        return folder
    part_path = folder / PARTS / f"rank_{ctx.rank:05d}.json"
    part = _read_part(part_path, key, ctx, block_windows(store))
    done = {s["first_window"] for s in part["shards"] if (folder / s["file"]).is_file()}
    part["shards"] = [s for s in part["shards"] if s["first_window"] in done]
    width = part["block_windows"]
    mb = store.model_batch_size
    bar = tqdm(desc=f"rank {ctx.rank} activation blocks", unit="block", disable=not progress)
    first, pending = 0, []
    for tokens in store._windows(mb):  # token windows [<= mb, context_len], in stream order
        block = first // width
        if block % ctx.world_size == ctx.rank and block * width not in done:
            pending.append(store._forward(tokens))
        first += tokens.shape[0]
        if first % width == 0 and pending:
            _write_block(folder, part, part_path, (first // width - 1) * width, pending, store.context_len)
            pending = []
            bar.update(1)
    end_seen = store._stream_windows is not None
    if pending:  # the last, shorter block
        _write_block(folder, part, part_path, (first - 1) // width * width, pending, store.context_len)
        bar.update(1)
    bar.close()
    part["stream_windows"] = first if end_seen else None
    part["windows_seen"] = first
    atomic_write_json(part_path, part)
    ctx.barrier()
    if ctx.is_main:
        _merge(folder, key, store.context_len, ctx.world_size)
    ctx.barrier()
    return folder


def _finished(folder: Path, key: dict[str, Any]) -> bool:
    path = folder / INDEX
    if not path.is_file():
        return False
    index = json.loads(path.read_text())
    if index.get("key") != key:
        raise InterpError(
            f"activation cache {folder} was built from a different model, dataset, hooks or context "
            "length; delete it or pick another cache_dir"
        )
    return bool(index.get("complete"))


def _read_part(path: Path, key: dict[str, Any], ctx: DistContext, width: int) -> dict[str, Any]:
    fresh = {"key": key, "rank": ctx.rank, "world_size": ctx.world_size, "block_windows": width, "shards": []}
    if not path.is_file():
        return fresh
    part = json.loads(path.read_text())
    if (
        part.get("key") != key
        or part.get("world_size") != ctx.world_size
        or part.get("block_windows") != width
    ):
        raise InterpError(
            f"{path} was written by another job (model, data, rank count or shard size differ); "
            "resume with the same settings, or delete the folder"
        )
    return part


def _write_block(
    folder: Path, part: dict, part_path: Path, first: int, acts: list[dict[str, Tensor]], context_len: int
) -> None:
    """One block as one shard (same layout as `ShardCache.flush`), then this rank's part file."""
    tensors = {name: torch.cat([a[name] for a in acts]).float().cpu().contiguous() for name in acts[0]}
    rows = next(iter(tensors.values())).shape[0]
    windows = rows // context_len
    file = f"shard_w{first:09d}.safetensors"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{file}.tmp"
    save_file(tensors, str(tmp), metadata={"first_window": str(first), "windows": str(windows)})
    tmp.replace(folder / file)
    entry = {"file": file, "first_window": first, "windows": windows, "rows": rows}
    part["shards"].append(entry)
    part["names"] = list(tensors)
    part["widths"] = {name: int(t.shape[-1]) for name, t in tensors.items()}
    part_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(part_path, part)


def _merge(folder: Path, key: dict[str, Any], context_len: int, world_size: int) -> None:
    """Join the ranks' part files into `index.json` (rank 0, after every rank finished)."""
    parts = [json.loads((folder / PARTS / f"rank_{r:05d}.json").read_text()) for r in range(world_size)]
    shards = sorted((s for p in parts for s in p["shards"]), key=lambda s: s["first_window"])
    covered = 0
    for shard in shards:
        if shard["first_window"] != covered:
            raise InterpError(
                f"activation blocks in {folder} leave windows {covered}..{shard['first_window']} out"
            )
        covered += shard["windows"]
    stream = parts[0].get("stream_windows")
    named = next((p for p in parts if p.get("names")), None)
    if named is None:
        raise InterpError("no activations were written: the dataset is shorter than one context window")
    index = {
        "format": FORMAT,
        "version": VERSION,
        "key": key,
        "names": named["names"],
        "widths": named["widths"],
        "dtype": "float32",
        "context_len": context_len,
        "windows": covered,
        "complete": stream is not None and covered >= stream,
        "shards": shards,
    }
    atomic_write_json(folder / INDEX, index)
    logger.info(
        "activation cache %s: %d windows in %d shards from %d ranks", folder, covered, len(shards), world_size
    )


class ShardReader:
    """This rank's slices of the shuffled batches of a finished cache (any number of ranks).

    Example:
        >>> reader = ShardReader("/shared/acts", batch_size=4096, dist=ctx)  # doctest: +SKIP
        >>> trainer.fit(reader.batches(n_tokens=10_000_000))  # each rank: [4096 / world_size, width] rows  # doctest: +SKIP
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        batch_size: int = 4096,
        chunk_windows: int = 16,
        shuffle_buffer: int | None = None,
        seed: int = 0,
        dist: DistContext | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        path = Path(folder) / INDEX
        if not path.is_file():
            raise InterpError(f"{folder} has no {INDEX}: write the cache first (write_parallel or a store)")
        index = json.loads(path.read_text())
        self.cache = ShardCache(folder, index["key"], int(index["context_len"]))
        self.dist = dist or DistContext()
        if batch_size % self.dist.world_size:
            raise InterpError(
                f"batch_size={batch_size} does not split evenly over {self.dist.world_size} ranks"
            )
        self.batch_size = batch_size
        self.chunk_windows = chunk_windows  # the store's model_batch_size: same chunks, same shuffle
        self.shuffle_buffer = max(shuffle_buffer or 8 * batch_size, batch_size)
        self.seed = seed
        self.device = torch.device(device)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        """One pass over the cached windows."""
        return self._pass(self.seed, 0, PassCount())

    def batches(self, n_tokens: int | None = None) -> PassBatches:
        """Repeated passes (reshuffled each time) until `n_tokens` rows per global batch count were read."""
        return PassBatches(self, n_tokens, "the cache")

    def _chunks(self) -> Iterator[Chunk]:
        total, step = self.cache.windows, self.chunk_windows
        for first in range(0, total, step):
            yield first, min(step, total - first), None

    def _pass(
        self, seed: int, skip: int, count: PassCount, max_rows: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        batches = shuffled(
            self._chunks(),
            lambda chunk: self.cache.read(chunk[0], chunk[1]),
            rows_per_window=self.cache.context_len,
            buffer=self.shuffle_buffer,
            batch_size=self.batch_size,
            gen=torch.Generator().manual_seed(seed),
            skip=skip,
            count=count,
            max_rows=max_rows,
        )
        for batch in shard_batches(batches, self.dist):
            yield {name: t.to(self.device) for name, t in batch.items()}
