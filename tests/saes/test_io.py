import json
import warnings

import pytest
import torch

import saes
from interp.errors import InterpError

sae_lens = pytest.importorskip("sae_lens")

D_IN, D_SAE = 16, 48

# Our architecture -> the SAELens class that must load it (transcoder form in the second slot).
SAELENS_EQUIVALENT = {
    "relu": ("StandardSAE", "Transcoder"),
    "topk": ("TopKSAE", None),
    "batchtopk": ("JumpReLUSAE", "JumpReLUTranscoder"),
    "jumprelu": ("JumpReLUSAE", "JumpReLUTranscoder"),
    "gated": ("GatedSAE", None),
    "matryoshka": ("TopKSAE", None),
    "mutual_choice": ("JumpReLUSAE", "JumpReLUTranscoder"),
    "feature_choice": ("JumpReLUSAE", "JumpReLUTranscoder"),
    "gsae": ("TopKSAE", None),
}


def perturbed(arch: str, transcoder: bool = False) -> saes.SparseAutoencoder:
    """An SAE with non-trivial weights, biases, thresholds and input scales."""
    k = 4 if saes.REGISTRY[arch].needs_k else None
    extra = (
        dict(d_out=12, hook_in="blocks.0.hook_mlp_in", hook_out="blocks.0.hook_mlp_out") if transcoder else {}
    )
    sae = saes.build(
        saes.SAEConfig(arch, d_in=D_IN, d_sae=D_SAE, k=k, **extra), generator=torch.Generator().manual_seed(1)
    )
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
        sae.scale_in.fill_(2.5)
        sae.scale_out.fill_(0.7 if transcoder else 2.5)
        if arch in ("batchtopk", "mutual_choice", "feature_choice"):
            sae.threshold.fill_(0.2)
    return sae.eval()


def load_saelens(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae_lens.SAE.load_from_disk(str(path))


@pytest.mark.parametrize("transcoder", [False, True], ids=["sae", "transcoder"])
@pytest.mark.parametrize("arch", sorted(SAELENS_EQUIVALENT))
def test_saved_here_loads_in_saelens_with_the_same_outputs(arch, transcoder, tmp_path):
    sae = perturbed(arch, transcoder)
    sae.save(tmp_path / "sae")
    x = torch.randn(64, D_IN, generator=torch.Generator().manual_seed(3))
    # it reads back here as the same architecture, exactly configured
    again = saes.load(tmp_path / "sae")
    assert again.cfg == sae.cfg
    torch.testing.assert_close(again(x), sae(x), atol=1e-5, rtol=1e-5)
    expected_cls = SAELENS_EQUIVALENT[arch][transcoder]
    if expected_cls is None:
        return  # SAELens has no such transcoder; the folder is still in its layout
    theirs = load_saelens(tmp_path / "sae")
    assert type(theirs).__name__ == expected_cls
    with torch.no_grad():
        z_ours, z_theirs = sae.encode(x), theirs.encode(x)
        assert (z_ours != 0).any()
        torch.testing.assert_close(z_theirs, z_ours, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(theirs.decode(z_ours), sae.decode(z_ours), atol=1e-5, rtol=1e-5)


def _saelens_sae(arch: str):
    from sae_lens.saes import (
        GatedSAE,
        GatedSAEConfig,
        JumpReLUSAE,
        JumpReLUSAEConfig,
        StandardSAE,
        StandardSAEConfig,
        TopKSAE,
        TopKSAEConfig,
        Transcoder,
        TranscoderConfig,
    )

    meta = {"hook_name": "blocks.1.hook_resid_post", "model_name": "tiny"}
    build = {
        "standard": lambda: StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE)),
        "topk": lambda: TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=5)),
        "topk_rescaled": lambda: TopKSAE(
            TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=5, rescale_acts_by_decoder_norm=True)
        ),
        "jumprelu": lambda: JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE)),
        "gated": lambda: GatedSAE(GatedSAEConfig(d_in=D_IN, d_sae=D_SAE)),
        "transcoder": lambda: Transcoder(
            TranscoderConfig(d_in=D_IN, d_sae=D_SAE, d_out=10, apply_b_dec_to_input=False)
        ),
    }[arch]
    theirs = build()
    for key, value in meta.items():
        theirs.cfg.metadata[key] = value
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
        if arch == "jumprelu":
            theirs.threshold.copy_(torch.rand(D_SAE, generator=g) * 0.3 + 0.05)
    return theirs


@pytest.mark.parametrize("arch", ["standard", "topk", "topk_rescaled", "jumprelu", "gated", "transcoder"])
def test_saved_by_saelens_loads_here_with_the_same_outputs(arch, tmp_path):
    theirs = _saelens_sae(arch)
    theirs.save_model(tmp_path / "sl")
    ours = saes.load(tmp_path / "sl")
    assert ours.cfg.hook_in == "blocks.1.hook_resid_post" and ours.cfg.model_name == "tiny"
    x = torch.randn(64, D_IN, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        z_theirs = theirs.encode(x)
        assert (z_theirs != 0).any()
        torch.testing.assert_close(ours.encode(x), z_theirs, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.decode(z_theirs), theirs.decode(z_theirs), atol=1e-5, rtol=1e-5)


def test_broken_folders_are_clear_errors(tmp_path):
    with pytest.raises(InterpError, match="no SAE folder"):
        saes.load(tmp_path / "missing")
    sae = perturbed("topk")
    sae.save(tmp_path / "sae")
    (tmp_path / "sae" / "sae_weights.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(InterpError, match="corrupt or partial"):
        saes.load(tmp_path / "sae")
    (tmp_path / "sae" / "sae_weights.safetensors").unlink()
    with pytest.raises(InterpError, match="missing sae_weights.safetensors"):
        saes.load(tmp_path / "sae")
    sae.save(tmp_path / "other")
    cfg = json.loads((tmp_path / "other" / "cfg.json").read_text())
    cfg["metadata"].pop("interp")
    cfg["architecture"] = "temporal"
    (tmp_path / "other" / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(InterpError, match="no equivalent here"):
        saes.load(tmp_path / "other")


def test_save_replaces_a_folder_atomically(tmp_path):
    perturbed("relu").save(tmp_path / "sae")
    perturbed("topk").save(tmp_path / "sae")
    assert saes.load(tmp_path / "sae").cfg.arch == "topk"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sae"]


def test_a_folder_saved_with_the_flat_config_layout_loads(tmp_path):
    sae = perturbed("jumprelu")
    sae.save(tmp_path / "sae")
    path = tmp_path / "sae" / "cfg.json"
    raw = json.loads(path.read_text())
    nested = raw["metadata"]["interp"]["config"]
    flat = {k: v for k, v in nested.items() if k != "knobs"}  # as written before per-architecture knobs
    flat.update(jumprelu_init_threshold=0.1, jumprelu_bandwidth=0.1, matryoshka_prefixes=[], gsae_beta=1.0)
    flat.update(zipf_exponent=1.0, threshold_momentum=0.01, n_layers=1, cross_layer=True, sparse_topk=True)
    raw["metadata"]["interp"]["config"] = flat
    path.write_text(json.dumps(raw))
    again = saes.load(tmp_path / "sae")
    assert again.cfg == sae.cfg
    x = torch.randn(5, D_IN, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again(x), sae(x))
