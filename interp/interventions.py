"""Interventions: small frozen values that name a hook and say how to edit its activation.

Each names its hook first, and may restrict itself to some heads and/or positions; outside the
selection the activation passes through untouched. A list of interventions composes in order.

    >>> iv = Ablate("blocks.1.attn.hook_z", heads=(3,))
    >>> Intervention.from_json(iv.to_json()) == iv
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar, Literal

import torch

from interp.errors import InterpError, ShapeError

if TYPE_CHECKING:
    from interp.cache import ActivationCache


def layout(hook: str) -> tuple[int, int | None]:
    """(position dim, head dim or None) of the activation at `hook`; batch is always dim 0."""
    if hook.endswith("attn.hook_pattern"):
        return 2, 1  # [batch, head, q_pos, k_pos]
    if hook.rsplit(".", 1)[-1] in ("hook_q", "hook_k", "hook_v", "hook_z"):
        return 1, 2  # [batch, pos, head, d_head]
    return 1, None  # [batch, pos, ...]


def _tensor_to_json(t: torch.Tensor) -> dict:
    return {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "data": t.flatten().tolist(),
    }


def _tensor_from_json(d: dict) -> torch.Tensor:
    return torch.tensor(d["data"], dtype=getattr(torch, d["dtype"])).reshape(d["shape"])


_REGISTRY: dict[str, type[Intervention]] = {}


@dataclass(frozen=True, eq=False)
class Intervention:
    """Base class: `hook`, optional `heads` and `positions`; subclasses define `new_value`."""

    hook: str
    heads: tuple[int, ...] | None = field(default=None, kw_only=True)
    positions: tuple[int, ...] | None = field(default=None, kw_only=True)

    _tensor_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __post_init__(self) -> None:
        for name in ("heads", "positions"):
            value = getattr(self, name)
            if isinstance(value, int):
                object.__setattr__(self, name, (value,))
            elif value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))
        if self.heads is not None and layout(self.hook)[1] is None:
            raise InterpError(
                f"{type(self).__name__} on {self.hook}: heads= needs a per-head hook "
                "(attn.hook_q/k/v/z/pattern); this hook has no head dimension"
            )

    # -- editing -------------------------------------------------------------------------------
    def new_value(self, act: torch.Tensor) -> torch.Tensor:
        """The edited activation, before restricting to the selected heads/positions."""
        raise NotImplementedError

    def apply(self, act: torch.Tensor) -> torch.Tensor:
        """Edit `act` (the full activation at `self.hook`) within the selection."""
        new = self.new_value(act)
        mask = self._selection_mask(act)
        return new if mask is None else torch.where(mask, new, act)

    def _selection_mask(self, act: torch.Tensor) -> torch.Tensor | None:
        if self.heads is None and self.positions is None:
            return None
        pos_dim, head_dim = layout(self.hook)
        shape = [1] * act.ndim
        mask = torch.ones(shape, dtype=torch.bool, device=act.device)
        for dim, chosen, what in ((head_dim, self.heads, "head"), (pos_dim, self.positions, "position")):
            if chosen is None:
                continue
            size = act.shape[dim]
            bad = [i for i in chosen if not -size <= i < size]
            if bad:
                raise InterpError(f"{what} index {bad[0]} out of range for {self.hook} with {size} {what}s")
            axis = torch.zeros(size, dtype=torch.bool, device=act.device)
            axis[list(chosen)] = True
            shape_d = [1] * act.ndim
            shape_d[dim] = size
            mask = mask & axis.view(shape_d)
        return mask

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out: dict = {"type": type(self).__name__}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = _tensor_to_json(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @staticmethod
    def from_dict(d: dict) -> Intervention:
        d = dict(d)
        kind = d.pop("type")
        if kind not in _REGISTRY:
            raise InterpError(f"unknown intervention type {kind!r}; known: {', '.join(sorted(_REGISTRY))}")
        cls = _REGISTRY[kind]
        for name in cls._tensor_fields:
            if isinstance(d.get(name), dict):
                d[name] = _tensor_from_json(d[name])
        return cls(**d)

    @staticmethod
    def from_json(s: str) -> Intervention:
        return Intervention.from_dict(json.loads(s))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Intervention) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())


def _broadcast_batch(hook: str, value: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    value = value.to(device=act.device, dtype=act.dtype)
    if value.shape == act.shape:
        return value
    if value.ndim == act.ndim and value.shape[0] == 1 and value.shape[1:] == act.shape[1:]:
        return value.expand_as(act)
    raise ShapeError(
        f"Patch on {hook}: value has shape {tuple(value.shape)}, expected {tuple(act.shape)} "
        "(the activation's full shape, or batch size 1)"
    )


@dataclass(frozen=True, eq=False)
class Patch(Intervention):
    """Replace the activation with `value`: a tensor of the activation's full shape, or a cache holding `hook`."""

    value: torch.Tensor | ActivationCache = None  # type: ignore[assignment]
    _tensor_fields: ClassVar[tuple[str, ...]] = ("value",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.value is None:
            raise InterpError(f"Patch on {self.hook} needs value= (a tensor or an ActivationCache)")
        if not isinstance(self.value, torch.Tensor):  # a cache: keep only what this patch needs
            object.__setattr__(self, "value", self.value[self.hook])

    def new_value(self, act: torch.Tensor) -> torch.Tensor:
        return _broadcast_batch(self.hook, self.value, act)


@dataclass(frozen=True, eq=False)
class Ablate(Intervention):
    """Zero the activation, or replace it by its mean over the batch, or by another example's value.

    kind "mean" and "resample" use `reference` (a tensor [n, ...] of the activation's trailing shape,
    e.g. from a cache over a reference dataset) when given, else the current batch itself.
    Resampling draws with `seed`, so a result can be repeated.
    """

    kind: Literal["zero", "mean", "resample"] = "zero"
    reference: torch.Tensor | None = None
    seed: int = 0
    _tensor_fields: ClassVar[tuple[str, ...]] = ("reference",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in ("zero", "mean", "resample"):
            raise InterpError(f"Ablate kind must be 'zero', 'mean' or 'resample', got {self.kind!r}")

    def new_value(self, act: torch.Tensor) -> torch.Tensor:
        if self.kind == "zero":
            return torch.zeros_like(act)
        source = act if self.reference is None else self.reference.to(device=act.device, dtype=act.dtype)
        if source.shape[1:] != act.shape[1:]:
            raise ShapeError(
                f"Ablate on {self.hook}: reference has per-example shape {tuple(source.shape[1:])}, "
                f"expected {tuple(act.shape[1:])}"
            )
        if self.kind == "mean":
            return source.mean(dim=0, keepdim=True).expand_as(act)
        generator = torch.Generator().manual_seed(self.seed)
        n = act.shape[0]
        if self.reference is None and n > 1:
            # within the batch: a random cyclic shift, so no example keeps its own value
            shift = 1 + int(torch.randint(n - 1, (), generator=generator))
            index = (torch.arange(n) + shift) % n
        else:
            index = torch.randint(source.shape[0], (n,), generator=generator)
        return source[index.to(act.device)]


@dataclass(frozen=True, eq=False)
class Add(Intervention):
    """Add `coeff * vector` (broadcast over leading dims), e.g. a steering vector on the residual stream."""

    vector: torch.Tensor = None  # type: ignore[assignment]
    coeff: float = 1.0
    _tensor_fields: ClassVar[tuple[str, ...]] = ("vector",)

    def new_value(self, act: torch.Tensor) -> torch.Tensor:
        vector = self.vector.to(device=act.device, dtype=act.dtype)
        if vector.shape != act.shape[act.ndim - vector.ndim :]:
            raise ShapeError(
                f"Add on {self.hook}: vector has shape {tuple(vector.shape)}, expected a trailing part of "
                f"{tuple(act.shape)}"
            )
        return act + self.coeff * vector


@dataclass(frozen=True, eq=False)
class Scale(Intervention):
    """Multiply the activation by `factor`."""

    factor: float = 0.0

    def new_value(self, act: torch.Tensor) -> torch.Tensor:
        return act * self.factor


@dataclass(frozen=True, eq=False)
class Project(Intervention):
    """Remove the span of `basis` rows [k, d] from the last dim (keep=False), or keep only that span."""

    basis: torch.Tensor = None  # type: ignore[assignment]
    keep: bool = False
    _tensor_fields: ClassVar[tuple[str, ...]] = ("basis",)

    def new_value(self, act: torch.Tensor) -> torch.Tensor:
        basis = self.basis.to(device=act.device, dtype=torch.float32)
        basis = basis.reshape(-1, basis.shape[-1])
        if basis.shape[-1] != act.shape[-1]:
            raise ShapeError(
                f"Project on {self.hook}: basis rows have size {basis.shape[-1]}, expected {act.shape[-1]}"
            )
        q, _ = torch.linalg.qr(basis.T)  # [d, k] orthonormal columns
        q = q.to(act.dtype)
        projected = (act @ q) @ q.T
        return projected if self.keep else act - projected
