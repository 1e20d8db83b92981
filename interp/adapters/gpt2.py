"""GPT-2 (GPT2Model / GPT2LMHeadModel): pre-norm, fused qkv (Conv1D), learned positions."""

from __future__ import annotations

from interp.adapters.spec import Adapter, Direct, Fused, Pattern, Site, SumWithBase

_B = "h.{l}"
ATTN_OUT = Site(f"{_B}.attn", "out")

ADAPTER = Adapter(
    family="gpt2",
    layers="h",
    global_points={
        "hook_embed": Direct(Site("wte", "out")),
        "hook_pos_embed": Direct(Site("wpe", "out")),
        "ln_final.hook_normalized": Direct(Site("ln_f", "out")),
    },
    block_points={
        "hook_resid_pre": Direct(Site(_B, "in")),
        "attn.hook_q": Fused(Site(f"{_B}.attn.c_attn", "out"), 0, "blocked"),
        "attn.hook_k": Fused(Site(f"{_B}.attn.c_attn", "out"), 1, "blocked"),
        "attn.hook_v": Fused(Site(f"{_B}.attn.c_attn", "out"), 2, "blocked"),
        "attn.hook_pattern": Pattern(f"{_B}.attn"),
        "attn.hook_z": Direct(Site(f"{_B}.attn.c_proj", "in"), heads="q"),
        "hook_attn_out": Direct(ATTN_OUT),
        "hook_resid_mid": SumWithBase(ATTN_OUT, base=Site(_B, "in"), read=Site(f"{_B}.ln_2", "in")),
        "mlp.hook_pre": Direct(Site(f"{_B}.mlp.c_fc", "out")),
        "mlp.hook_post": Direct(Site(f"{_B}.mlp.c_proj", "in")),
        "hook_mlp_out": Direct(Site(f"{_B}.mlp", "out")),
        "hook_resid_post": Direct(Site(_B, "out")),
    },
    final_norm="ln_f",
)
