"""Adapter tables per architecture family, and detection of the family from a model's module tree.

Detection is structural (which submodules exist), not by `model_type`, so new decoders built like a
known family (say, a Llama-style model released after this code) work without a new table.
To add a family: write a module with an `Adapter` table (see `gpt2.py`), and a probe in `_FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from interp.adapters import bert, gpt2, llama, neox
from interp.adapters.spec import Adapter
from interp.errors import InterpError


@dataclass(frozen=True)
class ModelInfo:
    """Dimensions of a wrapped model, in TransformerLens's vocabulary."""

    family: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    parallel_residual: bool = False
    is_encoder: bool = False


def _has(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def _first_block_has(*paths: str, layers: str) -> Callable[[nn.Module], bool]:
    def probe(base: nn.Module) -> bool:
        if not _has(base, layers) or len(base.get_submodule(layers)) == 0:
            return False
        block = base.get_submodule(layers)[0]
        return all(_has(block, p) for p in paths)

    return probe


# family name -> (structural probe on the base model, adapter factory(base model, config))
_FAMILIES: dict[str, tuple[Callable[[nn.Module], bool], Callable[[nn.Module, object], Adapter]]] = {
    "gpt2": (
        _first_block_has("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "ln_2", layers="h"),
        lambda base, cfg: gpt2.ADAPTER,
    ),
    "gpt_neox": (
        _first_block_has(
            "attention.query_key_value", "attention.dense", "mlp.dense_4h_to_h", layers="layers"
        ),
        lambda base, cfg: neox.adapter(bool(getattr(cfg, "use_parallel_residual", False))),
    ),
    "llama": (
        _first_block_has(
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.down_proj",
            "post_attention_layernorm",
            layers="layers",
        ),
        lambda base, cfg: llama.adapter(_has(base.get_submodule("layers")[0], "pre_feedforward_layernorm")),
    ),
    "bert": (
        _first_block_has(
            "attention.self.query", "attention.output.dense", "intermediate.dense", layers="encoder.layer"
        ),
        lambda base, cfg: bert.ADAPTER,
    ),
}

SUPPORTED_FAMILIES = tuple(_FAMILIES)


def _get(cfg: object, *names: str, default: int | None = None) -> int:
    for name in names:
        value = getattr(cfg, name, None)
        if value is not None:
            return int(value)
    if default is None:
        raise InterpError(f"model config lacks all of {names}; cannot infer model dimensions")
    return default


def _model_info(family: str, cfg: object) -> ModelInfo:
    d_model = _get(cfg, "hidden_size", "n_embd", "d_model")
    n_heads = _get(cfg, "num_attention_heads", "n_head")
    return ModelInfo(
        family=family,
        n_layers=_get(cfg, "num_hidden_layers", "n_layer"),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=_get(cfg, "num_key_value_heads", default=n_heads),
        d_head=_get(cfg, "head_dim", default=d_model // n_heads),
        d_mlp=_get(cfg, "intermediate_size", "n_inner", default=4 * d_model),
        d_vocab=_get(cfg, "vocab_size"),
        parallel_residual=bool(getattr(cfg, "use_parallel_residual", False)),
        is_encoder=family == "bert",
    )


def detect(base_model: nn.Module, config: object) -> tuple[Adapter, ModelInfo]:
    """The adapter table and dimensions for `base_model` (the HF model's `base_model`)."""
    for family, (probe, make) in _FAMILIES.items():
        if probe(base_model):
            return make(base_model, config), _model_info(family, config)
    raise InterpError(
        f"unsupported architecture {type(base_model).__name__} "
        f"(model_type={getattr(config, 'model_type', '?')!r}): its module tree matches none of the "
        f"supported families {', '.join(SUPPORTED_FAMILIES)}. To add it, write an Adapter table in "
        "interp/adapters/ (see gpt2.py) and register a structural probe in interp/adapters/__init__.py."
    )
