"""Canonical names as values, parsed in one place: hook points and circuit components.

A `HookPoint` is a hook name (`blocks.3.attn.hook_z`, `hook_embed`, `ln_final.hook_normalized`) split
into its block index and kind, with the axes of the activation there read off one table, `AXES`
(DESIGN.md's hook table; `interp.adapters` says where each kind lives in a module tree, this says
what shape it has). A `Component` is a circuit node name (`embed`, `L{l}.H{h}`, `MLP{l}`, `logits`,
`L{l}.{site}.F{i}`, `L{l}.{site}.err`), shared by `circuits.graph` and the viewer.

    >>> z = HookPoint("blocks.3.attn.hook_z")
    >>> z.layer, z.kind, z.head_dim, z.pos_dim
    (3, 'attn.hook_z', 2, 1)
    >>> Component.parse("L1.H3").hook, str(Component.mlp(2))
    (HookPoint('blocks.1.attn.hook_z'), 'MLP2')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from interp.errors import InterpError

_RESID = ("batch", "pos", "d_model")
_PER_HEAD = ("batch", "pos", "head", "d_head")
_PER_KV_HEAD = ("batch", "pos", "kv_head", "d_head")
_SCORES = ("batch", "head", "q_pos", "k_pos")

EMBED_KINDS: dict[str, tuple[str, ...]] = {"hook_embed": _RESID, "hook_pos_embed": _RESID}
"""Hook points before the first block, by name (learned position embeddings may have batch size 1)."""
BLOCK_KINDS: dict[str, tuple[str, ...]] = {
    "hook_resid_pre": _RESID,
    "attn.hook_q": _PER_HEAD,
    "attn.hook_k": _PER_KV_HEAD,  # kv_head: n_kv_heads of them under grouped-query attention
    "attn.hook_v": _PER_KV_HEAD,
    "attn.hook_attn_scores": _SCORES,  # TransformerLens's name; no adapter provides it (yet)
    "attn.hook_pattern": _SCORES,
    "attn.hook_z": _PER_HEAD,
    "hook_attn_out": _RESID,
    "hook_resid_mid": _RESID,
    "mlp.hook_router_logits": ("batch", "pos", "expert"),
    "mlp.hook_pre": ("batch", "pos", "d_mlp"),
    "mlp.hook_post": ("batch", "pos", "d_mlp"),
    "hook_mlp_out": _RESID,
    "hook_resid_post": _RESID,
}
"""Hook points of every block, by kind (the name after `blocks.{l}.`), in forward order."""
FINAL_KINDS: dict[str, tuple[str, ...]] = {"ln_final.hook_normalized": _RESID}
"""Hook points after the last block, by name."""
AXES: dict[str, tuple[str, ...]] = {**EMBED_KINDS, **BLOCK_KINDS, **FINAL_KINDS}
"""Kind -> axes of its activation. A kind not listed (a family's extra point) is [batch, pos, ...]."""

_NAME = re.compile(r"(?:blocks\.(?P<layer>0|[1-9]\d*)\.)?(?P<kind>(?:[A-Za-z_]\w*\.)*hook_\w+)")
_POSITION_AXES = ("pos", "q_pos", "k_pos")
_ORDER = {kind: i for i, kind in enumerate(BLOCK_KINDS)}
_GLOBAL_KINDS = {**EMBED_KINDS, **FINAL_KINDS}


class _Dims(Protocol):
    n_heads: int
    n_kv_heads: int


def _split(name: object) -> tuple[int | None, str] | None:
    m = _NAME.fullmatch(name) if isinstance(name, str) else None
    if m is None or m["kind"].startswith("blocks."):
        return None
    return (None if m["layer"] is None else int(m["layer"])), m["kind"]


@dataclass(frozen=True)
class HookPoint:
    """A hook name as a value: `layer` (None for global points), `kind`, and the axes of its activation.

    Batch is always dim 0. Per-head points have a head axis (`head_dim`); attention patterns have two
    position axes (query, then key), the rest one. Build from the name, or with `HookPoint.block`:

        >>> HookPoint("blocks.0.attn.hook_pattern").pos_dims, HookPoint.block(1, "hook_mlp_out").name
        ((2, 3), 'blocks.1.hook_mlp_out')
    """

    name: str
    layer: int | None = field(init=False, repr=False, compare=False)
    kind: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = _split(self.name)
        if parts is None:
            raise InterpError(
                f"{self.name!r} is not a hook name: expected blocks.<layer>.<kind> such as "
                "'blocks.0.attn.hook_z' (layer a whole number) or a global name such as 'hook_embed' "
                "(model.hook_names() lists a model's names)"
            )
        object.__setattr__(self, "layer", parts[0])
        object.__setattr__(self, "kind", parts[1])

    @classmethod
    def parse(cls, name: str | HookPoint) -> HookPoint:
        """The hook point named `name` (an `InterpError` saying the expected form if it is malformed)."""
        return name if isinstance(name, HookPoint) else cls(name)

    @classmethod
    def try_parse(cls, name: object) -> HookPoint | None:
        """The hook point named `name`, or None when `name` is not a well-formed hook name."""
        return cls(name) if _split(name) is not None else None  # type: ignore[arg-type]

    @classmethod
    def block(cls, layer: int, kind: str) -> HookPoint:
        """`blocks.{layer}.{kind}`."""
        return cls(f"blocks.{int(layer)}.{kind}")

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"HookPoint({self.name!r})"

    # -- axes ------------------------------------------------------------------------------------
    @property
    def axes(self) -> tuple[str, ...] | None:
        """Names of the activation's axes (`AXES`), or None for a kind the table does not list."""
        return (_GLOBAL_KINDS if self.layer is None else BLOCK_KINDS).get(self.kind)

    @property
    def heads(self) -> Literal["q", "kv"] | None:
        """Which heads the head axis counts: "q" (n_heads), "kv" (n_kv_heads), or None (no head axis)."""
        axes = self.axes or ()
        return "q" if "head" in axes else "kv" if "kv_head" in axes else None

    @property
    def head_dim(self) -> int | None:
        """The head axis (2 for q/k/v/z, 1 for patterns), or None."""
        axes = self.axes or ()
        return next((i for i, a in enumerate(axes) if a in ("head", "kv_head")), None)

    @property
    def pos_dims(self) -> tuple[int, ...]:
        """The position axes: (1,) for most points, (2, 3) (query, key) for attention patterns."""
        dims = tuple(i for i, a in enumerate(self.axes or ()) if a in _POSITION_AXES)
        return dims or (1,)

    @property
    def pos_dim(self) -> int:
        """The position axis a per-position selection acts on (the query position for patterns)."""
        return self.pos_dims[0]

    @property
    def per_token(self) -> bool:
        """Whether the activation is one vector (or one per head) per token, not a position x position map."""
        return len(self.pos_dims) == 1

    def head_count(self, dims: _Dims) -> int:
        """Size of the head axis for a model with dimensions `dims` (`model.cfg`)."""
        if self.heads is None:
            raise InterpError(f"{self.name} has no head axis (per-head points: attn.hook_q/k/v/z/pattern)")
        return dims.n_kv_heads if self.heads == "kv" else dims.n_heads

    def check_heads(self, heads: Sequence[int], dims: _Dims) -> None:
        """Raise `InterpError` unless every index in `heads` names a head of this point (negative
        indices count from the end) in a model with dimensions `dims`."""
        n = self.head_count(dims)
        bad = [h for h in heads if not -n <= h < n]
        if bad:
            raise InterpError(
                f"head index {bad[0]} out of range for {self.name}: the model has {n} heads (0..{n - 1})"
            )

    # -- place in the forward pass ---------------------------------------------------------------
    @property
    def is_embedding(self) -> bool:
        """Whether the point lies before the first block (token or position embeddings)."""
        return self.layer is None and self.kind in EMBED_KINDS

    @property
    def order(self) -> tuple[float, int]:
        """Sort key in forward order: embeddings, each block's kinds in `BLOCK_KINDS` order (unlisted
        kinds last in their block), then points after the last block."""
        if self.layer is not None:
            return float(self.layer), _ORDER.get(self.kind, len(_ORDER))
        return (-1.0 if self.is_embedding else float("inf")), 0

    @property
    def feature_site(self) -> str | None:
        """The SAE site (`resid`, `attn`, `mlp`) whose feature nodes read this point, or None."""
        site = _SITE_OF_KIND.get(self.kind)
        return site if self.layer is not None else None


# -- circuit components ----------------------------------------------------------------------------
ComponentKind = Literal["embed", "head", "mlp", "logits", "feature", "error"]
SITES: dict[str, str] = {"resid": "hook_resid_post", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}
"""SAE site of feature/error nodes -> the block hook kind its SAE reads and rewrites."""
_SITE_OF_KIND = {kind: site for site, kind in SITES.items()}
_SITE_DEPTH = {"attn": 1.5, "mlp": 2.5, "resid": 2.75}  # just after the sublayer the SAE reads
_HEAD = re.compile(r"^L(\d+)\.H(\d+)$")
_MLP = re.compile(r"^MLP(\d+)$")
_FEATURE = re.compile(r"^L(\d+)\.(resid|attn|mlp)\.(?:F(\d+)|(err))$")


@dataclass(frozen=True)
class Component:
    """One circuit node. Build with the class methods (`Component.attn_head(1, 3)`) or `parse("L1.H3")`.

    | kind | name | meaning |
    |---|---|---|
    | embed | `embed` | token (+ position) embedding: the residual stream before block 0 |
    | head | `L{l}.H{h}` | head h of block l (its slice of `attn.hook_z`) |
    | mlp | `MLP{l}` | the MLP of block l (`hook_mlp_out`) |
    | logits | `logits` | the final norm + unembedding |
    | feature | `L{l}.{site}.F{i}` | latent i of the SAE at `site` (`resid`, `attn` or `mlp`) of block l |
    | error | `L{l}.{site}.err` | what that SAE fails to reconstruct |
    """

    kind: ComponentKind
    layer: int | None = None
    head: int | None = None
    site: str | None = None  # SAE site of feature/error nodes
    index: int | None = None  # SAE latent of feature nodes

    @classmethod
    def embed(cls) -> Component:
        return cls("embed")

    @classmethod
    def logits(cls) -> Component:
        return cls("logits")

    @classmethod
    def attn_head(cls, layer: int, head: int) -> Component:
        return cls("head", layer, head)

    @classmethod
    def mlp(cls, layer: int) -> Component:
        return cls("mlp", layer)

    @classmethod
    def feature(cls, layer: int, site: str, index: int) -> Component:
        return cls("feature", layer, site=site, index=index)

    @classmethod
    def error(cls, layer: int, site: str) -> Component:
        return cls("error", layer, site=site)

    @classmethod
    def parse(cls, name: str | Component) -> Component:
        """The component named `name` (see the class docstring); one of this class passes through."""
        if isinstance(name, cls):
            return name
        name = str(name).strip()
        if name in ("embed", "logits"):
            return cls(name)
        if m := _HEAD.match(name):
            return cls.attn_head(int(m[1]), int(m[2]))
        if m := _MLP.match(name):
            return cls.mlp(int(m[1]))
        if m := _FEATURE.match(name):
            return cls.error(int(m[1]), m[2]) if m[4] else cls.feature(int(m[1]), m[2], int(m[3]))
        raise InterpError(
            f"cannot parse node name {name!r}: expected embed, logits, L<layer>.H<head>, MLP<layer>, "
            "L<layer>.<resid|attn|mlp>.F<index> or L<layer>.<resid|attn|mlp>.err"
        )

    @property
    def name(self) -> str:
        if self.kind in ("embed", "logits"):
            return self.kind
        if self.kind == "head":
            return f"L{self.layer}.H{self.head}"
        if self.kind == "mlp":
            return f"MLP{self.layer}"
        if self.kind == "feature":
            return f"L{self.layer}.{self.site}.F{self.index}"
        return f"L{self.layer}.{self.site}.err"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def hook(self) -> HookPoint | None:
        """Where the component writes: `attn.hook_z` (at `head`) for a head, `hook_mlp_out` for an MLP,
        its SAE's hook for a feature or error node; None for embed and logits."""
        if self.kind == "head":
            return HookPoint.block(self.layer, "attn.hook_z")  # type: ignore[arg-type]
        if self.kind == "mlp":
            return HookPoint.block(self.layer, "hook_mlp_out")  # type: ignore[arg-type]
        if self.kind in ("feature", "error"):
            return HookPoint.block(self.layer, SITES[self.site or "resid"])  # type: ignore[arg-type]
        return None

    @property
    def depth(self) -> float:
        """Position along the residual stream, for layouts and ordering.

        embed = 0, heads of block l = 2l + 1, MLP l = 2l + 2, logits = +inf-like (a large number);
        SAE nodes sit just after the sublayer they read (attn: heads, mlp and resid: the MLP).
        """
        if self.kind == "embed":
            return 0.0
        if self.kind == "logits":
            return 1e9
        assert self.layer is not None
        if self.kind == "head":
            return 2 * self.layer + 1
        if self.kind == "mlp":
            return 2 * self.layer + 2
        return 2 * self.layer + _SITE_DEPTH[self.site or "resid"]

    def sort_key(self) -> tuple:
        """Order along the residual stream, then head / site / index: `sorted(nodes, key=...sort_key)`."""
        return (
            self.depth,
            self.head if self.head is not None else -1,
            self.site or "",
            self.index if self.index is not None else -1,
        )
