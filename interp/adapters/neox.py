"""GPT-NeoX / Pythia: pre-norm, fused per-head-interleaved qkv, rotary; parallel or sequential residual."""

from __future__ import annotations

from interp.adapters.spec import Adapter, Direct, Fused, Pattern, Site, SumWithBase

_B = "layers.{l}"
ATTN_OUT = Site(f"{_B}.attention", "out")
_QKV = Site(f"{_B}.attention.query_key_value", "out")


def adapter(parallel_residual: bool) -> Adapter:
    resid_mid = (
        "GPT-NeoX with use_parallel_residual=True has no resid_mid: attention and MLP both read "
        "hook_resid_pre. Use hook_attn_out / hook_mlp_out instead."
        if parallel_residual
        else SumWithBase(ATTN_OUT, base=Site(_B, "in"), read=Site(f"{_B}.post_attention_layernorm", "in"))
    )
    return Adapter(
        family="gpt_neox",
        layers="layers",
        global_points={
            "hook_embed": Direct(Site("embed_in", "out")),
            "ln_final.hook_normalized": Direct(Site("final_layer_norm", "out")),
        },
        block_points={
            "hook_resid_pre": Direct(Site(_B, "in")),
            "attn.hook_q": Fused(_QKV, 0, "interleaved"),
            "attn.hook_k": Fused(_QKV, 1, "interleaved"),
            "attn.hook_v": Fused(_QKV, 2, "interleaved"),
            "attn.hook_pattern": Pattern(f"{_B}.attention"),
            "attn.hook_z": Direct(Site(f"{_B}.attention.dense", "in"), heads="q"),
            "hook_attn_out": Direct(ATTN_OUT),
            "hook_resid_mid": resid_mid,
            "mlp.hook_pre": Direct(Site(f"{_B}.mlp.dense_h_to_4h", "out")),
            "mlp.hook_post": Direct(Site(f"{_B}.mlp.dense_4h_to_h", "in")),
            "hook_mlp_out": Direct(Site(f"{_B}.mlp", "out")),
            "hook_resid_post": Direct(Site(_B, "out")),
        },
        final_norm="final_layer_norm",
    )
