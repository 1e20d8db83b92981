"""A cache written by 2 gloo ranks and read by 3 equals the single-process store's cache and batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saes.parallel_store import ShardReader, write_parallel
from saes.shards import INDEX, ShardCache
from tests.saes import store_worker

WORKER = Path(store_worker.__file__)
ROOT = WORKER.resolve().parents[2]


def _torchrun(n: int, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "INTERP_DIST_BACKEND": "gloo"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={n}",
        str(WORKER),
    ]
    proc = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The single-process store: its cache folder and its first batches."""
    folder = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = store_worker.store(folder)
        list(store)  # a whole pass: the cache is complete
        # the readers' request: a bounded stream stops reading chunks once it has its rows
        batches = list(store.batches(n_tokens=store.batch_size * store_worker.N_BATCHES))
    finally:
        torch.set_num_threads(threads)
    return folder, batches


@pytest.fixture(scope="module")
def two_writers_three_readers(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    _torchrun(2, "write", str(root / "cache"))
    _torchrun(3, "read", str(root / "cache"), str(root / "read"))
    return root


def _cache(folder: Path) -> ShardCache:
    index = json.loads((folder / INDEX).read_text())
    return ShardCache(folder, index["key"], index["context_len"])


def test_two_rank_cache_equals_single_process_cache(single, two_writers_three_readers):
    want, got = _cache(single[0]), _cache(two_writers_three_readers / "cache")
    assert got.complete and want.complete and got.windows == want.windows == 75
    assert got.index["key"] == want.index["key"] and got.names == want.names
    ranks = {
        json.loads(p.read_text())["rank"] for p in (two_writers_three_readers / "cache" / "parts").iterdir()
    }
    assert ranks == {0, 1} and len(got.index["shards"]) == 10  # 8-window blocks, dealt to both ranks
    a, b = got.read(0, got.windows), want.read(0, want.windows)
    for name in want.names:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)


def test_three_readers_slices_join_into_the_single_process_batches(single, two_writers_three_readers):
    parts = [load_file(str(two_writers_three_readers / "read" / f"rank_{r}.safetensors")) for r in range(3)]
    for i, batch in enumerate(single[1]):
        for name, want in batch.items():
            got = torch.cat([p[f"{i}/{name}"] for p in parts])
            assert [p[f"{i}/{name}"].shape[0] for p in parts] == [32, 32, 32]
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0, msg=f"batch {i} {name}")


def test_store_reads_a_parallel_cache_without_the_model(single, two_writers_three_readers, monkeypatch):
    store = store_worker.store(two_writers_three_readers / "cache")
    assert store.from_cache
    monkeypatch.setattr(store, "_forward", lambda tokens: pytest.fail("the model ran"))
    first = next(iter(store))
    for name, want in single[1][0].items():
        torch.testing.assert_close(first[name], want, atol=1e-6, rtol=0)


def test_writer_resumes_only_the_missing_blocks_and_reader_skips(tmp_path, single):
    folder = tmp_path / "cache"
    write_parallel(store_worker.store(folder), progress=False)
    shards = json.loads((folder / INDEX).read_text())["shards"]
    (folder / INDEX).unlink()
    (folder / shards[3]["file"]).unlink()  # as if the job died before this block and the index
    store = store_worker.store(folder)
    calls = []
    forward = store._forward
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(store, "_forward", lambda tokens: calls.append(len(tokens)) or forward(tokens))
    write_parallel(store, progress=False)
    monkeypatch.undo()
    assert calls == [4, 4]  # one block of 8 windows, in two model batches
    torch.testing.assert_close(
        _cache(folder).read(0, 75)[store_worker.HOOKS[0]],
        _cache(single[0]).read(0, 75)[store_worker.HOOKS[0]],
    )
    reader = ShardReader(folder, **store_worker.READ)
    resumed = list(reader.batches(n_tokens=96 * 5).skip_batches(2))
    assert len(resumed) == 3
    whole = list(ShardReader(single[0], **store_worker.READ).batches(n_tokens=96 * 5))  # same request
    for got, want in zip(resumed, whole[2:5], strict=True):
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0)
