"""Causal tracing: restoring everything restores clean, noise touches only the subject, and on the
zoo facts model the subject's last token carries the fact."""

from __future__ import annotations

import pytest
import torch

import interp
from circuits import patching
from circuits.patching.tracing import TraceConfig, causal_tracing, subject_mask
from interp.errors import InterpError
from tests.tiny_models import VOCAB, make

METRIC = patching.prob(answer=5, position=-1)


def zoo(name: str) -> interp.HookedModel:
    try:
        return interp.load(name)
    except (InterpError, AttributeError, ImportError, OSError) as exc:  # the zoo is not shipped yet
        pytest.skip(f"zoo model {name} unavailable: {exc}")


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.HookedModel(make("gpt2"))


TOKENS = torch.randint(0, VOCAB, (3, 7), generator=torch.Generator().manual_seed(3))
SUBJECT = (torch.tensor([1, 2, 1]), torch.tensor([2, 3, 3]))  # per-example inclusive spans


def test_restoring_every_position_restores_clean(model):
    config = TraceConfig(kind="resid", samples=4, noise=3.0)
    res = causal_tracing(
        model, TOKENS, SUBJECT, METRIC, config, positions=[tuple(range(7))], normalise_metric=True
    )
    torch.testing.assert_close(res.values, torch.ones(2, 1), atol=1e-5, rtol=0)  # every layer, all positions
    plain = causal_tracing(model, TOKENS, SUBJECT, METRIC, config)
    assert plain.values.shape == (2, 7) and plain.dims == ("layer", "position")
    # nothing before the subject is noised, so restoring it does nothing
    torch.testing.assert_close(plain.values[:, 0], torch.zeros(2), atol=1e-6, rtol=0)
    # the last layer's state at the last position is what the metric reads: full restoration
    assert plain.values[1, -1].item() == pytest.approx(plain.meta["total_effect"], abs=1e-5)
    assert plain.meta["forward_passes"] <= 3 and model.hooks_installed() == 0


def test_mlp_and_attention_windows(model):
    for kind in ("mlp", "attn"):
        one = causal_tracing(model, TOKENS, SUBJECT, METRIC, TraceConfig(kind=kind, samples=2))
        both = causal_tracing(model, TOKENS, SUBJECT, METRIC, TraceConfig(kind=kind, samples=2, window=2))
        assert one.values.shape == both.values.shape == (2, 7)
        torch.testing.assert_close(both.values[0], both.values[1])  # a 2-layer window covers both layers
        assert both.meta["hook"] == f"hook_{kind}_out"


def test_subject_masks_and_bad_config():
    assert subject_mask(SUBJECT, 3, 7).sum(1).tolist() == [2, 2, 3]
    assert (
        subject_mask(torch.tensor([False, True, True, False]), 2, 4).tolist()
        == [[False, True, True, False]] * 2
    )
    with pytest.raises(InterpError, match="out of range"):
        subject_mask((0, 9), 1, 7)
    with pytest.raises(InterpError, match="kind"):
        TraceConfig(kind="heads")


def test_facts_zoo_model_localises_to_the_subject_last_token(record_property):
    model = zoo("facts-tiny")
    facts = interp.tasks.get("facts").generate(16, seed=0)
    first, last = facts.positions["SUBJ_FIRST"], facts.positions["SUBJ_LAST"]
    assert (first == 1).all() and (last == 2).all()  # one layout: positions comparable across prompts
    res = causal_tracing(model, facts.clean, (first, last), facts.prob, TraceConfig(kind="mlp", samples=5))
    print("facts-tiny, MLP restoration indirect effects:\n" + res.table())
    record_property("trace_mlp_table", res.table())
    subject = res.values[:, 1:3]  # [layer, (first, last)]
    layer = int(subject.max(1).values.argmax())
    assert subject[layer, 1] > subject[layer, 0]  # the last subject token, not the first
    assert subject[:, 1].max() > 0.05 and res.meta["total_effect"] > 0.5
