"""Adapter tables per architecture family, and how a model is matched to one.

A model is matched, in order, by (1) its config's `model_type` against the exact tables (tested per
family), then (2) structurally, by which submodules its first block has. A structural match is
checked at load by `interp.adapters.selfcheck` (a tiny probe forward verifying the block identity and
the bitwise no-hook equality) and refused if the check fails, never silently wrong.

Add a family from your own code with `register`:

    >>> from interp.adapters import Architecture, Proj, register
    >>> register("myarch", lambda base, cfg: Architecture(...), model_types=("myarch",))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from interp.adapters import bert, bloom, falcon, gpt2, gpt_neo, gptj, llama, misc, neox, opt, phi
from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Proj
from interp.errors import InterpError

Factory = Callable[[nn.Module, object], "Adapter | Architecture"]

__all__ = [
    "Adapter",
    "Architecture",
    "Family",
    "ModelInfo",
    "Proj",
    "detect",
    "families",
    "register",
]


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
    matched: str = "table"  # "table" (by model_type) or "structure" (self-checked at load)


@dataclass(frozen=True)
class Family:
    """A registered family: `make(base_model, config)` returns its Adapter (or an Architecture, turned
    into one); `model_types` match configs exactly; `probe(base_model)` matches structurally."""

    name: str
    make: Factory
    model_types: tuple[str, ...] = ()
    probe: Callable[[nn.Module], bool] | None = None


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


_REGISTRY: dict[str, Family] = {}


def register(
    name: str,
    make: Factory | Adapter | Architecture,
    *,
    model_types: tuple[str, ...] | list[str] = (),
    probe: Callable[[nn.Module], bool] | None = None,
    replace: bool = False,
) -> Family:
    """Add an architecture family. `make` is an `Adapter`, an `Architecture` (hook points are derived
    from it), or `make(base_model, config)` returning either. Models whose `config.model_type` is in
    `model_types` use it directly; `probe(base_model) -> bool` lets models match by structure (then
    self-checked at load). Every module path the table names is checked when a model is wrapped."""
    if not isinstance(name, str) or not name:
        raise InterpError("register: give the family a non-empty name")
    if name in _REGISTRY and not replace:
        raise InterpError(f"family {name!r} is already registered; pass replace=True to override it")
    if not (model_types or probe):
        raise InterpError(f"register {name!r}: give model_types=(...) and/or probe=fn(base_model) -> bool")
    if isinstance(make, (Adapter, Architecture)):
        table = make
        make = lambda base, cfg: table  # noqa: E731
    elif not callable(make):
        raise InterpError(f"register {name!r}: make must be an Adapter, an Architecture or a callable")
    family = Family(name, make, tuple(model_types), probe)
    _REGISTRY[name] = family
    return family


def families() -> list[Family]:
    """Every registered family, built-in first."""
    return list(_REGISTRY.values())


_LLAMA_PROBE = _first_block_has(
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.down_proj",
    "input_layernorm",
    "post_attention_layernorm",
    layers="layers",
)
register(
    "gpt2",
    gpt2.adapter,
    model_types=("gpt2",),
    probe=_first_block_has("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "ln_2", layers="h"),
)
register("gpt_bigcode", gpt2.bigcode, model_types=("gpt_bigcode",))
register(
    "gpt_neox",
    neox.adapter,
    model_types=("gpt_neox",),
    probe=_first_block_has(
        "attention.query_key_value", "attention.dense", "mlp.dense_4h_to_h", layers="layers"
    ),
)
register(
    "llama",
    llama.adapter,
    model_types=("llama", "mistral", "qwen2", "gemma", "gemma2"),
    probe=_LLAMA_PROBE,
)
register(
    "bert",
    bert.adapter,
    model_types=("bert",),
    probe=_first_block_has(
        "attention.self.query", "attention.output.dense", "intermediate.dense", layers="encoder.layer"
    ),
)
register("opt", opt.adapter, model_types=("opt",))
register("gptj", gptj.adapter, model_types=("gptj",))
register("gpt_neo", gpt_neo.adapter, model_types=("gpt_neo",))
register("falcon", falcon.adapter, model_types=("falcon",))
register("phi", phi.phi, model_types=("phi",))
register("phi3", phi.phi3, model_types=("phi3",))
register("bloom", bloom.adapter, model_types=("bloom",))
register("stablelm", misc.stablelm, model_types=("stablelm",))
register("starcoder2", misc.starcoder2, model_types=("starcoder2",))
register("cohere", misc.cohere, model_types=("cohere",))
register("olmo", llama.olmo, model_types=("olmo",))
register("olmo2", llama.olmo2, model_types=("olmo2",))
register("granite", llama.granite, model_types=("granite",))
register("gemma3", llama.gemma3, model_types=("gemma3_text",))
register("mixtral", llama.mixtral, model_types=("mixtral",))
_BUILT_IN = frozenset(_REGISTRY)

SUPPORTED_FAMILIES = tuple(_REGISTRY)


def _get(cfg: object, *names: str, default: int | None = None) -> int:
    for name in names:
        value = getattr(cfg, name, None)
        if value is not None and not isinstance(value, (list, tuple)):
            return int(value)
    if default is None:
        raise InterpError(f"model config lacks all of {names}; cannot infer model dimensions")
    return default


def _model_info(adapter: Adapter, cfg: object, matched: str) -> ModelInfo:
    d_model = _get(cfg, "hidden_size", "n_embd", "d_model")
    n_heads = _get(cfg, "num_attention_heads", "n_head", "num_heads")
    arch = adapter.arch
    n_kv = adapter.n_kv_heads or _get(cfg, "num_key_value_heads", default=n_heads)
    return ModelInfo(
        family=adapter.family,
        n_layers=_get(cfg, "num_hidden_layers", "n_layer", "num_layers"),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        d_head=_get(cfg, "head_dim", default=d_model // n_heads),
        d_mlp=_get(cfg, "intermediate_size", "n_inner", "ffn_dim", default=4 * d_model),
        d_vocab=_get(cfg, "vocab_size"),
        parallel_residual=arch is not None and arch.residual == "parallel",
        is_encoder=adapter.family == "bert",
        matched=matched,
    )


def _as_adapter(name: str, made: Adapter | Architecture) -> Adapter:
    if isinstance(made, Architecture):
        return from_architecture(name, made)
    if not isinstance(made, Adapter):
        raise InterpError(
            f"family {name!r}: its factory returned {type(made).__name__}, not an Adapter or Architecture"
        )
    return made


def _how_to_add() -> str:
    return (
        "To add it, describe its block with interp.adapters.Architecture (module paths of q/k/v/o, MLP, norms) "
        "and call interp.adapters.register(name, arch, model_types=(config.model_type,))"
    )


def detect(base_model: nn.Module, config: object) -> tuple[Adapter, ModelInfo]:
    """The adapter table and dimensions for `base_model` (the HF model's `base_model`)."""
    model_type = getattr(config, "model_type", None)
    for family in _REGISTRY.values():
        if model_type in family.model_types:
            adapter = _as_adapter(family.name, family.make(base_model, config))
            check_paths(adapter, base_model, family.name)
            return adapter, _model_info(adapter, config, "table")
    for family in _REGISTRY.values():
        if family.probe is not None and family.probe(base_model):
            try:
                adapter = _as_adapter(family.name, family.make(base_model, config))
                check_paths(adapter, base_model, family.name)
                return adapter, _model_info(adapter, config, "structure")
            except InterpError as err:
                raise InterpError(
                    f"{type(base_model).__name__} (model_type={model_type!r}) looks like the {family.name} "
                    f"family but does not fit its table ({err}). {_how_to_add()}"
                ) from None
    raise InterpError(
        f"unsupported architecture {type(base_model).__name__} (model_type={model_type!r}): no table for "
        f"this model_type and its module tree matches none of the families {', '.join(_REGISTRY)}. "
        + _how_to_add()
    )


def check_paths(adapter: Adapter, base_model: nn.Module, name: str) -> None:
    """Every module path the adapter names exists (checked on the first and last block)."""
    from interp.adapters.paths import missing_paths

    missing = missing_paths(adapter, base_model)
    if missing:
        raise InterpError(
            f"family {name!r}: its table names module {missing[0]!r}, which {type(base_model).__name__} "
            f"does not have ({len(missing)} missing in all); fix the path (relative to model.base_model)"
        )
