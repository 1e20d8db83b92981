"""BLOOM: ALiBi, fused qkv interleaved per head, LayerNorm after the embedding.

BLOOM's attention and MLP modules add the residual themselves, so what each adds to the stream is
the output of its last projection (`dense`, `dense_4h_to_h`); the pattern is read at the attention
dropout's output (BLOOM computes the probabilities itself).
"""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Direct, Proj, Site
from interp.errors import InterpError

_B = "h.{l}"
_A = f"{_B}.self_attention"
_QKV = f"{_A}.query_key_value"


def adapter(base: object, cfg: object) -> Adapter:
    if getattr(cfg, "apply_residual_connection_post_layernorm", False):
        raise InterpError(
            "BLOOM with apply_residual_connection_post_layernorm=True carries the normalised stream as "
            "the residual; it has no table: register one with interp.adapters.register"
        )
    if getattr(cfg, "pretraining_tp", 1) > 1 and getattr(cfg, "slow_but_exact", False):
        raise InterpError(
            "BLOOM with slow_but_exact=True splits its projections by hand; set slow_but_exact=False"
        )
    arch = Architecture(
        layers="h",
        embed="word_embeddings",
        final_norm="ln_f",
        positional="alibi",
        attn=_A,
        q=Proj(_QKV, 0, "interleaved"),
        k=Proj(_QKV, 1, "interleaved"),
        v=Proj(_QKV, 2, "interleaved"),
        o=Proj(f"{_A}.dense"),
        mlp=f"{_B}.mlp",
        mlp_in=Proj(f"{_B}.mlp.dense_h_to_4h"),
        mlp_gate=None,
        mlp_out=Proj(f"{_B}.mlp.dense_4h_to_h"),
        attn_norm=f"{_B}.input_layernorm",
        mlp_norm=f"{_B}.post_attention_layernorm",
        attn_add=f"{_A}.dense",
        mlp_add=f"{_B}.mlp.dense_4h_to_h",
    )
    return from_architecture(
        "bloom", arch, **{"attn.hook_pattern": Direct(Site(f"{_A}.attention_dropout", "out"))}
    )
