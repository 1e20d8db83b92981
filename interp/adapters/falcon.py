"""Falcon: fused qkv in three layouts, parallel (7B/40B/180B) or sequential residual, rotary or ALiBi.

- new decoder architecture (40B, 180B): grouped-query qkv [kv_head, group + 2, d_head], parallel,
  one or two input norms (`ln_attn`, `ln_mlp`);
- multi-query (7B): qkv [q heads | k | v], one key/value head;
- otherwise: qkv interleaved per head [head, 3, d_head].
In the parallel layouts Falcon adds the attention output *into* the MLP output tensor in place, so
`hook_mlp_out` is copied when read.
"""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Direct, Proj, Site
from interp.errors import InterpError

_B = "h.{l}"
_A = f"{_B}.self_attention"
_QKV = f"{_A}.query_key_value"


def adapter(base: object, cfg: object) -> Adapter:
    new, parallel = bool(cfg.new_decoder_architecture), bool(cfg.parallel_attn)
    if new and not parallel:
        raise InterpError(
            "Falcon with new_decoder_architecture=True and parallel_attn=False is not a valid layout"
        )
    if new:
        layout, n_kv = "grouped", int(cfg.num_kv_heads)
    elif cfg.multi_query:
        layout, n_kv = "blocked", 1
    else:
        layout, n_kv = "interleaved", int(cfg.num_attention_heads)
    two_norms = new and (cfg.num_ln_in_parallel_attn or 2) == 2
    arch = Architecture(
        layers="h",
        embed="word_embeddings",
        final_norm="ln_f",
        positional="alibi" if cfg.alibi else "rotary",
        attn=_A,
        q=Proj(_QKV, 0, layout),
        k=Proj(_QKV, 1, layout),
        v=Proj(_QKV, 2, layout),
        o=Proj(f"{_A}.dense"),
        mlp=f"{_B}.mlp",
        mlp_in=Proj(f"{_B}.mlp.dense_h_to_4h"),
        mlp_gate=None,
        mlp_out=Proj(f"{_B}.mlp.dense_4h_to_h"),
        attn_norm=f"{_B}.ln_attn" if two_norms else f"{_B}.input_layernorm",
        mlp_norm=f"{_B}.ln_mlp" if two_norms else (None if parallel else f"{_B}.post_attention_layernorm"),
        residual="parallel" if parallel or new else "sequential",
    )
    overrides = {}
    if parallel or new:
        overrides["hook_mlp_out"] = Direct(Site(f"{_B}.mlp", "out"), copy=True)
    return from_architecture("falcon", arch, n_kv_heads=n_kv, **overrides)
