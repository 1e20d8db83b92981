"""Llama-like trees with LayerNorms and biases: StableLM, Starcoder2, Cohere."""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.llama import architecture
from interp.adapters.spec import Adapter, Proj

_B = "layers.{l}"


def stablelm(base: object, cfg: object) -> Adapter:
    """StableLM: LayerNorm, partial rotary, optional q/k LayerNorm per head, optional parallel residual
    (both sublayers then read `input_layernorm`)."""
    parallel = bool(getattr(cfg, "use_parallel_residual", False))
    changes: dict[str, object] = dict(residual="parallel", mlp_norm=None) if parallel else {}
    qk = bool(getattr(cfg, "qk_layernorm", False))
    changes.update(
        q_norm="layers.{l}.self_attn.q_layernorm" if qk else None,
        k_norm="layers.{l}.self_attn.k_layernorm" if qk else None,
    )
    return from_architecture("stablelm", architecture(base, **changes))


def starcoder2(base: object, cfg: object) -> Adapter:
    """Starcoder2: LayerNorm, biases, grouped-query attention, plain MLP c_fc -> c_proj."""
    arch = architecture(base, mlp_in=Proj(f"{_B}.mlp.c_fc"), mlp_gate=None, mlp_out=Proj(f"{_B}.mlp.c_proj"))
    return from_architecture("starcoder2", arch)


def cohere(base: object, cfg: object) -> Adapter:
    """Cohere (Command-R): one LayerNorm feeding attention and MLP in parallel; logits times logit_scale."""
    arch = architecture(
        base,
        residual="parallel",
        mlp_norm=None,
        logit_scale=float(getattr(cfg, "logit_scale", 1.0)),
    )
    return from_architecture("cohere", arch)
