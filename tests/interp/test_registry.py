"""register(), the load-time self-check of structural matches, and their errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import interp
from interp import adapters
from interp.adapters import Architecture, Proj
from interp.errors import InterpError
from tests.tiny_models import VOCAB, make


@pytest.fixture
def restore_registry():
    saved = dict(adapters._REGISTRY)
    yield
    adapters._REGISTRY.clear()
    adapters._REGISTRY.update(saved)


def _renamed(name: str, model_type: str) -> torch.nn.Module:
    """A tiny model of family `name` whose config claims an unknown model_type (so no exact table)."""
    model = make(name)
    model.config.model_type = model_type
    return model


def test_structural_match_that_passes_its_self_check_loads():
    model = interp.HookedModel(_renamed("llama", "llama_like_new"))
    assert (model.cfg.family, model.cfg.matched) == ("llama", "structure")


@pytest.mark.parametrize(
    ("name", "why"),
    [("granite", "hook_resid_pre \\+ hook_attn_out \\+ hook_mlp_out != hook_resid_post"), ("gemma3", None)],
)
def test_structural_match_failing_its_self_check_is_refused(name, why):
    hf = _renamed(name, "unknown_decoder")
    if why is None:  # Gemma 3's sandwich norms are understood structurally: it passes
        assert interp.HookedModel(hf).cfg.matched == "structure"
        return
    with pytest.raises(
        InterpError, match=f"matched the llama family by structure, but its self-check failed.*{why}"
    ):
        interp.HookedModel(hf)
    assert hf.training is False  # the probe left the model as it was


def test_register_an_architecture_from_user_code(restore_registry):
    hf = _renamed("granite", "my_granite")
    base = interp.HookedModel(make("granite")).arch  # the built-in table's description, reused
    arch = dataclasses.replace(base)
    adapters.register("my_granite", arch, model_types=("my_granite",))
    model = interp.HookedModel(hf)
    assert (model.cfg.family, model.cfg.matched) == ("my_granite", "table")
    tokens = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(0))
    _, cache = model.run_with_cache(tokens)
    for layer in range(2):
        total = sum(cache[f"blocks.{layer}.{k}"] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out"))
        torch.testing.assert_close(total, cache[f"blocks.{layer}.hook_resid_post"])


def test_register_with_a_missing_module_is_one_clear_error(restore_registry):
    base = interp.HookedModel(make("llama")).arch
    adapters.register(
        "broken", dataclasses.replace(base, o=Proj("layers.{l}.self_attn.out_proj")), model_types=("broken",)
    )
    with pytest.raises(InterpError, match="family 'broken'.*'layers.0.self_attn.out_proj'.*does not have"):
        interp.HookedModel(_renamed("llama", "broken"))


def test_register_rejects_bad_calls(restore_registry):
    arch = interp.HookedModel(make("llama")).arch
    with pytest.raises(InterpError, match="already registered"):
        adapters.register("llama", arch, model_types=("x",))
    with pytest.raises(InterpError, match="model_types"):
        adapters.register("new", arch)
    with pytest.raises(InterpError, match="Adapter, an Architecture or a callable"):
        adapters.register("new", 3, model_types=("x",))
    assert isinstance(arch, Architecture)
