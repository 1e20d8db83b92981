"""Declarative description of where each canonical hook point lives in a Hugging Face module tree.

An adapter is a table: canonical hook kind -> a `Point`, the description of how to read (and write)
that activation from one or two PyTorch hooks. Paths are relative to the model's `base_model`
(e.g. `GPT2Model` inside `GPT2LMHeadModel`) and contain `{l}` for the layer index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


@dataclass(frozen=True)
class Fused:
    """One of q, k, v from a fused projection's output.

    layout "blocked": last dim is [q | k | v], each n_heads * d_head (GPT-2's c_attn).
    layout "interleaved": last dim viewed as [head, 3 * d_head], each head holding its q, k, v (GPT-NeoX).
    """

    site: Site
    part: int
    layout: Literal["blocked", "interleaved"]


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


Point = Direct | Fused | SumWithBase | DiffFromBase | Pattern


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
