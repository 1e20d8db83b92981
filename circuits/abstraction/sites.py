"""Where a high-level variable lives: locations, alignments, and the interchange intervention itself.

A `Location` is a hook, a (named) position and optionally a head: a hashable, printable value such
as `blocks.0.attn.hook_z[H1]@END`. An `Alignment` maps a variable to a location and a subspace
(orthonormal basis rows, or the whole vector). `Interchange` is an `interp.Intervention` that sets
the aligned subspace of the running activation to the source's value:

    new = act + ((source - act) @ basis.T) @ basis      at the chosen (example, position) pairs

Because it edits the *running* activation, interchanges at several sites compose like the
high-level multi-source interchange, and it works inside `HookedModel.run_batched` sweeps.

    >>> loc = Location("blocks.1.hook_resid_post", "END")
    >>> Location.parse(str(loc)) == loc
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from interp.errors import InterpError, ShapeError
from interp.hooked import HookedModel
from interp.interventions import Intervention
from interp.names import HookPoint

_LABEL = re.compile(r"^(?P<hook>[^\[@]+)(\[H(?P<head>-?\d+)\])?@(?P<pos>.+)$")


@dataclass(frozen=True)
class Location:
    """A hook, a position (a task's position name such as `"END"`, or an index) and optionally a head."""

    hook: str
    position: str | int
    head: int | None = None

    def __str__(self) -> str:
        head = "" if self.head is None else f"[H{self.head}]"
        return f"{self.hook}{head}@{self.position}"

    @staticmethod
    def parse(label: str) -> Location:
        """The inverse of `str(location)`."""
        m = _LABEL.match(label.strip())
        if not m:
            raise InterpError(
                f"bad location {label!r}; expected HOOK[@POS] like 'blocks.0.hook_resid_post@END'"
            )
        pos = m["pos"]
        return Location(
            m["hook"],
            int(pos) if pos.lstrip("-").isdigit() else pos,
            None if m["head"] is None else int(m["head"]),
        )

    @property
    def point(self) -> HookPoint:
        """The hook as a `HookPoint` (an `InterpError` if `hook` is not a hook name)."""
        return HookPoint(self.hook)

    @property
    def layer(self) -> int | None:
        """The block index of the hook (None for global hooks)."""
        return self.point.layer


@dataclass(frozen=True, eq=False)
class Alignment:
    """Variable -> (location, subspace). `basis` [k, width] has orthonormal rows; None = the whole vector."""

    variable: str
    location: Location
    basis: Tensor | None = None

    def __str__(self) -> str:
        k = "all" if self.basis is None else str(self.basis.shape[0])
        return f"{self.variable} -> {self.location} (subspace {k})"


def width(model: HookedModel, location: Location) -> int:
    """Size of the vector an alignment at `location` acts on (d_head for a head, else the last dim)."""
    axes = location.point.axes
    last = axes[-1] if axes else "d_model"  # the vector's own axis: d_head, d_mlp or d_model
    return getattr(model.cfg, last if last in ("d_head", "d_mlp") else "d_model")


def check(model: HookedModel, alignment: Alignment | Location, positions: Mapping[str, Tensor]) -> None:
    """Raise `InterpError` unless the location exists in `model` and the data, and the subspace fits."""
    loc = alignment.location if isinstance(alignment, Alignment) else alignment
    model.select(loc.hook)  # HookNameError (lists the closest names) for a hook the model lacks
    if not loc.point.per_token:
        raise InterpError(f"{loc}: attention patterns are not a place a variable can be aligned to")
    has_heads = loc.point.head_dim is not None
    if loc.head is not None and not has_heads:
        raise InterpError(f"{loc}: a head was given but {loc.hook} has no head dimension")
    if loc.head is not None and not -model.cfg.n_heads <= loc.head < model.cfg.n_heads:
        raise InterpError(f"{loc}: head {loc.head} out of range (the model has {model.cfg.n_heads} heads)")
    if isinstance(loc.position, str) and loc.position not in positions:
        raise InterpError(f"{loc}: unknown position {loc.position!r}; positions: {', '.join(positions)}")
    if isinstance(alignment, Alignment) and alignment.basis is not None:
        if has_heads and loc.head is None:
            raise InterpError(f"{loc}: a subspace on a per-head hook needs a head (e.g. [H0])")
        w = width(model, loc)
        k, d = alignment.basis.shape
        if d != w:
            raise ShapeError(f"{loc}: basis rows have size {d}, but the activation there has width {w}")
        if k > w:
            raise InterpError(f"{loc}: a subspace of size {k} is larger than the width {w} of the activation")


def position_index(loc: Location, positions: Mapping[str, Tensor], batch: int) -> Tensor:
    """[batch] position index of `loc` per example."""
    if isinstance(loc.position, str):
        return positions[loc.position]
    return torch.full((batch,), int(loc.position), dtype=torch.long)


def gather(act: Tensor, loc: Location, pos: Tensor) -> Tensor:
    """The vectors at `loc`: [batch, pos, ...] -> [batch, width] (one position, and head, per example)."""
    rows = torch.arange(act.shape[0], device=act.device)
    out = act[rows, pos.to(act.device)]  # [batch, width] or [batch, head, d_head]
    return out if loc.head is None else out[:, loc.head]


def scatter(act: Tensor, loc: Location, pos: Tensor, values: Tensor) -> Tensor:
    """A copy of `act` with the vectors at `loc` replaced by `values` [batch, width] (differentiable)."""
    rows = torch.arange(act.shape[0], device=act.device)
    pos = pos.to(act.device)
    out = act.clone()
    if loc.head is None:
        out[rows, pos] = values.to(act.dtype)
    else:
        out[rows, pos, loc.head] = values.to(act.dtype)
    return out


@dataclass(frozen=True, eq=False)
class Interchange(Intervention):
    """Set the subspace `basis` [k, width] (None: everything) of the activation to `source`'s value at
    the (example, position) pairs marked in `where` [batch, pos] (None: everywhere).

    `source` has the activation's full shape, with each example's source vector already moved to the
    base position it replaces. Heads are chosen with `heads=` as for any intervention.
    """

    source: Tensor = None  # type: ignore[assignment]
    where: Tensor | None = None
    basis: Tensor | None = None
    _tensor_fields: ClassVar[tuple[str, ...]] = ("source", "where", "basis")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.source is None:
            raise InterpError(f"Interchange on {self.hook} needs source=")

    def new_value(self, act: Tensor) -> Tensor:
        source = self.source.to(device=act.device, dtype=act.dtype)
        if source.shape != act.shape:
            raise ShapeError(
                f"Interchange on {self.hook}: source has shape {tuple(source.shape)}, expected {tuple(act.shape)}"
            )
        delta = source - act
        if self.basis is not None:
            basis = self.basis.to(device=act.device, dtype=act.dtype)  # [k, width]
            delta = (delta @ basis.T) @ basis
        edited = act + delta
        if self.where is None:
            return edited
        where = self.where.to(act.device).view(*self.where.shape, *([1] * (act.ndim - 2)))
        return torch.where(where, edited, act)


def interchange(
    alignment: Alignment,
    source_act: Tensor,  # [batch, pos, ...] the source run's activation at the alignment's hook
    base_pos: Tensor,  # [batch]
    source_pos: Tensor,  # [batch]
    n_pos: int,
) -> Interchange:
    """The `Interchange` that moves each source's aligned value to its base's position."""
    loc = alignment.location
    batch = source_act.shape[0]
    rows = torch.arange(batch)
    moved = torch.zeros(batch, n_pos, *source_act.shape[2:], dtype=source_act.dtype, device=source_act.device)
    moved[rows, base_pos] = source_act[rows, source_pos.to(source_act.device)]
    where = torch.zeros(batch, n_pos, dtype=torch.bool)
    where[rows, base_pos] = True
    heads = None if loc.head is None else (loc.head,)
    return Interchange(loc.hook, heads=heads, source=moved, where=where, basis=alignment.basis)
