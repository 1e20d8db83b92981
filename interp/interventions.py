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
from interp.names import HookPoint
from interp.validation import as_tensor, check_finite_number, check_finite_tensor, check_indices

if TYPE_CHECKING:
    from interp.cache import ActivationCache


def _tensor_to_json(t: torch.Tensor) -> dict:
    return {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "data": t.flatten().tolist(),
    }


def _tensor_from_json(d: dict) -> torch.Tensor:
    missing = [k for k in ("dtype", "shape", "data") if k not in d]
    if missing:
        raise InterpError(
            f"a tensor in intervention JSON needs dtype, shape and data; missing {missing[0]!r}"
        )
    dtype = getattr(torch, str(d["dtype"]), None)
    if not isinstance(dtype, torch.dtype):
        raise InterpError(f"unknown tensor dtype {d['dtype']!r} in intervention JSON")
    try:
        return torch.tensor(d["data"], dtype=dtype).reshape(d["shape"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise InterpError(f"bad tensor in intervention JSON: {err}") from None


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
        if not isinstance(self.hook, str):
            raise InterpError(
                f"{type(self).__name__}: hook must be a hook name (str), got {type(self.hook).__name__}"
            )
        for name in ("heads", "positions"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, check_indices(value, f"{type(self).__name__} {name}"))
        if self.heads is not None and self.point.head_dim is None:
            raise InterpError(
                f"{type(self).__name__} on {self.hook}: heads= needs a per-head hook "
                "(attn.hook_q/k/v/z/pattern); this hook has no head dimension"
            )

    @property
    def point(self) -> HookPoint:
        """The hook as a `HookPoint` (its layer and which axes are heads and positions)."""
        return HookPoint(self.hook)

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
        point = self.point
        pos_dim, head_dim = point.pos_dim, point.head_dim
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
        if not isinstance(d, dict):
            raise InterpError(f"an intervention is a JSON object with a 'type' field, got {type(d).__name__}")
        d = dict(d)
        kind = d.pop("type", None)
        if kind not in _REGISTRY:
            raise InterpError(f"unknown intervention type {kind!r}; known: {', '.join(sorted(_REGISTRY))}")
        cls = _REGISTRY[kind]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InterpError(f"{kind}: unknown field {unknown[0]!r}; fields are {', '.join(sorted(known))}")
        if "hook" not in d:
            raise InterpError(f"{kind}: missing field 'hook' (the hook name it edits)")
        for name in cls._tensor_fields:
            if isinstance(d.get(name), dict):
                d[name] = _tensor_from_json(d[name])
        return cls(**d)

    @staticmethod
    def from_json(s: str) -> Intervention:
        try:
            d = json.loads(s)
        except json.JSONDecodeError as err:
            raise InterpError(f"intervention JSON is not valid JSON: {err}") from None
        return Intervention.from_dict(d)

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
        value = self.value
        if hasattr(value, "to_dict") and hasattr(value, "__getitem__"):  # a cache: keep only this hook
            value = value[self.hook]
        value = as_tensor(value, f"Patch on {self.hook}: value")
        check_finite_tensor(value, f"Patch on {self.hook}: value")
        object.__setattr__(self, "value", value)

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
        if self.reference is not None:
            ref = as_tensor(self.reference, f"Ablate on {self.hook}: reference")
            if ref.ndim == 0 or ref.shape[0] == 0:
                raise InterpError(
                    f"Ablate on {self.hook}: reference is empty (shape {tuple(ref.shape)}); it needs at least "
                    "one example [n >= 1, ...], or leave reference=None to use the batch"
                )
            check_finite_tensor(ref, f"Ablate on {self.hook}: reference")
            object.__setattr__(self, "reference", ref)

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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vector is None:
            raise InterpError(f"Add on {self.hook} needs vector= (e.g. a [d_model] steering vector)")
        vector = as_tensor(self.vector, f"Add on {self.hook}: vector")
        check_finite_tensor(vector, f"Add on {self.hook}: vector")
        object.__setattr__(self, "vector", vector)
        object.__setattr__(self, "coeff", check_finite_number(self.coeff, f"Add on {self.hook}: coeff"))

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

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "factor", check_finite_number(self.factor, f"Scale on {self.hook}: factor"))

    def new_value(self, act: torch.Tensor) -> torch.Tensor:
        return act * self.factor


@dataclass(frozen=True, eq=False)
class Project(Intervention):
    """Remove the span of `basis` rows [k, d] from the last dim (keep=False), or keep only that span."""

    basis: torch.Tensor = None  # type: ignore[assignment]
    keep: bool = False
    _tensor_fields: ClassVar[tuple[str, ...]] = ("basis",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.basis is None:
            raise InterpError(f"Project on {self.hook} needs basis= (rows [k, d] spanning the subspace)")
        basis = as_tensor(self.basis, f"Project on {self.hook}: basis")
        if basis.ndim == 0 or basis.numel() == 0:
            raise InterpError(f"Project on {self.hook}: basis is empty; give at least one row [k >= 1, d]")
        check_finite_tensor(basis, f"Project on {self.hook}: basis")
        object.__setattr__(self, "basis", basis)

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
