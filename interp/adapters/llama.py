"""Llama-style decoders (Llama, Mistral, Qwen2/3, Gemma 1/2/3, OLMo, Granite, Mixtral): separate q/k/v,
gated MLP, RMSNorm or LayerNorm.

Gemma 2/3 add a norm after each sublayer (`post_attention_layernorm` on the attention output,
`post_feedforward_layernorm` on the MLP output); there the sublayer's contribution to the residual
stream is that norm's output, and the MLP's input norm is `pre_feedforward_layernorm`. OLMo 2 has the
post-sublayer norms and no input norms. Granite scales embeddings, sublayer outputs and logits.
"""

from __future__ import annotations

from interp.adapters.build import from_architecture
from interp.adapters.spec import Adapter, Architecture, Proj
from interp.errors import InterpError

_B = "layers.{l}"
_A = f"{_B}.self_attn"


def architecture(base: object, **changes: object) -> Architecture:
    """The Llama block, with `changes` (Architecture fields) applied."""
    block0 = base.get_submodule("layers")[0]
    has = lambda path: _has(block0, path)  # noqa: E731
    fields: dict[str, object] = dict(
        layers="layers",
        embed="embed_tokens",
        final_norm="norm",
        attn=_A,
        q=Proj(f"{_A}.q_proj"),
        k=Proj(f"{_A}.k_proj"),
        v=Proj(f"{_A}.v_proj"),
        o=Proj(f"{_A}.o_proj"),
        mlp=f"{_B}.mlp",
        mlp_in=Proj(f"{_B}.mlp.up_proj"),
        mlp_gate=Proj(f"{_B}.mlp.gate_proj"),
        mlp_out=Proj(f"{_B}.mlp.down_proj"),
        attn_norm=f"{_B}.input_layernorm",
        mlp_norm=f"{_B}.post_attention_layernorm",
        q_norm=f"{_A}.q_norm" if has("self_attn.q_norm") else None,
        k_norm=f"{_A}.k_norm" if has("self_attn.k_norm") else None,
    )
    if has("pre_feedforward_layernorm"):  # Gemma 2/3: sandwich norms
        fields.update(
            attn_post_norm=f"{_B}.post_attention_layernorm",
            mlp_norm=f"{_B}.pre_feedforward_layernorm",
            mlp_post_norm=f"{_B}.post_feedforward_layernorm",
        )
    cap = getattr(getattr(base, "config", None), "final_logit_softcapping", None)
    if cap:
        fields["logit_softcap"] = float(cap)
    fields.update(changes)
    return Architecture(**fields)


def _has(module: object, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def adapter(base: object, cfg: object) -> Adapter:
    return from_architecture("llama", architecture(base))


def olmo(base: object, cfg: object) -> Adapter:
    """OLMo: the Llama block with non-parametric LayerNorms; q/k/v optionally clipped after projection
    (`clip_qkv`), which hook_q/k/v see before clipping, so clipping models are refused."""
    if getattr(cfg, "clip_qkv", None) is not None:
        raise InterpError(
            "OLMo with clip_qkv clamps q/k/v inside attention after the projections, where no module "
            "boundary lets a hook read the clipped values; set config.clip_qkv=None or register a table"
        )
    return from_architecture("olmo", architecture(base))


def olmo2(base: object, cfg: object) -> Adapter:
    """OLMo 2: no input norms; RMSNorm on each sublayer's output before it is added."""
    arch = architecture(
        base,
        attn_norm=None,
        mlp_norm=None,
        attn_post_norm=f"{_B}.post_attention_layernorm",
        mlp_post_norm=f"{_B}.post_feedforward_layernorm",
    )
    return from_architecture("olmo2", arch)


def gemma3(base: object, cfg: object) -> Adapter:
    """Gemma 3 (text): sandwich norms, q/k norms, scaled embedding module, sliding and global layers."""
    return from_architecture("gemma3", architecture(base))


def granite(base: object, cfg: object) -> Adapter:
    """Granite: embeddings times `embedding_multiplier`, each sublayer's output times
    `residual_multiplier` before it is added, logits divided by `logits_scaling`."""
    residual = float(cfg.residual_multiplier)
    arch = architecture(
        base,
        attn_scale=residual,
        mlp_scale=residual,
        embed_scale=float(cfg.embedding_multiplier),
        logit_scale=1.0 / float(cfg.logits_scaling),
    )
    return from_architecture("granite", arch)


def mixtral(base: object, cfg: object) -> Adapter:
    """Mixtral-style sparse MoE: the MLP is a router plus fused experts; router logits are a hook point."""
    arch = architecture(base, mlp_in=None, mlp_gate=None, mlp_out=None, router=f"{_B}.mlp.gate")
    return from_architecture("mixtral", arch)
