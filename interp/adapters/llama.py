"""Llama-style decoders (Llama, Mistral, Qwen2/3, Gemma, Gemma 2/3): RMSNorm, separate q/k/v, gated MLP.

Gemma 2/3 add a norm after each sublayer (`post_attention_layernorm` on the attention output,
`post_feedforward_layernorm` on the MLP output); there the sublayer's contribution to the residual
stream is that norm's output, and the MLP's input norm is `pre_feedforward_layernorm`.
"""

from __future__ import annotations

from interp.adapters.spec import Adapter, Direct, Pattern, Site, SumWithBase

_B = "layers.{l}"


def adapter(sandwich_norms: bool) -> Adapter:
    if sandwich_norms:
        attn_out = Site(f"{_B}.post_attention_layernorm", "out")
        mlp_out = Site(f"{_B}.post_feedforward_layernorm", "out")
        mlp_in_norm = Site(f"{_B}.pre_feedforward_layernorm", "in")
    else:
        attn_out = Site(f"{_B}.self_attn", "out")
        mlp_out = Site(f"{_B}.mlp", "out")
        mlp_in_norm = Site(f"{_B}.post_attention_layernorm", "in")
    return Adapter(
        family="llama",
        layers="layers",
        global_points={
            "hook_embed": Direct(Site("embed_tokens", "out")),
            "ln_final.hook_normalized": Direct(Site("norm", "out")),
        },
        block_points={
            "hook_resid_pre": Direct(Site(_B, "in")),
            "attn.hook_q": Direct(Site(f"{_B}.self_attn.q_proj", "out"), heads="q"),
            "attn.hook_k": Direct(Site(f"{_B}.self_attn.k_proj", "out"), heads="kv"),
            "attn.hook_v": Direct(Site(f"{_B}.self_attn.v_proj", "out"), heads="kv"),
            "attn.hook_pattern": Pattern(f"{_B}.self_attn"),
            "attn.hook_z": Direct(Site(f"{_B}.self_attn.o_proj", "in"), heads="q"),
            "hook_attn_out": Direct(attn_out),
            "hook_resid_mid": SumWithBase(attn_out, base=Site(_B, "in"), read=mlp_in_norm),
            "mlp.hook_pre": Direct(Site(f"{_B}.mlp.gate_proj", "out")),
            "mlp.hook_post": Direct(Site(f"{_B}.mlp.down_proj", "in")),
            "hook_mlp_out": Direct(mlp_out),
            "hook_resid_post": Direct(Site(_B, "out")),
        },
        final_norm="norm",
    )
