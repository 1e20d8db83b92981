"""Bad inputs to the API: each is refused with one `InterpError` naming the fix, or accepted correctly.

Replays the cases that used to give NaN logits, truncated indices, 5-D logits or a traceback.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import interp
from interp import Ablate, Add, Patch, Project, Scale
from interp.errors import InterpError
from interp.interventions import Intervention
from tests.tiny_models import VOCAB, make

HOOK = "blocks.0.hook_resid_post"
PATTERN = "blocks.0.attn.hook_pattern"


@pytest.fixture(scope="module")
def model() -> interp.HookedModel:
    return interp.HookedModel(make("gpt2"))  # n_positions 64, vocab 97


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(0))


NAN = float("nan")


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Patch(HOOK, value=torch.full((2, 6, 64), NAN)), "NaN"),
        (lambda: Patch(HOOK, value=torch.full((2, 6, 64), float("inf"))), "inf"),
        (lambda: Scale(HOOK, factor=NAN), "finite"),
        (lambda: Scale(HOOK, factor=float("inf")), "finite"),
        (lambda: Add(HOOK, vector=torch.tensor([NAN] * 64)), "NaN"),
        (lambda: Add(HOOK, vector=torch.ones(64), coeff=NAN), "finite"),
        (lambda: Add(HOOK), "needs vector"),
        (lambda: Project(HOOK), "needs basis"),
        (lambda: Project(HOOK, basis=torch.zeros(0, 64)), "empty"),
        (lambda: Ablate(HOOK, kind="mean", reference=torch.zeros(0, 6, 64)), "empty"),
        (lambda: Ablate(HOOK, kind="resample", reference=torch.zeros(0, 6, 64)), "empty"),
        (lambda: Ablate(HOOK, positions=(1.5,)), "whole numbers"),
        (lambda: Ablate(HOOK, positions=("1",)), "whole numbers"),
        (lambda: Ablate(PATTERN, heads=(0.5,)), "whole numbers"),
        (lambda: Patch(HOOK, value="abc"), "expected a tensor"),
        (lambda: Patch(HOOK, value=[[1, 2], [3]]), "could not read"),
        (lambda: Patch(123, value=torch.zeros(1)), "hook must be"),
    ],
)
def test_bad_interventions_fail_at_construction(build, match):
    with pytest.raises(InterpError, match=match):
        build()


def test_whole_number_floats_and_numpy_values_are_accepted(model, tokens):
    _, cache = model.run_with_cache(tokens, names=HOOK)
    value = cache[HOOK]
    base = model.run_with_interventions(tokens, [Patch(HOOK, value=value, positions=(1, 2))])
    as_numpy = Patch(HOOK, value=value.numpy(), positions=(1.0, np.int64(2)))
    as_list = Patch(HOOK, value=value.tolist(), positions=[1, 2])
    assert as_numpy.positions == (1, 2)
    for iv in (as_numpy, as_list):
        torch.testing.assert_close(model.run_with_interventions(tokens, [iv]), base, atol=0, rtol=0)
    steered = model.run_with_interventions(tokens, [Add(HOOK, vector=np.ones(64, dtype=np.float32))])
    torch.testing.assert_close(
        steered, model.run_with_interventions(tokens, [Add(HOOK, vector=torch.ones(64))])
    )


@pytest.mark.parametrize(
    "payload, match",
    [
        ({"type": "Scale", "factor": 2.0}, "missing field 'hook'"),
        ({"type": "Scale", "hook": HOOK, "factr": 2.0}, "unknown field 'factr'"),
        ({"hook": HOOK}, "unknown intervention type None"),
        ({"type": "Nope", "hook": HOOK}, "unknown intervention type"),
        ({"type": "Add", "hook": HOOK}, "needs vector"),
        ({"type": "Add", "hook": HOOK, "vector": {"dtype": "float32", "shape": [2]}}, "missing 'data'"),
        ({"type": "Add", "hook": HOOK, "vector": {"dtype": "floaty", "shape": [1], "data": [1]}}, "dtype"),
        (
            {"type": "Add", "hook": HOOK, "vector": {"dtype": "float32", "shape": [3], "data": [1]}},
            "bad tensor",
        ),
    ],
)
def test_bad_intervention_json(payload, match):
    with pytest.raises(InterpError, match=match):
        Intervention.from_json(json.dumps(payload))


def test_invalid_json_text():
    with pytest.raises(InterpError, match="not valid JSON"):
        Intervention.from_json("{type: Scale")


@pytest.mark.parametrize(
    "inputs, match",
    [
        (torch.zeros(2, 3, 4, dtype=torch.long), "3-D"),
        (torch.zeros(1, 65, dtype=torch.long), "at most 64 positions"),
        (torch.full((1, 4), VOCAB), f"token id {VOCAB} is outside"),
        (torch.full((1, 4), -1), "token id -1 is outside"),
        (torch.zeros(1, 0, dtype=torch.long), "empty input"),
        (torch.zeros(1, 4), "integer tensor"),
    ],
)
def test_bad_token_tensors(model, inputs, match):
    with pytest.raises(InterpError, match=match):
        model(inputs)
    with pytest.raises(InterpError, match=match):
        model.run_with_cache(inputs, names=HOOK)
    assert model.hooks_installed() == 0


def test_empty_text_inputs():
    model = interp.load("ioi-tiny")
    with pytest.raises(InterpError, match="empty input"):
        model([])
    with pytest.raises(InterpError, match="at most"):
        model(" Mary" * (model.hf_model.config.n_positions + 5))


def test_run_batched_needs_sets(model, tokens):
    with pytest.raises(InterpError, match="no intervention sets"):
        model.run_batched(tokens, [])
    with pytest.raises(InterpError, match=r"wrap a single one"):
        model.run_batched(tokens, [Scale(HOOK, factor=2.0)])
    plain = model.run_batched(tokens, [[]])
    torch.testing.assert_close(plain[0], model(tokens), atol=1e-5, rtol=0)


def test_mean_ablation_with_a_reference_is_finite(model, tokens):
    _, cache = model.run_with_cache(tokens, names=HOOK)
    logits = model.run_with_interventions(tokens, [Ablate(HOOK, kind="mean", reference=cache[HOOK])])
    assert torch.isfinite(logits).all()


def test_nested_pattern_hooks_stack(model, tokens):
    """The inner block's pattern hook adds to the outer one and leaves it in place when it exits."""
    seen: list[str] = []

    def outer(p, name):
        seen.append("outer")
        return p * 0 + p.mean()  # a uniform-ish pattern, so an effect is visible

    def inner(p, name):
        seen.append("inner")

    with model.hooks({PATTERN: outer}):
        with_outer = model(tokens)
        with model.hooks({PATTERN: inner}):
            seen.clear()
            both = model(tokens)
            assert seen == ["outer", "inner"]
        seen.clear()
        after = model(tokens)
        assert seen == ["outer"]
    assert torch.equal(both, with_outer) and torch.equal(after, with_outer)
    assert model.hooks_installed() == 0
    assert not torch.equal(model(tokens), with_outer)


def test_nested_pattern_caches_record_both(model, tokens):
    with model.hooks({PATTERN: lambda p, n: p * 0.5}):
        _, cache = model.run_with_cache(tokens, names=PATTERN)
    torch.testing.assert_close(cache[PATTERN].sum(-1), torch.full((2, 4, 6), 0.5))
