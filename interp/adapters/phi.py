"""Phi (1, 1.5, 2): one LayerNorm feeding attention and MLP in parallel, separate q/k/v, partial rotary.
Phi-3: sequential RMSNorm block with fused qkv [q | k | v] and fused gate/up [gate | up]."""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Proj

_B = "layers.{l}"
_A = f"{_B}.self_attn"


def phi(base: object, cfg: object) -> Adapter:
    qk_norm = bool(getattr(cfg, "qk_layernorm", False))
    arch = Architecture(
        layers="layers",
        embed="embed_tokens",
        final_norm="final_layernorm",
        attn=_A,
        q=Proj(f"{_A}.q_proj"),
        k=Proj(f"{_A}.k_proj"),
        v=Proj(f"{_A}.v_proj"),
        o=Proj(f"{_A}.dense"),
        mlp=f"{_B}.mlp",
        mlp_in=Proj(f"{_B}.mlp.fc1"),
        mlp_gate=None,
        mlp_out=Proj(f"{_B}.mlp.fc2"),
        attn_norm=f"{_B}.input_layernorm",
        mlp_norm=None,
        residual="parallel",
        q_norm=f"{_A}.q_layernorm" if qk_norm else None,
        k_norm=f"{_A}.k_layernorm" if qk_norm else None,
    )
    return from_architecture("phi", arch)


def phi3(base: object, cfg: object) -> Adapter:
    qkv = f"{_A}.qkv_proj"
    gate_up = f"{_B}.mlp.gate_up_proj"
    arch = Architecture(
        layers="layers",
        embed="embed_tokens",
        final_norm="norm",
        attn=_A,
        q=Proj(qkv, 0, "blocked"),
        k=Proj(qkv, 1, "blocked"),
        v=Proj(qkv, 2, "blocked"),
        o=Proj(f"{_A}.o_proj"),
        mlp=f"{_B}.mlp",
        mlp_in=Proj(gate_up, 1, "halves"),
        mlp_gate=Proj(gate_up, 0, "halves"),
        mlp_out=Proj(f"{_B}.mlp.down_proj"),
        attn_norm=f"{_B}.input_layernorm",
        mlp_norm=f"{_B}.post_attention_layernorm",
    )
    return from_architecture("phi3", arch)
