"""The sparse TopK path (`saes.sparse`) against the dense reference: same values, same gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import saes
from saes import sparse

D_IN, D_SAE, K, BATCH = 16, 64, 4, 32
ATOL = 1e-5


def _dense_codes(vals: torch.Tensor, idx: torch.Tensor, d_sae: int) -> torch.Tensor:
    return torch.zeros(vals.shape[0], d_sae, dtype=vals.dtype).scatter(-1, idx, vals)  # [batch, d_sae]


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return list(torch.autograd.grad((out * probe).sum(), inputs, retain_graph=True))


def _random_topk(batch: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    idx = (
        torch.rand(batch, D_SAE, generator=g).topk(K, dim=-1).indices
    )  # distinct per row, shared across rows
    return torch.rand(batch, K, generator=g), idx


@pytest.fixture(params=["private", "public"])
def kernels(request, monkeypatch):
    """Run the test with the private embedding-bag kernels (where they work) and with the public ops."""
    monkeypatch.setattr(sparse, "USE_PRIVATE_OPS", request.param == "private")
    if request.param == "private":
        assert sparse.private_ops_work("cpu", torch.float32)  # this torch has them, and they agree
    return request.param


@pytest.mark.parametrize("bias", [True, False])
def test_decode_matches_dense(bias, kernels):
    vals, idx = _random_topk()
    W_dec = torch.randn(D_SAE, D_IN)
    b_dec = torch.randn(D_IN) if bias else None
    leaves = [t.requires_grad_() for t in (vals, W_dec, *([b_dec] if bias else []))]
    out = sparse.topk_decode(vals, sparse.LatentBags(idx, D_SAE), W_dec, b_dec)  # [batch, d_in]
    ref = _dense_codes(vals, idx, D_SAE) @ W_dec + (b_dec if bias else 0)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    for got, want in zip(_grads(out, leaves), _grads(ref, leaves), strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    untouched = torch.ones(D_SAE, dtype=torch.bool).index_fill(0, idx.flatten(), False)
    assert (_grads(out, [W_dec])[0][untouched] == 0).all()  # rows no token chose get no gradient


@pytest.mark.parametrize("pre_bias", [True, False])
def test_encode_matches_dense(pre_bias, kernels):
    g = torch.Generator().manual_seed(2)
    x, W_enc, b_enc = torch.randn(BATCH, D_IN, generator=g), torch.randn(D_IN, D_SAE), torch.randn(D_SAE)
    b_pre = torch.randn(D_IN) if pre_bias else None
    leaves = [t.requires_grad_() for t in (x, W_enc, b_enc, *([b_pre] if pre_bias else []))]
    vals, bags = sparse.topk_encode(x, W_enc, b_enc, b_pre, lambda pre: pre.topk(K, dim=-1).indices)
    idx = bags.idx
    pre = (x - b_pre if pre_bias else x) @ W_enc + b_enc  # [batch, d_sae]
    ref_idx = pre.topk(K, dim=-1).indices
    assert torch.equal(idx, ref_idx) and not idx.requires_grad
    ref = pre.gather(-1, ref_idx)
    torch.testing.assert_close(vals, ref, atol=ATOL, rtol=0)
    for got, want in zip(_grads(vals, leaves), _grads(ref, leaves), strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def _pair(arch: str, **cfg_kw) -> tuple[saes.SparseAutoencoder, saes.SparseAutoencoder]:
    cfg = saes.SAEConfig(arch, d_in=D_IN, d_sae=D_SAE, k=K, **cfg_kw)
    fast = saes.build(cfg, generator=torch.Generator().manual_seed(0))
    slow = saes.build(dataclasses.replace(cfg, sparse_topk=False))
    slow.load_state_dict(fast.state_dict())
    with torch.no_grad():  # a non-trivial b_dec and input scale, so every term has a gradient
        for sae in (fast, slow):
            sae.b_dec.copy_(torch.linspace(-0.5, 0.5, sae.cfg.out_dim))
            sae.scale_in.fill_(1.7)
    return fast, slow


@pytest.mark.parametrize(
    ("arch", "cfg_kw", "with_grad"),
    [
        ("topk", {}, False),
        ("topk", {"d_out": 8, "hook_in": "a", "hook_out": "b"}, False),  # transcoder: no b_dec on input
        ("matryoshka", {"matryoshka_prefixes": (8, 24, 64)}, False),
        ("gsae", {}, True),
    ],
)
def test_sae_loss_and_gradients_match_dense(arch, cfg_kw, with_grad):
    fast, slow = _pair(arch, **cfg_kw)
    g = torch.Generator().manual_seed(3)
    d_out = fast.cfg.out_dim
    x = torch.randn(BATCH, D_IN, generator=g)
    target = torch.randn(BATCH, d_out, generator=g) if d_out != D_IN else None
    grad = torch.randn(BATCH, d_out, generator=g) if with_grad else None
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::3] = True  # AuxK on a third of the latents
    kw = dict(aux_coef=0.5, dead_mask=dead, aux_k=6, grad=grad)
    a, b = fast.loss(x, target, **kw), slow.loss(x, target, **kw)
    assert a.acts.is_sparse and not b.acts.is_sparse
    torch.testing.assert_close(a.acts.to_dense(), b.acts, atol=ATOL, rtol=0)
    for name in ("total", "mse", "aux"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=ATOL, rtol=1e-6)
    assert float(a.aux.detach()) > 0
    assert a.scalars()["l0"] == pytest.approx(b.scalars()["l0"])
    a.total.backward()
    b.total.backward()
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=ATOL, rtol=1e-5, msg=f"{arch} grad of {name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_row_scatter_is_an_index_add(dtype, kernels):
    """The CSR product (float32/64) and the embedding-bag fallback (other dtypes) against index_add_."""
    vals, idx = _random_topk()
    src = torch.randn(BATCH, D_IN)
    ref = torch.zeros(D_SAE, D_IN).index_add_(
        0, idx.flatten(), (vals[:, :, None] * src[:, None]).flatten(0, 1)
    )
    bags = sparse.LatentBags(idx, D_SAE)
    out = bags.scatter_rows(src.to(dtype), vals.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, atol=ATOL if dtype == torch.float32 else 0.1, rtol=0.02)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_private_and_public_kernels_agree(dtype):
    """Each private aten kernel against its public-op version and an explicit gather / index_add."""
    vals, idx = _random_topk()
    g = torch.Generator().manual_seed(3)
    src, table = torch.randn(BATCH, D_IN, generator=g), torch.randn(D_SAE, D_IN, generator=g)
    dot = (table[idx] * src[:, None]).sum(-1)  # [batch, k]
    rows = torch.zeros(D_SAE, D_IN).index_add_(
        0, idx.flatten(), (vals[:, :, None] * src[:, None]).flatten(0, 1)
    )
    tol = {"atol": 0.1, "rtol": 0.02} if dtype == torch.bfloat16 else {"atol": ATOL, "rtol": 1e-6}
    s, t, w = src.to(dtype), table.to(dtype), vals.to(dtype)
    for kernel in (sparse._gather_dot_private, sparse._gather_dot_public):
        torch.testing.assert_close(kernel(s, t, idx).double(), dot.double(), **tol)
    for kernel in (sparse._scatter_private, sparse._scatter_public):
        out = kernel(s, w, idx, D_SAE)
        assert out.dtype == dtype and out.shape == (D_SAE, D_IN)
        torch.testing.assert_close(out.double(), rows.double(), **tol)


def test_a_broken_private_kernel_falls_back_to_public_ops(monkeypatch, caplog):
    """A private op that is missing (or changed its signature) is found by the probe; the public ops run."""

    def missing(*args):
        raise AttributeError("'_OpNamespace' 'aten' object has no attribute '_embedding_bag_dense_backward'")

    sparse.private_ops_work.cache_clear()
    monkeypatch.setattr(sparse, "_scatter_private", missing)
    try:
        assert not sparse.private_ops_work("cpu", torch.float32)
        assert "using public ops" in caplog.text
        vals, idx = _random_topk()
        src = torch.randn(BATCH, D_IN)
        out = sparse.LatentBags(idx, D_SAE)._scatter_rows_embedding_bag(src, vals)  # would raise if called
        ref = torch.zeros(D_SAE, D_IN).index_add_(
            0, idx.flatten(), (vals[:, :, None] * src[:, None]).flatten(0, 1)
        )
        torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-6)
    finally:
        sparse.private_ops_work.cache_clear()


@pytest.mark.parametrize(
    "batch,d_sae,k", [(64, 1024, 16), (33, 2048, 32), (8, 64, 4), (5, 96, 6), (7, 40, 8), (3, 16384, 64)]
)
@pytest.mark.parametrize("ties", [False, True])
def test_two_stage_topk_keeps_the_k_largest(batch, d_sae, k, ties):
    """`ops.topk_indices` (two stages on wide rows) against one `torch.topk`: the same chosen values, and
    without ties the same latents; with ties (rounded scores) any tied choice is as good."""
    from saes.architectures import ops

    score = torch.randn(batch, d_sae, generator=torch.Generator().manual_seed(d_sae + k))
    if ties:
        score = (score * 2).round()
    idx = ops.topk_indices(score, k)
    ref = score.topk(k, dim=-1)
    assert idx.shape == (batch, k) and all(len(set(row)) == k for row in idx.tolist())
    assert torch.equal(score.gather(1, idx).sort(-1).values, ref.values.sort(-1).values)
    if not ties:
        assert torch.equal(idx.sort(-1).values, ref.indices.sort(-1).values)


def test_firing_counts_and_l0_read_both_layouts():
    vals, idx = _random_topk()
    vals[0, 0] = 0.0  # a chosen latent that did not fire (relu'd to zero)
    codes = sparse.sparse_codes(vals, sparse.LatentBags(idx, D_SAE))
    dense = _dense_codes(vals, idx, D_SAE)
    assert codes.is_coalesced() and torch.equal(codes.to_dense(), dense)
    assert torch.equal(sparse.firing_counts(codes), sparse.firing_counts(dense))
    assert float(sparse.mean_l0(codes)) == pytest.approx(float(sparse.mean_l0(dense)))


def test_trainer_takes_the_same_steps_on_both_paths():
    """Full trainer (b_dec init, LR warm-up, AuxK on dead latents, decoder-norm constraint, clipping)."""
    g = torch.Generator().manual_seed(4)
    batches = [torch.randn(64, D_IN, generator=g).relu() for _ in range(6)]
    cfg = saes.SAEConfig("topk", d_in=D_IN, d_sae=D_SAE, k=K)
    tc = saes.TrainConfig(
        lr=1e-3, lr_warmup_steps=2, dead_window_tokens=64, aux_k=4, log_every=1, progress=False
    )
    runs = []
    for flag in (True, False):
        trainer = saes.Trainer(dataclasses.replace(cfg, sparse_topk=flag), tc)
        trainer.fit(batches)
        runs.append(trainer)
    fast, slow = runs
    assert fast.last_metrics["aux"] > 0  # some latents went dead and AuxK ran
    assert torch.equal(fast.tokens_since_fired, slow.tokens_since_fired)
    torch.testing.assert_close(fast.density, slow.density)
    for p, q in zip(fast.sae.parameters(), slow.sae.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=ATOL, rtol=1e-5)
