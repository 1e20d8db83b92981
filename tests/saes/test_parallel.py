"""Many SAEs in lockstep: data-parallel and hooks-distributed training on 2 gloo ranks equal one process."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import saes
from interp.errors import InterpError
from saes.distributed import DistContext

WORKER = Path(__file__).with_name("parallel_worker.py")
ROOT = Path(__file__).resolve().parents[2]  # the workers import this checkout, whatever is installed


def _worker():
    spec = importlib.util.spec_from_file_location("parallel_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multi")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "INTERP_DIST_BACKEND": "gloo"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += [str(WORKER), str(out), "data_parallel,distribute_hooks,distribute_latents"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for placement in ("data_parallel", "distribute_hooks"):  # one process: owns every SAE
            state = _worker().train(out / placement, DistContext(), placement)
            assert state["owned"] == ["a", "b", "c"]
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.mark.parametrize("placement", ["distribute_hooks", "data_parallel"])
def test_two_gloo_ranks_equal_one_process(two_ranks, one_process, placement):
    for hook in ("a", "b", "c"):
        got = load_file(str(two_ranks / placement / f"{hook}.safetensors"))
        want = load_file(str(one_process / placement / f"{hook}.safetensors"))
        assert got.keys() == want.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=0, msg=f"{hook}.{name}")


def test_latents_split_over_two_gloo_ranks_equal_one_process_trainer(two_ranks):
    """Each SAE's latents split over 2 ranks (AuxK included) against the plain single-process Trainer."""
    worker = _worker()
    for cfg in worker.latent_configs():
        batches = (b[cfg.hook_in] for b in worker.global_batches())
        want = saes.Trainer(cfg, worker.train_config()).fit(batches).state_dict()
        got = load_file(str(two_ranks / "distribute_latents" / f"{cfg.hook_in}.safetensors"))
        assert got.keys() == want.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=0, msg=f"{cfg.hook_in}.{name}")


def test_distribute_hooks_deals_saes_round_robin(two_ranks):
    ranks = {h: (two_ranks / "distribute_hooks" / f"{h}.rank").read_text() for h in ("a", "b", "c")}
    assert ranks == {"a": "0", "b": "1", "c": "0"}
    # data-parallel: rank 0 wrote last and holds every SAE (both ranks wrote the same weights)
    assert {(two_ranks / "data_parallel" / f"{h}.rank").exists() for h in ("a", "b", "c")} == {True}


def test_one_process_placements_are_the_same_training():
    worker = _worker()
    tc = saes.TrainConfig(lr=3e-3, total_steps=6, progress=False)
    results = [
        saes.ParallelTrainer(worker.configs(), tc, placement=p).fit(worker.global_batches(6))
        for p in ("data_parallel", "distribute_hooks")
    ]
    for hook in ("a", "b", "c"):
        for name, value in results[0][hook].state_dict().items():
            assert torch.equal(results[1][hook].state_dict()[name], value)
    alone = saes.Trainer(worker.configs()[0], tc).fit(worker.global_batches(6))
    assert torch.equal(alone.W_dec, results[0]["a"].W_dec)  # lockstep = training each SAE alone


def test_bad_multi_inputs_are_clear_errors():
    cfg = saes.SAEConfig("topk", d_in=8, d_sae=16, k=2, hook_in="a")
    with pytest.raises(InterpError, match="distinct"):
        saes.ParallelTrainer([cfg, cfg])
    with pytest.raises(InterpError, match="placement"):
        saes.ParallelTrainer([cfg], placement="everywhere")
    with pytest.raises(InterpError, match="hook"):
        saes.ParallelTrainer([cfg], saes.TrainConfig(progress=False)).fit([torch.randn(4, 8)])


def test_latent_split_on_one_process_is_the_plain_trainer():
    from saes.latent_parallel import LatentParallelTrainer

    worker = _worker()
    cfg = worker.latent_configs()[0]
    want = saes.Trainer(cfg, worker.train_config()).fit(b["a"] for b in worker.global_batches())
    trainer = LatentParallelTrainer(cfg, worker.train_config())
    got = trainer.fit(b["a"] for b in worker.global_batches())
    assert trainer.last_metrics["aux"] > 0  # dead latents appeared, so AuxK was part of the loss
    for name, value in want.state_dict().items():
        torch.testing.assert_close(got.state_dict()[name], value, atol=1e-6, rtol=0, msg=name)


def test_latent_split_refuses_what_it_cannot_do(tmp_path):
    from saes.latent_parallel import LatentParallelTrainer

    with pytest.raises(InterpError, match="topk"):
        LatentParallelTrainer(saes.SAEConfig("relu", d_in=8, d_sae=16))
    with pytest.raises(InterpError, match="evenly"):
        LatentParallelTrainer(
            saes.SAEConfig("topk", d_in=8, d_sae=15, k=2), dist=DistContext(rank=0, world_size=2)
        )
    with pytest.raises(InterpError, match="checkpoint"):
        tc = saes.TrainConfig(checkpoint_dir=str(tmp_path))
        LatentParallelTrainer(saes.SAEConfig("topk", d_in=8, d_sae=16, k=2), tc)
