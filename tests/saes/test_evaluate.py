import json

import pytest
import torch

import saes
from interp.errors import InterpError
from saes.report import write_report

HOOK = "blocks.0.hook_resid_post"


def identity_sae(d: int = 64, hook: str = HOOK) -> saes.SparseAutoencoder:
    """relu(x) - relu(-x) = x: a ReLU SAE with W_enc = [I, -I] and W_dec = [I; -I] reconstructs exactly."""
    sae = saes.build(saes.SAEConfig("relu", d_in=d, d_sae=2 * d, hook_in=hook))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


@pytest.fixture(scope="module")
def windows(tokens_ds):
    return torch.tensor(tokens_ds["input_ids"])[:12, :32]


def test_perfect_sae_recovers_all_of_the_ce_loss(model, windows):
    result = saes.evaluate(identity_sae(), model, windows, batch_size=5)
    m = result.metrics
    assert m["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-3)
    assert m["kl_div"] == pytest.approx(0.0, abs=1e-5)
    assert m["fvu"] < 1e-8 and m["mse"] < 1e-10
    assert m["n_tokens"] == 12 * 32


def test_zero_sae_recovers_none_of_it(model, windows):
    sae = identity_sae()
    with torch.no_grad():
        sae.W_dec.zero_()
    m = saes.evaluate(sae, model, windows).metrics
    assert m["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-3)
    assert m["fvu"] == pytest.approx(1.0, rel=0.05)
    assert m["kl_div"] > 0


def test_sparsity_metrics_and_feature_cards(model, windows, tmp_path):
    sae = saes.build(saes.SAEConfig("topk", d_in=64, d_sae=256, k=3, hook_in=HOOK))
    result = saes.evaluate(sae, model, windows, n_browse=5, n_contexts=4)
    m = result.metrics
    assert m["l0"] <= 3
    assert 0 <= m["dead_fraction"] <= 1 and 0 <= m["dense_fraction"] <= 1
    assert result.density.shape == (256,)
    assert m["dead_fraction"] == pytest.approx(float((result.density == 0).float().mean()))
    assert len(result.features) == 5
    card = result.features[0]
    assert card.density == max(f.density for f in result.features)
    assert 0 < len(card.contexts) <= 4 and len(card.top_logits) == 8
    ctx = card.contexts[0]
    assert len(ctx["tokens"]) == len(ctx["acts"]) and ctx["acts"][ctx["position"]] == pytest.approx(
        card.max_activation, rel=1e-4
    )

    write_report(result, tmp_path, title="test")
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"]["l0"] == m["l0"]
    assert (tmp_path / "density.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "features.html").read_text()
    assert page.count("<section id='f") == 5 and "data:image/png;base64," in page


def test_transcoder_is_spliced_at_its_output_hook(model, windows):
    # resid_post of block 0 == resid_pre of block 1: an identity transcoder between them is perfect.
    sae = identity_sae(hook=HOOK)
    tc = saes.build(
        saes.SAEConfig("relu", d_in=64, d_sae=128, hook_in=HOOK, hook_out="blocks.1.hook_resid_pre")
    )
    tc.load_state_dict(sae.state_dict())
    m = saes.evaluate(tc, model, windows).metrics
    assert m["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-3) and m["fvu"] < 1e-8


def test_sae_on_attention_z_concatenates_heads(model, windows):
    sae = identity_sae(hook="blocks.1.attn.hook_z")
    m = saes.evaluate(sae, model, windows).metrics
    assert m["fvu"] < 1e-8 and m["kl_div"] == pytest.approx(0.0, abs=1e-5)


def test_width_mismatch_is_a_clear_error(model, windows):
    sae = saes.build(saes.SAEConfig("relu", d_in=32, d_sae=64, hook_in=HOOK))
    with pytest.raises(InterpError, match=r"blocks.0.hook_resid_post has width 64.*expects 32"):
        saes.evaluate(sae, model, windows)
