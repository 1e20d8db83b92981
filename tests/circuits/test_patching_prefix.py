"""Prefix reuse: sweeps that recompute only what a patch can change equal the full-rows sweep on every
causal family, under every grouping of sites into passes, and the metric probe finds what it reads."""

from __future__ import annotations

import pytest
import torch

import interp
from circuits import patching
from circuits.patching import prefix
from circuits.patching.bench import PatchingBenchConfig, run, table
from tests.tiny_models import VOCAB, make

N_POS = 9
METRIC = patching.logit_diff(answer=5, wrong=7, position=-1)


def inputs(batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, VOCAB, (batch, N_POS), generator=generator)
    corrupted = clean.clone()
    corrupted[:, 2] = (corrupted[:, 2] + 11) % VOCAB
    corrupted[:, 6] = (corrupted[:, 6] + 3) % VOCAB
    return clean, corrupted


def both(model, clean, corrupted, metric, kinds, **kwargs) -> tuple[dict, dict]:
    fast = patching.patching_sweep(model, clean, corrupted, metric, kinds, normalise_metric=False, **kwargs)
    full = patching.patching_sweep(
        model, clean, corrupted, metric, kinds, normalise_metric=False, prefix_reuse=False, **kwargs
    )
    return fast, full


@pytest.mark.parametrize("family", ["gpt2", "neox", "neox-parallel", "llama", "gemma2", "qwen3"])
@pytest.mark.parametrize("overhead", [0.0, None])  # 0: one pass per site, blocks skipped; None: the default
def test_equals_full_rows(family, overhead, monkeypatch):
    if overhead is not None:
        monkeypatch.setitem(prefix.PASS_OVERHEAD, "cpu", overhead)
    model = interp.HookedModel(make(family))
    kinds = ["resid_pre", "attn_out", "mlp_out", "mlp_post"]
    if family != "neox-parallel":  # a parallel block has no resid_mid
        kinds += ["resid_mid", "resid_post"]
    clean, corrupted = inputs()
    for mode in ("denoise", "noise"):
        fast, full = both(model, clean, corrupted, METRIC, kinds, mode=mode)
        for kind in kinds:
            torch.testing.assert_close(fast[kind].values, full[kind].values, atol=2e-5, rtol=0)
            assert fast[kind].meta["metric_clean"] == pytest.approx(full[kind].meta["metric_clean"], abs=1e-5)
    if overhead == 0.0:  # many passes, each starting at its own layer and position
        assert fast["resid_pre"].meta["forward_passes"] > 10
    named = {"S": torch.tensor([2, 4, 8]), "E": torch.tensor([8, 0, 5])}  # a different index per example
    fast, full = both(model, clean, corrupted, METRIC, ["resid_pre", "mlp_out"], positions=named)
    for kind in ("resid_pre", "mlp_out"):
        torch.testing.assert_close(fast[kind].values, full[kind].values, atol=2e-5, rtol=0)
    assert model.hooks_installed() == 0
    blocks = model._module(model.adapter.layers)
    assert all("forward" not in vars(block) for block in blocks)  # pass-throughs removed


def test_metrics_reading_every_position_or_early_ones(monkeypatch):
    monkeypatch.setitem(prefix.PASS_OVERHEAD, "cpu", 0.0)
    model = interp.HookedModel(make("llama"))
    clean, corrupted = inputs(2, seed=3)
    everywhere = lambda logits: logits[..., 3].mean() - logits[..., 9].mean()  # noqa: E731
    early = lambda logits: logits[:, 4, 3].mean()  # noqa: E731  # patches after position 4 cannot move it
    for metric in (everywhere, early, patching.kl_div(model(clean), -1)):
        fast, full = both(model, clean, corrupted, metric, ["resid_pre", "attn_out"])
        for kind in ("resid_pre", "attn_out"):
            torch.testing.assert_close(fast[kind].values, full[kind].values, atol=2e-5, rtol=0)
    fast, _ = both(model, clean, corrupted, early, ["resid_pre"])
    baseline = fast["resid_pre"].meta["metric_corrupted"]
    assert torch.all(fast["resid_pre"].values[:, 5:] == baseline)


