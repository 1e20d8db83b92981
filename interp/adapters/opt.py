"""OPT: pre-norm (except OPT-350m, refused), separate q/k/v with biases, learned positions (offset 2).

The MLP runs on [batch * pos, d_model] (OPT flattens the tokens first), so its points are viewed
back to [batch, pos, ...] from the block input's shape.
"""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, PerToken, Proj, Site, SumWithBase
from interp.errors import InterpError

_B = "decoder.layers.{l}"
_A = f"{_B}.self_attn"


def adapter(base: object, cfg: object) -> Adapter:
    if not getattr(cfg, "do_layer_norm_before", True):
        raise InterpError(
            "OPT with do_layer_norm_before=False (OPT-350m) normalises after each sublayer and projects "
            "embeddings in and out; it has no table yet: register one with interp.adapters.register"
        )
    if getattr(cfg, "word_embed_proj_dim", cfg.hidden_size) != cfg.hidden_size:
        raise InterpError("OPT with word_embed_proj_dim != hidden_size has no table yet: register one")
    arch = Architecture(
        layers="decoder.layers",
        embed="decoder.embed_tokens",
        pos_embed="decoder.embed_positions",
        positional="learned",
        final_norm="decoder.final_layer_norm",
        attn=_A,
        q=Proj(f"{_A}.q_proj"),
        k=Proj(f"{_A}.k_proj"),
        v=Proj(f"{_A}.v_proj"),
        o=Proj(f"{_A}.out_proj"),
        mlp=f"{_B}.fc2",  # OPT has no MLP module: fc1 -> activation -> fc2 inline in the block
        mlp_in=Proj(f"{_B}.fc1"),
        mlp_gate=None,
        mlp_out=Proj(f"{_B}.fc2"),
        attn_norm=f"{_B}.self_attn_layer_norm",
        mlp_norm=f"{_B}.final_layer_norm",
    )
    block_in = Site(_B, "in")
    return from_architecture(
        "opt",
        arch,
        **{
            "hook_resid_mid": SumWithBase(Site(_A, "out"), block_in),
            "mlp.hook_pre": PerToken(Site(f"{_B}.fc1", "out"), like=block_in),
            "mlp.hook_post": PerToken(Site(f"{_B}.fc2", "in"), like=block_in),
            "hook_mlp_out": PerToken(Site(f"{_B}.fc2", "out"), like=block_in),
        },
    )
