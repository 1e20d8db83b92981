"""GPT-J: one LayerNorm feeding attention and MLP in parallel, separate q/k/v (no bias), partial rotary."""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Proj

_B = "h.{l}"
_A = f"{_B}.attn"

ARCH = Architecture(
    layers="h",
    embed="wte",
    final_norm="ln_f",
    attn=_A,
    q=Proj(f"{_A}.q_proj"),
    k=Proj(f"{_A}.k_proj"),
    v=Proj(f"{_A}.v_proj"),
    o=Proj(f"{_A}.out_proj"),
    mlp=f"{_B}.mlp",
    mlp_in=Proj(f"{_B}.mlp.fc_in"),
    mlp_gate=None,
    mlp_out=Proj(f"{_B}.mlp.fc_out"),
    attn_norm=f"{_B}.ln_1",
    mlp_norm=None,
    residual="parallel",
)


def adapter(base: object, cfg: object) -> Adapter:
    return from_architecture("gptj", ARCH)
