"""DDP on 2 CPU processes (gloo, via torchrun) against the same worker code run as one process."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import saes
from interp.errors import InterpError
from saes.distributed import DistContext, hooks_for_rank, shard_batches

WORKER = Path(__file__).with_name("ddp_worker.py")
HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.1.hook_mlp_out")


def _worker_module():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def torchrun_out(tmp_path_factory):
    """One `torchrun --nproc-per-node 2` job running both modes of the worker."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(WORKER.resolve().parents[2]), env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        str(WORKER),
        str(out),
        "data_parallel,per_hook",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_two_gloo_ranks_match_one_process_on_the_same_global_batch(torchrun_out, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _worker_module().data_parallel(tmp_path, DistContext())  # the same code, one process
    finally:
        torch.set_num_threads(threads)
    ddp = load_file(str(torchrun_out / "data_parallel" / "weights.safetensors"))
    single = load_file(str(tmp_path / "weights.safetensors"))
    assert ddp.keys() == single.keys()
    for name in ddp:
        torch.testing.assert_close(ddp[name], single[name], atol=1e-5, rtol=0, msg=name)
    assert (torchrun_out / "data_parallel" / "ckpt" / "step_000000030").is_dir()  # rank 0 checkpointed


def test_sae_per_hook_on_different_ranks(torchrun_out):
    ranks = {}
    for hook in HOOKS:
        folder = torchrun_out / "per_hook" / hook
        assert saes.load(folder).cfg.hook_in == hook
        ranks[hook] = json.loads((folder / "rank.json").read_text())["rank"]
    assert ranks == dict(zip(HOOKS, (0, 1, 0), strict=True))


def test_sharding_and_hook_assignment_helpers():
    ctx = DistContext(rank=1, world_size=2)
    batch = {"a": torch.arange(8), "b": (torch.arange(8), None)}
    (sliced,) = shard_batches([batch], ctx)
    assert sliced["a"].tolist() == [4, 5, 6, 7] and sliced["b"][1] is None
    assert hooks_for_rank(["x", "y", "z"], ctx) == ["y"]
    with pytest.raises(InterpError, match="split evenly"):
        list(shard_batches([torch.arange(5)], ctx))
