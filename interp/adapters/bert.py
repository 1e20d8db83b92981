"""BERT-style encoders (BERT, MiniLM): post-norm, so sublayer outputs are differences of the stream.

In a post-norm block resid_mid = LN(resid_pre + attn) and resid_post = LN(resid_mid + mlp); the
canonical `hook_attn_out` / `hook_mlp_out` are defined as what each sublayer adds to the (normalised)
residual stream, `resid_mid - resid_pre` and `resid_post - resid_mid`, so the block identity
resid_pre + attn_out + mlp_out == resid_post holds as for pre-norm models.
"""

from __future__ import annotations

from interp.adapters.spec import Adapter, Architecture, DiffFromBase, Direct, Pattern, Proj, Site

_B = "encoder.layer.{l}"
_MID = Site(f"{_B}.attention", "out")

ADAPTER = Adapter(
    family="bert",
    layers="encoder.layer",
    global_points={
        "hook_embed": Direct(Site("embeddings.word_embeddings", "out")),
        "hook_pos_embed": Direct(Site("embeddings.position_embeddings", "out")),
        "ln_final.hook_normalized": "BERT is post-norm: it has no final norm (use blocks.{L-1}.hook_resid_post).",
    },
    block_points={
        "hook_resid_pre": Direct(Site(_B, "in")),
        "attn.hook_q": Direct(Site(f"{_B}.attention.self.query", "out"), heads="q"),
        "attn.hook_k": Direct(Site(f"{_B}.attention.self.key", "out"), heads="kv"),
        "attn.hook_v": Direct(Site(f"{_B}.attention.self.value", "out"), heads="kv"),
        "attn.hook_pattern": Pattern(f"{_B}.attention.self"),
        "attn.hook_z": Direct(Site(f"{_B}.attention.output.dense", "in"), heads="q"),
        "hook_attn_out": DiffFromBase(_MID, base=Site(_B, "in")),
        "hook_resid_mid": Direct(_MID),
        "mlp.hook_pre": Direct(Site(f"{_B}.intermediate.dense", "out")),
        "mlp.hook_post": Direct(Site(f"{_B}.output.dense", "in")),
        "hook_mlp_out": DiffFromBase(Site(_B, "out"), base=_MID),
        "hook_resid_post": Direct(Site(_B, "out")),
    },
    final_norm=None,
    arch=Architecture(
        layers="encoder.layer",
        embed="embeddings.word_embeddings",
        pos_embed="embeddings.position_embeddings",
        positional="learned",
        final_norm=None,
        attn=f"{_B}.attention",
        q=Proj(f"{_B}.attention.self.query"),
        k=Proj(f"{_B}.attention.self.key"),
        v=Proj(f"{_B}.attention.self.value"),
        o=Proj(f"{_B}.attention.output.dense"),
        mlp=f"{_B}.intermediate",
        mlp_in=Proj(f"{_B}.intermediate.dense"),
        mlp_gate=None,
        mlp_out=Proj(f"{_B}.output.dense"),
        attn_norm=f"{_B}.attention.output.LayerNorm",
        mlp_norm=f"{_B}.output.LayerNorm",
        residual="post_norm",
    ),
)


def adapter(base: object, cfg: object) -> Adapter:
    return ADAPTER
