"""Declarative description of where each canonical hook point lives in a Hugging Face module tree.

An adapter is a table: canonical hook kind -> a `Point`, the description of how to read (and write)
that activation from one or two PyTorch hooks. Paths are relative to the model's `base_model`
(e.g. `GPT2Model` inside `GPT2LMHeadModel`) and contain `{l}` for the layer index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from interp.adapters.layouts import Layout

IO = Literal["in", "out"]


@dataclass(frozen=True)
class Site:
    """A tensor flowing into (`in`: first positional arg or `hidden_states`) or out of a module.

    For tuple outputs, `out` means element 0.
    """

    path: str
    io: IO


@dataclass(frozen=True)
class Direct:
    """The activation is the tensor at `site`, optionally viewed per head as [batch, pos, head, d_head].

    `heads` is "q" (n_heads) or "kv" (n_kv_heads, differs under grouped-query attention), or None.
    """

    site: Site
    heads: Literal["q", "kv"] | None = None
    copy: bool = False  # read a copy: the model edits this tensor in place after the hook (Falcon)


@dataclass(frozen=True)
class Fused:
    """One part (q, k, v, or gate/up) of a fused projection's output; layouts in `interp.adapters.layouts`."""

    site: Site
    part: int
    layout: Layout


@dataclass(frozen=True)
class Scaled:
    """The activation is `factor * tensor at site` (what a block adds after a residual multiplier);
    writing `new` stores `new / factor` at the site."""

    site: Site
    factor: float


@dataclass(frozen=True)
class PerToken:
    """A tensor at `site` flattened to [batch * pos, n] (an MoE router's logits), viewed as
    [batch, pos, n] using the shape of the tensor at `like` (the MoE block's input)."""

    site: Site
    like: Site


@dataclass(frozen=True)
class SumWithBase:
    """The activation is `base + tensor at site`; writing `new` stores `new - base` at the site.

    Used for `hook_resid_mid` on pre-norm decoders, where resid_mid = resid_pre + attn_out and editing it
    must change what the block adds, not only the MLP's input. `read` is a site that holds the same
    value for free (e.g. the MLP norm's input), used when the hook only reads.
    """

    site: Site
    base: Site
    read: Site | None = None
    factor: float = 1.0  # value = base + factor * tensor at site (a residual multiplier)


@dataclass(frozen=True)
class DiffFromBase:
    """The activation is `tensor at site - base`; writing `new` stores `base + new` at the site.

    Used on post-norm models (BERT), where a sublayer's contribution to the residual stream is the
    difference of the normalised stream after and before it.
    """

    site: Site
    base: Site


@dataclass(frozen=True)
class Pattern:
    """Attention probabilities [batch, head, q_pos, k_pos], taken inside the attention function of `module`."""

    module: str


Point = Direct | Fused | Scaled | PerToken | SumWithBase | DiffFromBase | Pattern


@dataclass(frozen=True)
class Proj:
    """A linear map (`nn.Linear` or GPT-2's `Conv1D`) at `path` ({l} = layer index, relative to the
    base model). For a fused projection, `part` selects q/k/v (0/1/2) or gate/up (0/1) under `layout`."""

    path: str
    part: int | None = None
    layout: Layout | None = None


@dataclass(frozen=True)
class Architecture:
    """What a block computes, in module paths relative to the base model (`{l}` = layer index).

    A pre-norm sequential block computes
        mid  = pre + attn_scale * attn_post_norm(attn(attn_norm(pre)))
        post = mid + mlp_scale * mlp_post_norm(mlp(mlp_norm(mid)))
    and a parallel one (`residual="parallel"`)
        post = pre + attn_scale * attn(attn_norm(pre)) + mlp_scale * mlp(mlp_norm(pre))
    where a missing norm (None) is the identity, and under "parallel" `mlp_norm` None means the MLP
    reads `attn_norm`'s output (GPT-J, Phi, Cohere). `residual="post_norm"` is BERT:
        mid = attn_norm(pre + attn(pre)); post = mlp_norm(mid + mlp(mid)).
    Attention is softmax(q k^T * scale + mask/bias) v per head, with `n_kv_heads` (in `model.cfg`)
    key/value heads shared by groups of query heads; `q_norm`/`k_norm` are norms applied to the
    projected queries/keys before the scores (OLMo 2, Gemma 3, Qwen 3), `positional` says how positions
    enter. The token embedding is multiplied by `embed_scale` before block 0, and the logits are
    `lm_head(final_norm(resid)) * logit_scale`, then soft-capped when `logit_softcap` is set.
    """

    layers: str  # the ModuleList of blocks
    embed: str  # token embedding module
    final_norm: str | None
    attn: str  # attention module of block {l}
    q: Proj
    k: Proj
    v: Proj
    o: Proj
    mlp: str  # MLP (or MoE) module of block {l}
    mlp_in: Proj | None  # up / fc1 projection (None for MoE experts)
    mlp_gate: Proj | None  # gate projection of a gated MLP (None otherwise)
    mlp_out: Proj | None  # down / fc2 projection (None for MoE experts)
    attn_norm: str | None  # norm reading the residual stream before attention (ln1)
    mlp_norm: str | None  # norm reading the residual stream before the MLP (ln2)
    attn_post_norm: str | None = None  # norm on the attention output before it is added
    mlp_post_norm: str | None = None  # norm on the MLP output before it is added
    residual: Literal["sequential", "parallel", "post_norm"] = "sequential"
    attn_scale: float = 1.0  # residual multiplier on the attention output (Granite)
    mlp_scale: float = 1.0  # residual multiplier on the MLP output (Granite)
    embed_scale: float = 1.0  # multiplier applied to the embedding module's output (Granite)
    logit_scale: float = 1.0  # multiplier applied to the LM head's output (Granite: 1/logits_scaling; Cohere)
    logit_softcap: float | None = None  # logits = cap * tanh(logits / cap) after the scale (Gemma 2)
    pos_embed: str | None = None  # learned position embedding module (None: rotary, ALiBi or none)
    positional: Literal["learned", "rotary", "alibi", "none"] = "rotary"
    q_norm: str | None = None
    k_norm: str | None = None
    router: str | None = None  # MoE router module of block {l}; its output[0] is the router logits
    attn_add: str | None = None  # module whose output is what attention adds, when not attn_post_norm/attn
    mlp_add: str | None = None  # module whose output is what the MLP adds, when not mlp_post_norm/mlp

    def attn_contribution(self) -> str:
        """The module whose output (times `attn_scale`) is added to the residual stream by attention."""
        return self.attn_add or self.attn_post_norm or self.attn

    def mlp_contribution(self) -> str:
        """The module whose output (times `mlp_scale`) is added to the residual stream by the MLP."""
        return self.mlp_add or self.mlp_post_norm or self.mlp


@dataclass(frozen=True)
class Adapter:
    """Where every canonical hook point lives for one architecture family.

    `global_points` are named as is (e.g. `hook_embed`); `block_points` get the `blocks.{l}.` prefix.
    A point mapped to a string instead of a `Point` is absent, the string saying why (shown in errors).
    """

    family: str
    layers: str  # path of the ModuleList of blocks, relative to base_model
    global_points: dict[str, Point | str]
    block_points: dict[str, Point | str]
    final_norm: str | None = None  # path of the final norm (for the logit lens), relative to base_model
    arch: Architecture | None = None  # the block's computation and weight locations
    n_kv_heads: int | None = None  # overrides the config's key/value head count (multi-query layouts)
