"""Where a sweep patches: hook kinds, the grid of sites (layer x position x head), and their interventions.

A sweep over one hook kind is a `Grid`: named dims (`layer`, `position`, `head`), tick labels, and one
`Site` per cell in row-major order. `site_interventions` turns a site and a source activation into the
interventions that patch it, so every method (activation patching, mediation, tracing) shares one
definition of "patch layer 3, position 5, head 1".

Positions are absolute indices shared by the whole batch, or *named* positions given per example
(`{"IO": tensor([3, 5, ...]), ...}`, as a `TaskBatch` has), which patch a different index in each
example through `PatchWhere`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor

from interp.errors import InterpError, closest
from interp.hooked import HookedModel
from interp.interventions import Intervention, Patch
from interp.names import HookPoint

Per = Literal["layer", "position", "head", "position_head"]
PER: tuple[str, ...] = ("layer", "position", "head", "position_head")
Positions = Sequence[int] | Mapping[str, Tensor] | None


@dataclass(frozen=True)
class HookKind:
    """A per-block hook point: its short name, the name under `blocks.{l}.`, and its head axis
    (by default the one `interp.names` gives the kind: "q", "kv" or None)."""

    short: str
    suffix: str
    heads: Literal["q", "kv"] | None = None

    def __post_init__(self) -> None:
        if self.heads is None:
            object.__setattr__(self, "heads", self.point(0).heads)

    def point(self, layer: int) -> HookPoint:
        return HookPoint.block(layer, self.suffix)

    def hook(self, layer: int) -> str:
        return self.point(layer).name


KINDS: dict[str, HookKind] = {
    k.short: k
    for k in (
        HookKind("resid_pre", "hook_resid_pre"),
        HookKind("resid_mid", "hook_resid_mid"),
        HookKind("resid_post", "hook_resid_post"),
        HookKind("attn_out", "hook_attn_out"),
        HookKind("mlp_out", "hook_mlp_out"),
        HookKind("mlp_pre", "mlp.hook_pre"),
        HookKind("mlp_post", "mlp.hook_post"),
        HookKind("q", "attn.hook_q"),
        HookKind("k", "attn.hook_k"),
        HookKind("v", "attn.hook_v"),
        HookKind("z", "attn.hook_z"),
        HookKind("pattern", "attn.hook_pattern"),
    )
}


def hook_kind(name: str | HookKind) -> HookKind:
    """The kind named `name`: a short name (`"z"`, `"resid_pre"`) or the block-relative hook name.

    Example:
        >>> hook_kind("attn.hook_z").short
        'z'
    """
    if isinstance(name, HookKind):
        return name
    for kind in KINDS.values():
        if name in (kind.short, kind.suffix):
            return kind
    near = closest(name, list(KINDS))
    raise InterpError(
        f"unknown hook kind {name!r}"
        + (f" (did you mean {', '.join(near)}?)" if near else "")
        + f"; kinds: {', '.join(KINDS)}"
    )


@dataclass(frozen=True, eq=False)
class PatchWhere(Patch):
    """Patch `value` in only where `where` [batch, pos] is True: a different position in each example.

    Combined with `heads=` as usual. For `attn.hook_pattern`, `pos` is the query position.
    """

    where: Tensor = None  # type: ignore[assignment]  # [batch, pos] bool
    _tensor_fields: ClassVar[tuple[str, ...]] = ("value", "where")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.where is None:
            raise InterpError(f"PatchWhere on {self.hook} needs where= (a [batch, pos] bool tensor)")

    def _selection_mask(self, act: Tensor) -> Tensor | None:
        base = super()._selection_mask(act)
        pos_dim = self.point.pos_dim
        where = self.where.to(device=act.device, dtype=torch.bool)
        if where.ndim != 2 or where.shape[1] != act.shape[pos_dim] or where.shape[0] not in (1, act.shape[0]):
            raise InterpError(
                f"PatchWhere on {self.hook}: where has shape {tuple(where.shape)}, expected "
                f"[{act.shape[0]} or 1, {act.shape[pos_dim]}]"
            )
        shape = [where.shape[0]] + [1] * (act.ndim - 1)
        shape[pos_dim] = where.shape[1]
        mask = where.view(shape)
        return mask if base is None else mask & base


@dataclass(frozen=True)
class Site:
    """One cell of a sweep: a layer, and optionally one position (index or name) and one head."""

    layer: int
    position: int | str | None = None
    head: int | None = None

    def __str__(self) -> str:
        head = "" if self.head is None else f"H{self.head}"
        pos = "" if self.position is None else f"@{self.position}"
        return f"L{self.layer}{head}{pos}"


@dataclass(frozen=True)
class Grid:
    """The sites of one sweep, row-major over `dims`, with tick labels."""

    kind: HookKind
    per: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    sites: tuple[Site, ...]
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    named: Mapping[str, Tensor] | None = None  # name -> [batch] positions, when positions are named


def _head_count(model: HookedModel, kind: HookKind) -> int:
    return model.cfg.n_kv_heads if kind.heads == "kv" else model.cfg.n_heads


def check_layers(model: HookedModel, layers: Sequence[int] | None) -> list[int]:
    n = model.cfg.n_layers
    chosen = list(range(n)) if layers is None else [int(x) for x in layers]
    bad = [x for x in chosen if not 0 <= x < n]
    if bad:
        raise InterpError(f"layer {bad[0]} out of range: the model has {n} layers (0..{n - 1})")
    return chosen


def check_positions(positions: Positions, n_pos: int, batch: int) -> list[int] | dict[str, Tensor]:
    """Absolute positions (validated), or named per-example positions (validated, as [batch] tensors)."""
    if positions is None:
        return list(range(n_pos))
    if isinstance(positions, Mapping):
        named = {}
        for name, index in positions.items():
            index = torch.as_tensor(index).long().reshape(-1)
            if index.numel() == 1:
                index = index.expand(batch)
            if index.numel() != batch:
                raise InterpError(
                    f"named position {name!r} has {index.numel()} entries for a batch of {batch}"
                )
            if bool(((index < -n_pos) | (index >= n_pos)).any()):
                raise InterpError(f"named position {name!r} out of range for {n_pos} positions")
            named[name] = index % n_pos
        return named
    chosen = [int(p) for p in positions]
    bad = [p for p in chosen if not -n_pos <= p < n_pos]
    if bad:
        raise InterpError(f"position {bad[0]} out of range for inputs of {n_pos} positions (0..{n_pos - 1})")
    return [p % n_pos for p in chosen]


def grid(
    model: HookedModel,
    kind: str | HookKind,
    per: str,
    n_pos: int,
    batch: int,
    *,
    layers: Sequence[int] | None = None,
    positions: Positions = None,
    position_labels: Sequence[str] | None = None,
) -> Grid:
    """The sites of a sweep over `kind` with one cell per `per` unit.

    `per`: "layer" (whole activation), "position" (all heads at one position), "head" (one head, all
    positions), "position_head" (one head at one position).

    Example:
        >>> g = grid(model, "z", "head", n_pos=15, batch=8)
        >>> g.dims, g.shape
        (('layer', 'head'), (3, 4))
    """
    kind = hook_kind(kind)
    if per not in PER:
        raise InterpError(f"per must be one of {', '.join(PER)}, got {per!r}")
    if "head" in per and kind.heads is None:
        raise InterpError(f"per={per!r} needs a per-head hook kind (q, k, v, z, pattern), got {kind.short!r}")
    chosen_layers = check_layers(model, layers)
    pos = check_positions(positions, n_pos, batch)
    named = pos if isinstance(pos, dict) else None
    pos_keys: list[int | str] = list(pos)
    if named is not None:
        pos_ticks = tuple(pos_keys)
    else:
        all_ticks = (
            tuple(position_labels) if position_labels is not None else tuple(str(p) for p in range(n_pos))
        )
        if len(all_ticks) != n_pos:
            raise InterpError(f"{len(all_ticks)} position labels for {n_pos} positions")
        pos_ticks = tuple(all_ticks[p] for p in pos_keys)
    heads = list(range(_head_count(model, kind)))
    axes: dict[str, list] = {"layer": chosen_layers}
    if "position" in per:
        axes["position"] = pos_keys
    if "head" in per:
        axes["head"] = heads
    dims = tuple(axes)
    sites = tuple(
        Site(
            layer=values[0],
            position=values[dims.index("position")] if "position" in axes else None,
            head=values[dims.index("head")] if "head" in axes else None,
        )
        for values in itertools.product(*(axes[d] for d in dims))
    )
    labels = {"layer": tuple(str(x) for x in chosen_layers)}
    if "position" in axes:
        labels["position"] = pos_ticks
    return Grid(kind, per, dims, tuple(len(axes[d]) for d in dims), sites, labels, named)


def site_interventions(g: Grid, site: Site, value: Tensor) -> list[Intervention]:
    """The patch that puts `value` (the source activation at `site`'s hook, full shape) into `site`."""
    point = g.kind.point(site.layer)
    hook = point.name
    heads = None if site.head is None else (site.head,)
    if site.position is None:
        return [Patch(hook, value=value, heads=heads)]
    if isinstance(site.position, str):
        assert g.named is not None
        index = g.named[site.position]  # [batch]
        n_pos = value.shape[point.pos_dim]
        where = torch.nn.functional.one_hot(index, n_pos).bool()  # [batch, pos]
        return [PatchWhere(hook, value=value, heads=heads, where=where)]
    return [Patch(hook, value=value, heads=heads, positions=(site.position,))]
