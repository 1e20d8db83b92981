import math

import pytest
import torch

import saes
from interp.errors import ShapeError
from saes.architectures import ops

D_IN, D_SAE, K, BATCH = 16, 64, 4, 32


def make(arch: str, **kw) -> saes.SparseAutoencoder:
    k = K if saes.REGISTRY[arch].needs_k else None
    return saes.build(
        saes.SAEConfig(arch, d_in=D_IN, d_sae=D_SAE, k=k, **kw), generator=torch.Generator().manual_seed(0)
    )


@pytest.mark.parametrize("arch", sorted(saes.REGISTRY))
def test_shapes_and_loss_terms(arch):
    sae = make(arch)
    x = torch.randn(BATCH, D_IN)
    terms = sae.loss(
        x,
        sparsity_coef=0.1,
        aux_coef=0.1,
        dead_mask=torch.ones(D_SAE, dtype=torch.bool),
        density=torch.rand(D_SAE) * 0.1,
    )
    assert terms.total.shape == terms.mse.shape == terms.sparsity.shape == terms.aux.shape == ()
    assert terms.acts.shape == (BATCH, D_SAE)
    terms.total.backward()
    assert sae.W_enc.grad is not None and torch.isfinite(sae.W_enc.grad).all()
    sae.eval()
    z = sae.encode(x.reshape(4, 8, D_IN))  # leading dims are kept
    assert z.shape == (4, 8, D_SAE) and (z >= 0).all()
    assert sae.decode(z).shape == (4, 8, D_IN)
    assert torch.allclose(sae(x), sae.decode(sae.encode(x)))
    assert set(terms.scalars()) == {"loss", "mse", "sparsity", "aux", "l0"}


@pytest.mark.parametrize("arch", ["topk", "matryoshka", "gsae"])
def test_topk_family_has_exactly_k_active(arch):
    sae = make(arch)
    with torch.no_grad():
        sae.b_enc.fill_(10.0)  # every pre-activation positive: exactly k survive
    z = sae.encode(torch.randn(BATCH, D_IN))
    assert ((z != 0).sum(-1) == K).all()


@pytest.mark.parametrize("arch", ["batchtopk", "mutual_choice"])
def test_batch_allocation_keeps_k_times_batch_in_total(arch):
    sae = make(arch).train()
    with torch.no_grad():
        sae.b_enc.fill_(10.0)
    z = sae.encode(torch.randn(BATCH, D_IN))
    assert int((z != 0).sum()) == K * BATCH
    assert (z != 0).sum(-1).float().std() > 0  # tokens get different numbers of latents


def test_batchtopk_learns_a_threshold_used_at_inference():
    sae = make("batchtopk").train()
    for _ in range(5):
        terms = sae.loss(torch.randn(BATCH, D_IN))
    assert float(sae.threshold) > 0
    kept_min = terms.acts[terms.acts > 0].min()
    sae.eval()
    x = torch.randn(BATCH, D_IN)
    z = sae.encode(x)
    assert ((z == 0) | (z > sae.threshold)).all() and kept_min > 0


def test_feature_choice_each_latent_takes_its_quota():
    sae = make("feature_choice").train()
    with torch.no_grad():
        sae.b_enc.fill_(10.0)
    z = sae.encode(torch.randn(BATCH, D_IN))
    quota = math.ceil(K * BATCH / D_SAE)
    assert ((z != 0).sum(0) == quota).all()
    sae.loss(torch.randn(BATCH, D_IN))
    assert (sae.threshold > 0).all()  # per-latent inference thresholds


def test_jumprelu_thresholds_are_positive_and_trained_by_the_l0_term():
    sae = make("jumprelu", jumprelu_init_threshold=0.5, jumprelu_bandwidth=0.5)
    assert (sae.threshold > 0).all()
    x = torch.randn(256, D_IN)
    terms = sae.loss(x, sparsity_coef=1.0)
    terms.sparsity.backward()
    # The straight-through estimator gives the L0 term a gradient on the thresholds only.
    assert sae.log_threshold.grad is not None and (sae.log_threshold.grad < 0).any()
    assert sae.W_enc.grad is None or sae.W_enc.grad.abs().sum() == 0
    z = sae.encode(x)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    assert torch.equal(z != 0, pre > sae.threshold)


