"""GPT-NeoX / Pythia: pre-norm, fused per-head-interleaved qkv, rotary; parallel or sequential residual."""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Proj

_B = "layers.{l}"
_QKV = f"{_B}.attention.query_key_value"


def adapter(base: object, cfg: object) -> Adapter:
    parallel = bool(getattr(cfg, "use_parallel_residual", False))
    arch = Architecture(
        layers="layers",
        embed="embed_in",
        final_norm="final_layer_norm",
        attn=f"{_B}.attention",
        q=Proj(_QKV, 0, "interleaved"),
        k=Proj(_QKV, 1, "interleaved"),
        v=Proj(_QKV, 2, "interleaved"),
        o=Proj(f"{_B}.attention.dense"),
        mlp=f"{_B}.mlp",
        mlp_in=Proj(f"{_B}.mlp.dense_h_to_4h"),
        mlp_gate=None,
        mlp_out=Proj(f"{_B}.mlp.dense_4h_to_h"),
        attn_norm=f"{_B}.input_layernorm",
        mlp_norm=f"{_B}.post_attention_layernorm",
        residual="parallel" if parallel else "sequential",
    )
    return from_architecture("gpt_neox", arch)
