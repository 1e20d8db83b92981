import shutil
import sys
import types

import pytest
import torch

import saes
from interp.errors import InterpError, ShapeError
from saes.checkpoint import checkpoint_dirs
from saes.trainer import geometric_median, lr_factor

from .helpers import assert_same_weights

# Per-architecture settings that recover 48 planted features in 24 dimensions (L0 ~ 1.9) in 300 steps.
RECIPES = {
    "relu": dict(train=dict(sparsity_coef=1.0)),
    "topk": dict(),
    "batchtopk": dict(),
    "jumprelu": dict(
        sae=dict(jumprelu_init_threshold=0.5, jumprelu_bandwidth=0.1), train=dict(sparsity_coef=3.0)
    ),
    "gated": dict(train=dict(sparsity_coef=3.0)),
    "matryoshka": dict(),
    "mutual_choice": dict(),
    "feature_choice": dict(),
    "gsae": dict(),
}


def train_planted(arch, planted, steps=300, **train_kw):
    recipe = RECIPES[arch]
    k = 3 if saes.REGISTRY[arch].needs_k else None
    cfg = saes.SAEConfig(arch, d_in=planted.d, d_sae=2 * planted.n, k=k, **recipe.get("sae", {}))
    tc = saes.TrainConfig(
        **{
            **dict(
                lr=5e-3,
                total_steps=steps,
                lr_decay_steps=steps // 5,
                progress=False,
                dead_window_tokens=10_000,
            ),
            **recipe.get("train", {}),
            **train_kw,
        }
    )
    trainer = saes.Trainer(cfg, tc)
    return trainer, trainer.fit(planted.batches(steps))