def test_gated_gate_decides_and_magnitude_sets_values():
    sae = make("gated")
    x = torch.randn(BATCH, D_IN)
    z = sae.encode(x)
    gate = (x - sae.b_dec) @ sae.W_enc + sae.b_gate
    assert ((z != 0) <= (gate > 0)).all()


def test_matryoshka_prefixes_each_reconstruct():
    sae = make("matryoshka", matryoshka_prefixes=(8, 16, 64))
    x = torch.randn(BATCH, D_IN)
    outs = sae.prefix_reconstructions(x)
    assert [o.shape for o in outs] == [x.shape] * 3
    assert torch.allclose(outs[-1], sae(x), atol=1e-6)
    z = sae.encode(x)
    assert torch.allclose(
        outs[0], sae.decode(torch.cat([z[:, :8], torch.zeros_like(z[:, 8:])], 1)), atol=1e-6
    )
    expected = torch.stack([(o - x).pow(2).sum(-1).mean() for o in outs]).mean()
    assert torch.allclose(sae.loss(x).mse, expected, rtol=1e-5)


def test_gsae_without_gradient_is_topk_and_with_gradient_reselects():
    gsae, topk = make("gsae"), make("topk")
    topk.load_state_dict(gsae.state_dict())
    x = torch.randn(BATCH, D_IN)
    assert torch.equal(gsae.encode(x), topk.encode(x))
    # A gradient aligned with one latent's decoder row makes that latent win the selection.
    target = 5
    grad = gsae.W_dec[target].detach().expand(BATCH, D_IN) * 100
    with torch.no_grad():
        gsae.b_enc[target] = 3.0  # active everywhere, but not necessarily in the top k by value
    z = gsae.encode(x, grad=grad)
    assert (z[:, target] > 0).all()
    assert ((z != 0).sum(-1) <= K).all()


def test_zipf_weights_generalise_the_dead_mask():
    density = torch.tensor([0.5, 0.3, 0.0, 0.001])
    w = ops.zipf_weights(density, total_density=0.8, exponent=1.0)
    assert w[2] == 1 and w[0] == 0 and 0 < w[3] < 1
    assert ops.auxk_loss(torch.randn(4, 4), torch.randn(4, 3), torch.randn(4, 3), torch.zeros(4), 2) == 0


def test_transcoder_shapes():
    sae = saes.build(saes.SAEConfig("topk", d_in=D_IN, d_sae=D_SAE, k=K, d_out=24, hook_in="a", hook_out="b"))
    x, y = torch.randn(BATCH, D_IN), torch.randn(BATCH, 24)
    assert sae(x).shape == (BATCH, 24)
    assert sae.loss(x, y).mse > 0
    assert not sae.subtracts_b_dec


def test_wrong_width_names_the_hook_and_shapes():
    sae = saes.build(saes.SAEConfig("relu", d_in=D_IN, d_sae=D_SAE, hook_in="blocks.0.hook_resid_post"))
    with pytest.raises(ShapeError, match=r"blocks.0.hook_resid_post.*\(3, 5\).*16"):
        sae.encode(torch.randn(3, 5))


def test_normalisation_scale_is_undone_on_decode():
    sae = make("relu")
    x = torch.randn(BATCH, D_IN)
    before = sae(x)
    with torch.no_grad():
        sae.scale_in.fill_(2.0)
        sae.scale_out.fill_(2.0)
        sae.b_dec.mul_(2.0)
        sae.b_enc.mul_(2.0)
    # relu(2 pre) = 2 relu(pre): the rescaled SAE computes the same function in model units.
    assert torch.allclose(sae(x), before, atol=1e-5)
