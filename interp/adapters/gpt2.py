"""GPT-2 (and GPT-BigCode / StarCoder 1): pre-norm, fused qkv [q | k | v], learned positions."""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Proj

_A = "h.{l}.attn"
_QKV = f"{_A}.c_attn"

ARCH = Architecture(
    layers="h",
    embed="wte",
    pos_embed="wpe",
    positional="learned",
    final_norm="ln_f",
    attn=_A,
    q=Proj(_QKV, 0, "blocked"),
    k=Proj(_QKV, 1, "blocked"),
    v=Proj(_QKV, 2, "blocked"),
    o=Proj(f"{_A}.c_proj"),
    mlp="h.{l}.mlp",
    mlp_in=Proj("h.{l}.mlp.c_fc"),
    mlp_gate=None,
    mlp_out=Proj("h.{l}.mlp.c_proj"),
    attn_norm="h.{l}.ln_1",
    mlp_norm="h.{l}.ln_2",
)
ADAPTER = from_architecture("gpt2", ARCH)


def adapter(base: object, cfg: object) -> Adapter:
    return ADAPTER


def bigcode(base: object, cfg: object) -> Adapter:
    """GPT-BigCode: the GPT-2 tree with nn.Linear and multi-query attention (one key/value head)."""
    return from_architecture("gpt_bigcode", ARCH, n_kv_heads=1 if getattr(cfg, "multi_query", True) else None)