@pytest.mark.parametrize("arch", sorted(RECIPES))
def test_recovers_planted_features(arch, planted):
    trainer, sae = train_planted(arch, planted)
    assert planted.recovery(sae.W_dec) > 0.9
    x = next(planted.batches(1, 2048, seed=99))
    with torch.no_grad():
        fvu = (sae(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert fvu < 0.3
    assert trainer.step == 300


def test_transcoder_recovers_a_sparse_map(planted):
    """Target = planted codes through a second dictionary: the transcoder's decoder finds it."""
    out_features = torch.nn.functional.normalize(
        torch.randn(planted.n, 20, generator=torch.Generator().manual_seed(5)), dim=-1
    )

    def pairs(steps, seed=1):
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            codes = planted.codes(512, g)
            yield codes @ planted.features, codes @ out_features

    cfg = saes.SAEConfig(
        "topk", d_in=planted.d, d_sae=2 * planted.n, k=3, d_out=20, hook_in="in", hook_out="out"
    )
    sae = saes.Trainer(
        cfg, saes.TrainConfig(lr=5e-3, total_steps=300, progress=False, dead_window_tokens=10_000)
    ).fit(pairs(300))
    rows = torch.nn.functional.normalize(sae.W_dec.detach(), dim=-1)
    assert float((out_features @ rows.T).max(-1).values.mean()) > 0.9


def test_gsae_trains_with_a_gradient_signal(planted):
    def with_grads(steps):
        g = torch.Generator().manual_seed(3)
        for x in planted.batches(steps):
            yield x, None, torch.randn(x.shape, generator=g)

    cfg = saes.SAEConfig("gsae", d_in=planted.d, d_sae=2 * planted.n, k=3, gsae_beta=0.5)
    sae = saes.Trainer(
        cfg, saes.TrainConfig(lr=5e-3, total_steps=300, progress=False, dead_window_tokens=10_000)
    ).fit(with_grads(300))
    assert planted.recovery(sae.W_dec) > 0.9


def test_decoder_rows_stay_unit_norm_and_scale_is_estimated(planted):
    trainer, sae = train_planted("topk", planted, steps=20)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(sae.cfg.d_sae), atol=1e-5)
    x = next(planted.batches(1))
    assert abs(float((x * sae.scale_in).norm(dim=-1).mean()) - planted.d**0.5) < 0.5


def test_exact_resume_equals_uninterrupted(planted, tmp_path):
    kw = dict(
        lr=5e-3,
        total_steps=24,
        lr_warmup_steps=4,
        lr_decay_steps=8,
        sparsity_warmup_steps=6,
        dead_window_tokens=2048,
        progress=False,
    )
    cfg = saes.SAEConfig("relu", d_in=planted.d, d_sae=64)
    reference = saes.Trainer(cfg, saes.TrainConfig(**kw)).fit(planted.batches(24))

    class Crash(Exception):
        pass

    def crashing(n):
        for i, batch in enumerate(planted.batches(24)):
            if i == n:
                raise Crash
            yield batch

    tc = saes.TrainConfig(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=5)
    with pytest.raises(Crash):
        saes.Trainer(cfg, tc).fit(crashing(13))
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_000000005", "step_000000010"]
    resumed_trainer = saes.Trainer(cfg, tc)
    resumed = resumed_trainer.fit(planted.batches(24), resume=True)
    assert resumed_trainer.step == 24
    assert_same_weights(reference, resumed)
    # the final checkpoint is also an SAE folder (scales folded in, so equal up to rounding)
    final = checkpoint_dirs(tmp_path)[-1]
    assert final.name == "step_000000024"
    x = next(planted.batches(1))
    assert torch.allclose(saes.load(final)(x), resumed.eval()(x), atol=1e-5)


def test_nan_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(planted, tmp_path):
    def poisoned():
        for i, batch in enumerate(planted.batches(20)):
            yield batch * float("nan") if i == 7 else batch

    tc = saes.TrainConfig(lr=1e-3, checkpoint_dir=str(tmp_path), checkpoint_every=5, progress=False)
    with pytest.raises(saes.TrainingDivergedError, match=r"diverged at step 7.*step_000000005 is kept"):
        saes.Trainer(saes.SAEConfig("topk", d_in=planted.d, d_sae=64, k=3), tc).fit(poisoned())
    (good,) = checkpoint_dirs(tmp_path)
    assert torch.isfinite(saes.load(good).W_dec).all()


def test_corrupt_or_partial_checkpoint_is_a_clear_error_and_nothing_is_overwritten(planted, tmp_path):
    cfg = saes.SAEConfig("topk", d_in=planted.d, d_sae=64, k=3)
    tc = saes.TrainConfig(lr=1e-3, total_steps=5, checkpoint_dir=str(tmp_path), progress=False)
    saes.Trainer(cfg, tc).fit(planted.batches(5))
    (ckpt,) = checkpoint_dirs(tmp_path)
    (ckpt / "trainer_state.pt").write_bytes(b"garbage")
    before = sorted(p.name for p in ckpt.iterdir())
    with pytest.raises(InterpError, match="corrupt"):
        saes.Trainer(cfg, tc).fit(planted.batches(5), resume=True)
    (ckpt / "sae_state.safetensors").unlink()
    with pytest.raises(InterpError, match="partial"):
        saes.Trainer(cfg, tc).fit(planted.batches(5), resume=True)
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(set(before) - {"sae_state.safetensors"})
    shutil.rmtree(ckpt)


def test_resume_with_another_config_is_refused(planted, tmp_path):
    tc = saes.TrainConfig(lr=1e-3, total_steps=3, checkpoint_dir=str(tmp_path), progress=False)
    saes.Trainer(saes.SAEConfig("topk", d_in=planted.d, d_sae=64, k=3), tc).fit(planted.batches(3))
    with pytest.raises(InterpError, match="different SAEConfig"):
        saes.Trainer(saes.SAEConfig("topk", d_in=planted.d, d_sae=64, k=4), tc).fit(
            planted.batches(3), resume=True
        )


def test_empty_data_is_a_clear_error():
    with pytest.raises(InterpError, match="empty"):
        saes.Trainer(saes.SAEConfig("relu", d_in=4, d_sae=8), saes.TrainConfig(progress=False)).fit([])


def test_transcoder_without_targets_is_a_clear_error():
    cfg = saes.SAEConfig("relu", d_in=4, d_sae=8, d_out=3, hook_in="a", hook_out="b")
    with pytest.raises(InterpError, match="transcoder needs"):
        saes.Trainer(cfg, saes.TrainConfig(progress=False)).fit([torch.randn(8, 4)])


def test_width_mismatch_between_sae_and_data_is_a_clear_error():
    cfg = saes.SAEConfig("topk", d_in=32, d_sae=64, k=4, hook_in="blocks.0.hook_resid_post")
    with pytest.raises(
        ShapeError, match=r"hook 'blocks.0.hook_resid_post' has shape \(16, 64\).*\[batch, 32\]"
    ):
        saes.Trainer(cfg, saes.TrainConfig(progress=False)).fit([torch.randn(16, 64)])


def test_dict_batches_pick_the_configured_hooks():
    cfg = saes.SAEConfig("relu", d_in=4, d_sae=8, hook_in="a")
    trainer = saes.Trainer(cfg, saes.TrainConfig(progress=False, total_steps=2))
    trainer.fit([{"a": torch.randn(16, 4), "b": torch.randn(16, 9)}] * 3)
    assert trainer.step == 2
    with pytest.raises(InterpError, match="reads 'a'"):
        saes.Trainer(cfg, saes.TrainConfig(progress=False)).fit([{"b": torch.randn(16, 4)}])


def test_schedules_and_geometric_median():
    assert lr_factor(0, warmup=4, decay=0, max_steps=None) == 0.25
    assert lr_factor(10, warmup=4, decay=5, max_steps=20) == 1.0
    assert lr_factor(18, warmup=4, decay=5, max_steps=20) == pytest.approx(0.4)
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]])
    median = geometric_median(points)
    assert median.norm() < 1.0  # robust to the outlier, unlike the mean


def test_wandb_is_opt_in_and_logs_metrics(planted, monkeypatch):
    logged, finished = [], []
    run = types.SimpleNamespace(
        log=lambda metrics, step: logged.append((step, metrics)), finish=lambda: finished.append(1)
    )
    fake = types.SimpleNamespace(init=lambda project, config: run)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = saes.SAEConfig("topk", d_in=planted.d, d_sae=64, k=3)
    tc = saes.TrainConfig(total_steps=4, log_every=2, progress=False, wandb_project="test")
    saes.Trainer(cfg, tc).fit(planted.batches(4))
    assert [step for step, _ in logged] == [1, 2, 4] and finished == [1]
    assert {"mse", "l0", "dead", "lr"} <= set(logged[-1][1])
