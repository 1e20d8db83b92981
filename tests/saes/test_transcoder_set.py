"""Transcoder sets: block structure of the clt_* architectures survives training, per-layer TopK, saving
and loading both kinds, training every layer from one activation pass, and the CLI."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import saes
from interp.errors import InterpError
from saes import SAEConfig, TrainConfig, Trainer
from saes.architectures.clt import block_masks
from saes.transcoder_set import TranscoderSet, split_layers, train_transcoder_set
from tests.circuits.cli_helpers import run

N_LAYERS, D, N = 3, 8, 16


def _cfg(arch: str, cross: bool) -> SAEConfig:
    return SAEConfig(
        arch,
        d_in=N_LAYERS * D,
        d_sae=N_LAYERS * N,
        d_out=N_LAYERS * D,
        k=3 * N_LAYERS if arch == "clt_topk" else None,
        n_layers=N_LAYERS,
        cross_layer=cross,
        hook_in="blocks.*.hook_resid_mid",
        hook_out="blocks.*.hook_mlp_out",
    )


def _batches(n: int = 30):
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        x = torch.randn(128, N_LAYERS * D, generator=g)
        yield x, torch.tanh(x @ torch.randn(N_LAYERS * D, N_LAYERS * D, generator=g) * 0.3)


@pytest.mark.parametrize("cross", [True, False], ids=["cross_layer", "per_layer"])
@pytest.mark.parametrize("arch", ["clt_topk", "clt_jumprelu"])
def test_blocks_stay_zero_through_training(arch, cross):
    cfg = _cfg(arch, cross)
    sae = Trainer(cfg, TrainConfig(lr=1e-2, progress=False)).fit(_batches())
    enc, dec = block_masks(N_LAYERS, cfg.d_in, cfg.d_sae, cfg.out_dim, cross)
    assert bool((sae.W_enc[enc == 0] == 0).all()) and bool((sae.W_dec[dec == 0] == 0).all())
    assert bool((sae.W_enc[enc == 1] != 0).any()) and bool((sae.W_dec[dec == 1] != 0).any())
    if cross:  # layer 0's features write to the last layer's output too
        assert float(sae.W_dec.detach()[:N, -D:].abs().sum()) > 0


def test_topk_is_per_layer():
    sae = saes.build(_cfg("clt_topk", True)).eval()
    acts = sae.encode(torch.randn(50, N_LAYERS * D)).reshape(50, N_LAYERS, N)
    assert bool(((acts != 0).sum(-1) <= 3).all()) and int((acts != 0).sum()) > 50 * N_LAYERS


def test_sizes_must_divide_by_the_layers():
    with pytest.raises(InterpError, match="divisible"):
        SAEConfig("clt_topk", d_in=10, d_sae=30, k=3, n_layers=3)
    with pytest.raises(InterpError, match="only for the clt"):
        SAEConfig("topk", d_in=10, d_sae=30, k=3, n_layers=3)
    cfg = _cfg("clt_jumprelu", True)
    assert SAEConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("cross", [True, False], ids=["cross_layer", "per_layer"])
def test_save_and_load(cross, tmp_path):
    clt = Trainer(_cfg("clt_jumprelu", cross), TrainConfig(lr=1e-2, progress=False)).fit(_batches(5))
    tset = TranscoderSet(clt=clt) if cross else split_layers(clt)
    tset.save(tmp_path / "set")
    back = TranscoderSet.load(tmp_path / "set")
    assert back.kind == tset.kind and back.n_layers == N_LAYERS and back.d_model == D
    x = {lyr: torch.randn(7, D) for lyr in range(N_LAYERS)}
    acts = {lyr: tset.encode(lyr, x[lyr]) for lyr in range(N_LAYERS)}
    for lyr in range(N_LAYERS):
        torch.testing.assert_close(back.encode(lyr, x[lyr]), acts[lyr])
        torch.testing.assert_close(back.reconstruct(lyr, acts), tset.reconstruct(lyr, acts))
    if not cross:  # each layer is an ordinary SAELens-layout transcoder, and splitting changed nothing
        single = saes.load(tmp_path / "set" / "blocks.1")
        assert (
            single.cfg.hook_in == "blocks.1.hook_resid_mid" and single.cfg.out_hook == "blocks.1.hook_mlp_out"
        )
        full = clt.eval()(torch.cat([x[lyr] for lyr in range(N_LAYERS)], -1))
        torch.testing.assert_close(tset.reconstruct(1, acts), full[:, D : 2 * D], atol=1e-5, rtol=1e-5)


def test_train_every_layer_from_one_pass(model, tokens_ds):
    n_layers, d = model.cfg.n_layers, model.cfg.d_model
    tc = TrainConfig(lr=3e-3, batch_size=256, total_tokens=8192, progress=False)
    for cross in (False, True):
        tset = train_transcoder_set(
            model, tokens_ds, k=4, expansion=2, tokens=8192, context_len=16, train_cfg=tc, cross_layer=cross
        )
        assert tset.n_layers == n_layers and tset.n_features(0) == 2 * d
        assert tset.kind == ("cross_layer" if cross else "per_layer")
        x = torch.randn(5, d)
        assert int((tset.encode(n_layers - 1, x) != 0).sum(-1).max()) <= 4


def test_cli_train_transcoders(tmp_path):
    out = tmp_path / "tc"
    code = run(
        [
            "sae",
            "train-transcoders",
            "shakespeare-tiny",
            "--out",
            str(out),
            "--tokens",
            "4096",
            "--batch-size",
            "256",
            "--k",
            "4",
            "--expansion",
            "1",
            "--json",
        ]
    )
    assert code == 0
    tset = TranscoderSet.load(out)
    assert tset.kind == "per_layer" and tset.n_layers == 2 and tset.d_model == 128
    result = json.loads((out / "result.json").read_text())
    assert result["metrics"]["tokens_per_second"] > 0
    code = run(
        ["sae", "train-transcoders", "shakespeare-tiny", "--out", str(tmp_path / "x"), "--arch", "gated"]
    )
    assert code == 2


def test_per_layer_jumprelu_set_loads_in_saelens(tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    clt = Trainer(_cfg("clt_jumprelu", False), TrainConfig(lr=1e-2, progress=False)).fit(_batches(5))
    tset = split_layers(clt)
    tset.save(tmp_path / "set")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sae_lens.SAE.load_from_disk(str(tmp_path / "set" / "blocks.2"))
    assert type(theirs).__name__ == "JumpReLUTranscoder"
    x = torch.randn(20, D)
    with torch.no_grad():
        z = tset.encode(2, x)
        torch.testing.assert_close(theirs.encode(x), z, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(theirs.decode(z), tset.layers[2].decode(z), atol=1e-5, rtol=1e-5)
