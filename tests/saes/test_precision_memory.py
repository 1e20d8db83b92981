"""Mixed-precision SAE training (autocast, float32 master weights), peak memory, and lockstep steps."""

from __future__ import annotations

import pytest
import torch

import saes
from interp.errors import InterpError
from tests.saes.helpers import PlantedFeatures

STEPS = 80


def _train(arch: str, autocast: str | None, **cfg_kw) -> saes.Trainer:
    planted = PlantedFeatures(n=32, d=16)
    cfg = saes.SAEConfig(arch, d_in=16, d_sae=64, **cfg_kw)
    tc = saes.TrainConfig(lr=3e-3, total_steps=STEPS, progress=False, autocast=autocast, log_every=1)
    trainer = saes.Trainer(cfg, tc)
    trainer.fit(planted.batches(STEPS, batch=256))
    return trainer


@pytest.mark.parametrize(
    ("arch", "autocast", "cfg_kw"), [("topk", "bfloat16", {"k": 3}), ("relu", "float16", {})]
)
def test_autocast_keeps_float32_master_weights_and_trains_like_float32(arch, autocast, cfg_kw):
    full = _train(arch, None, **cfg_kw)
    mixed = _train(arch, autocast, **cfg_kw)
    assert all(p.dtype == torch.float32 for p in mixed.sae.parameters())
    moments = [s["exp_avg"] for s in mixed.optimizer.state.values()]
    assert moments and all(m.dtype == torch.float32 for m in moments)
    assert mixed.scaler.is_enabled() == (autocast == "float16")
    # low precision really ran (weights differ), yet the run converges to the same quality
    assert not torch.equal(mixed.sae.W_enc, full.sae.W_enc)
    assert mixed.last_metrics["mse"] == pytest.approx(full.last_metrics["mse"], rel=0.1)
    torch.testing.assert_close(mixed.sae.W_dec, full.sae.W_dec, atol=0.1, rtol=0)


def test_autocast_config_is_checked_and_round_trips():
    tc = saes.TrainConfig(autocast="bfloat16")
    assert saes.TrainConfig.from_dict(tc.to_dict()) == tc
    with pytest.raises(InterpError, match="autocast"):
        saes.TrainConfig(autocast="int8")
    with pytest.raises(InterpError, match="master weights"):
        saes.Trainer(saes.SAEConfig("topk", d_in=8, d_sae=16, k=2, dtype="bfloat16"), tc)


def test_trainer_reports_peak_memory_per_rank():
    trainer = _train("topk", None, k=3)
    (report,) = trainer.peak_memory
    assert report.rank == 0 and report.measure == "process_peak_rss"
    assert report.peak_bytes > 10 * 1024**2  # at least the interpreter and torch
    assert report.to_dict()["peak_gib"] == pytest.approx(report.peak_bytes / 1024**3, abs=1e-4)


def test_train_batch_in_lockstep_equals_fit():
    planted = PlantedFeatures(n=32, d=16)
    cfg = saes.SAEConfig("topk", d_in=16, d_sae=64, k=3)
    tc = saes.TrainConfig(lr=3e-3, total_steps=20, progress=False, norm_estimation_batches=2)
    want = saes.Trainer(cfg, tc).fit(planted.batches(20, batch=128))
    stepped = saes.Trainer(cfg, tc)
    taken = [stepped.train_batch(b) for b in planted.batches(20, batch=128)]
    assert taken[:3] == [0, 2, 1] and stepped.step == 20
    for name, value in want.state_dict().items():
        assert torch.equal(stepped.sae.state_dict()[name], value), name
