"""Attribution patching against real patching: exact where the metric is linear in the activation,
highly correlated on a trained model."""

from __future__ import annotations

import pytest
import torch

import interp
from circuits import patching
from interp.errors import InterpError
from tests.tiny_models import VOCAB, make

METRIC = patching.logit_diff(answer=5, wrong=7, position=-1)


def zoo(name: str) -> interp.HookedModel:
    try:
        return interp.load(name)
    except (InterpError, AttributeError, ImportError, OSError) as exc:  # the zoo is not shipped yet
        pytest.skip(f"zoo model {name} unavailable: {exc}")


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    corrupted = clean.clone()
    corrupted[:, 3] = (corrupted[:, 3] + 5) % VOCAB
    return clean, corrupted


@pytest.mark.parametrize("mode", ["denoise", "noise"])
def test_exact_when_the_metric_is_linear_in_the_activation(pair, mode):
    # no final norm and a zeroed last MLP: the logit difference is linear in block 1's attention
    # output, in its head outputs z and (attention patterns held fixed) in its values v
    hf = make("gpt2")
    hf.transformer.ln_f = torch.nn.Identity()
    with torch.no_grad():
        for param in hf.transformer.h[-1].mlp.parameters():
            param.zero_()
    model = interp.HookedModel(hf)
    hooks = {"attn_out": "position", "z": "position_head", "v": "head"}
    estimate = patching.attribution_sweep(
        model, *pair, METRIC, hooks, mode=mode, layers=[1], normalise_metric=False
    )
    real = patching.patching_sweep(model, *pair, METRIC, hooks, mode=mode, layers=[1], normalise_metric=False)
    for kind in hooks:
        torch.testing.assert_close(estimate[kind].values, real[kind].values, atol=1e-5, rtol=0, msg=kind)
    assert model.hooks_installed() == 0


def test_correlates_on_a_random_model(pair):
    model = interp.HookedModel(make("gpt2"))
    hooks = {"resid_pre": "position", "attn_out": "position", "z": "head"}
    estimate = patching.attribution_sweep(model, *pair, METRIC, hooks)
    real = patching.patching_sweep(model, *pair, METRIC, hooks)
    for kind in hooks:
        r = torch.corrcoef(torch.stack([estimate[kind].values.flatten(), real[kind].values.flatten()]))[0, 1]
        assert r > 0.9, (kind, float(r))
    assert estimate["z"].meta["forward_passes"] == 2 and estimate["z"].meta["backward_passes"] == 1


def test_correlates_on_the_zoo_ioi_model(record_property):
    model = zoo("ioi-tiny")
    from circuits.patching import same_layout

    batch = same_layout(interp.tasks.get("ioi").generate(512, seed=0), 8)
    hooks = {"resid_pre": "position", "attn_out": "position", "mlp_out": "position", "z": "head"}
    estimate = patching.attribution_sweep(model, batch.clean, batch.corrupted, batch.logit_diff, hooks)
    real = patching.patching_sweep(model, batch.clean, batch.corrupted, batch.logit_diff, hooks)
    for kind in hooks:
        r = float(
            torch.corrcoef(torch.stack([estimate[kind].values.flatten(), real[kind].values.flatten()]))[0, 1]
        )
        record_property(f"attribution_r_{kind}", round(r, 4))
        print(f"attribution vs patching on ioi-tiny, {kind}: r = {r:.4f}")
        assert r > 0.8, (kind, r)