def test_sites_that_change_nothing_take_no_pass():
    model = interp.HookedModel(make("gpt2"))
    clean = torch.randint(0, VOCAB, (2, N_POS), generator=torch.Generator().manual_seed(5))
    corrupted = clean.clone()
    corrupted[:, -2] = (corrupted[:, -2] + 1) % VOCAB  # inputs differ at the second-to-last token only
    fast, full = both(model, clean, corrupted, METRIC, ["resid_pre"])
    torch.testing.assert_close(fast["resid_pre"].values, full["resid_pre"].values, atol=2e-5, rtol=0)
    # everything before position N_POS - 2 is the corrupted run; only 2 layers x 2 positions need work
    assert torch.all(fast["resid_pre"].values[:, : N_POS - 2] == fast["resid_pre"].meta["metric_corrupted"])
    assert fast["resid_pre"].meta["forward_passes"] <= 2 + 4


def test_read_positions():
    logits = torch.randn(2, 12, 11)
    assert prefix.read_positions(METRIC, logits).tolist() == [11]
    assert prefix.read_positions(lambda x: x[:, 3, 1].sum() + x[:, -2].max(), logits).tolist() == [3, 10]
    assert prefix.read_positions(lambda x: x.mean(), logits) is None  # reads everything
    # reads position 5 through a comparison, which NaN does not propagate through: still found
    compares = lambda x: x[:, 0, 0].sum() + (x[:, 5, 0] > 0).float().sum()  # noqa: E731
    assert prefix.read_positions(compares, logits.abs()).tolist() == [0, 5]


def test_bench_agrees_with_transformer_lens():
    pytest.importorskip("transformer_lens")
    cfg = PatchingBenchConfig(n_layer=2, d_model=64, n_head=4, vocab=97, n_pos=6, pairs=(1, 2), repeats=1)
    results = run(cfg)
    for entry in results["batches"].values():
        assert entry["reference"] == "transformer_lens"
        assert max(entry["max_abs_diff_vs_reference"].values()) < 1e-4
        assert set(entry["median_seconds"]) == {"hf_forward", "ours", "ours_full_rows", "transformer_lens"}
    assert len(table(results)["rows"]) == 2


def test_transformers_internals_live_behind_one_shim():
    from circuits.patching import hf_compat

    model = interp.HookedModel(make("llama"))
    assert hf_compat.usable(model)
    hf = model.hf_model
    ids = torch.randint(0, VOCAB, (2, N_POS), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = hf(input_ids=ids, use_cache=True)
        layers = hf_compat.keys_values(hf_compat.returned_cache(full))
        cache = hf_compat.build_cache([(k[:, :, :4], v[:, :, :4]) for k, v in layers], hf.config)
        suffix = hf(input_ids=ids[:, 4:], **hf_compat.cache_kwargs(type(hf), cache))
    torch.testing.assert_close(suffix.logits, full.logits[:, 4:], atol=2e-5, rtol=0)
    blocks = model.module(model.adapter.layers)
    x = torch.randn(2, 3, model.cfg.d_model)
    with hf_compat.skipped(blocks, 2):
        assert blocks[0](x) is x and blocks[1](x, "anything", key=1) is x
    assert all("forward" not in vars(block) for block in blocks)


def test_falls_back_to_full_rows_when_the_internals_change(monkeypatch):
    from circuits.patching import hf_compat

    model = interp.HookedModel(make("gpt2"))
    clean, corrupted = inputs()
    reference = patching.patching_sweep(
        model, clean, corrupted, METRIC, ["resid_pre"], normalise_metric=False, prefix_reuse=False
    )

    def gone(*args, **kwargs):
        raise TypeError("DynamicCache.__init__() got an unexpected keyword argument")

    monkeypatch.setattr(hf_compat, "build_cache", gone)
    monkeypatch.setattr(hf_compat, "_probed", {})
    assert not hf_compat.usable(model)
    assert not prefix.supported(model, [])
    fallback = patching.patching_sweep(model, clean, corrupted, METRIC, ["resid_pre"], normalise_metric=False)
    torch.testing.assert_close(fallback["resid_pre"].values, reference["resid_pre"].values, atol=2e-5, rtol=0)
    assert fallback["resid_pre"].meta["forward_passes"] == reference["resid_pre"].meta["forward_passes"]
