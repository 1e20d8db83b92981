"""GPT-Neo: the GPT-2 block with separate q/k/v, unscaled scores and alternating local/global attention.

Its attention code computes the probabilities itself (no attention-function interface), so the
pattern is read at the attention dropout's output, which is exactly the matrix applied to v.
"""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Direct, Proj, Site

_B = "h.{l}"
_A = f"{_B}.attn.attention"

ARCH = Architecture(
    layers="h",
    embed="wte",
    pos_embed="wpe",
    positional="learned",
    final_norm="ln_f",
    attn=f"{_B}.attn",
    q=Proj(f"{_A}.q_proj"),
    k=Proj(f"{_A}.k_proj"),
    v=Proj(f"{_A}.v_proj"),
    o=Proj(f"{_A}.out_proj"),
    mlp=f"{_B}.mlp",
    mlp_in=Proj(f"{_B}.mlp.c_fc"),
    mlp_gate=None,
    mlp_out=Proj(f"{_B}.mlp.c_proj"),
    attn_norm=f"{_B}.ln_1",
    mlp_norm=f"{_B}.ln_2",
)


def adapter(base: object, cfg: object) -> Adapter:
    return from_architecture(
        "gpt_neo", ARCH, **{"attn.hook_pattern": Direct(Site(f"{_A}.attn_dropout", "out"))}
    )
