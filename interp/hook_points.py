"""Installing hook callbacks on a Hugging Face module tree.

Each canonical hook point (see `interp.adapters.spec`) is read from one PyTorch hook on one module.
Several hook points often live on the same module (q, k and v on GPT-2's fused `c_attn`), so hooks
are grouped by *site*: one PyTorch hook per (module, in|out) serves every point there, in order.
That keeps a fully cached forward close to a plain one: 8 PyTorch hooks per block, not 12.

A callback receives the activation and returns None (read only) or a replacement of the same shape.
Returning the very tensor it received also counts as no change, so identity hooks leave the forward
bitwise unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from interp.adapters.layouts import FusedLayout, fused_layout, fused_part
from interp.adapters.spec import (
    DiffFromBase,
    Direct,
    Fused,
    Pattern,
    PerToken,
    Point,
    Scaled,
    Site,
    SumWithBase,
)
from interp.attention import PATTERN_HOOKS_ATTR, PATTERN_IMPL, register
from interp.errors import ShapeError

Callback = Callable[[torch.Tensor], "torch.Tensor | None"]
Getter = Callable[[torch.Tensor], torch.Tensor]
Setter = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Dims:
    n_heads: int
    n_kv_heads: int
    d_head: int


@dataclass
class _Entry:
    name: str
    get: Getter
    set: Setter
    callback: Callback
    part: tuple[FusedLayout, int] | None = None  # a part of a fused projection's output: (layout, index)


def _checked(name: str, value: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    if not isinstance(new, torch.Tensor):
        raise ShapeError(f"hook {name} returned {type(new).__name__}; return a tensor or None")
    if new.shape != value.shape:
        raise ShapeError(
            f"hook {name}: replacement has shape {tuple(new.shape)}, expected {tuple(value.shape)}"
        )
    # HF modules .view() their inputs, so a broadcast (expanded) replacement must be materialised
    return new.to(device=value.device, dtype=value.dtype).contiguous()


@dataclass
class _SiteDispatcher:
    """One PyTorch hook serving every hook point at one site; optionally remembers the final value."""

    site: Site
    entries: list[_Entry] = field(default_factory=list)
    stash: dict[Site, torch.Tensor] | None = None
    module: nn.Module | None = None  # the module at `site`, once resolved

    def run(self, tensor: torch.Tensor) -> torch.Tensor:
        i, entries = 0, self.entries
        while i < len(entries):
            entry = entries[i]
            if entry.part is None:
                value = entry.get(tensor)
                new = entry.callback(value)
                if new is not None and new is not value:
                    tensor = entry.set(tensor, _checked(entry.name, value, new))
                i += 1
                continue
            # consecutive parts of one fused output (q, k, v): one split, one join
            layout, parts, changed = entry.part[0], entry.part[0].split(tensor), False
            while i < len(entries) and entries[i].part is not None and entries[i].part[0] is layout:
                index = entries[i].part[1]
                value = parts[index]
                new = entries[i].callback(value)
                if new is not None and new is not value:
                    parts[index], changed = _checked(entries[i].name, value, new), True
                i += 1
            if changed:
                tensor = layout.join(tensor, parts)
        if self.stash is not None:
            self.stash[self.site] = tensor
        return tensor

    def pre_hook(self, module: nn.Module, args: tuple, kwargs: dict):
        if args:
            new = self.run(args[0])
            return None if new is args[0] else ((new, *args[1:]), kwargs)
        old = kwargs["hidden_states"]
        new = self.run(old)
        return None if new is old else (args, {**kwargs, "hidden_states": new})

    def post_hook(self, module: nn.Module, args: tuple, output):
        if isinstance(output, tuple):
            new = self.run(output[0])
            return None if new is output[0] else (new, *output[1:])
        new = self.run(output)
        return None if new is output else new


def is_toolkit_hook(hook: object) -> bool:
    """Whether a PyTorch hook function was placed by this module."""
    return isinstance(getattr(hook, "__self__", None), _SiteDispatcher)


def _heads_view(n_heads: int, d_head: int) -> tuple[Getter, Setter]:
    def get(t: torch.Tensor) -> torch.Tensor:  # [batch, pos, head * d_head] -> [batch, pos, head, d_head]
        return t.view(*t.shape[:-1], n_heads, d_head)

    def set_(t: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        return new.reshape(t.shape)

    return get, set_


def _fused(point: Fused, dims: Dims) -> tuple[Getter, Setter]:
    return fused_part(point.layout, point.part, dims.n_heads, dims.n_kv_heads, dims.d_head)


def _fused_part(point: Point, dims: Dims) -> tuple[FusedLayout, int] | None:
    if not isinstance(point, Fused):
        return None
    return fused_layout(point.layout, dims.n_heads, dims.n_kv_heads, dims.d_head), point.part


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _replace(t: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    return new


class Installation:
    """The PyTorch hooks (and attention-implementation switch) for one set of callbacks; `remove()` undoes all."""

    def __init__(
        self,
        module: Callable[[str], nn.Module],
        resolve_path: Callable[[str, int | None], str],
        dims: Dims,
        attention_configs: list[object],
    ):
        self._module = module  # path (relative to the base model) -> module, memoised by the caller
        self._resolve = resolve_path
        self._dims = dims
        self._attention_configs = attention_configs  # every config whose _attn_implementation the model reads
        self._sites: dict[Site, _SiteDispatcher] = {}
        self._stash: dict[Site, torch.Tensor] = {}
        self._pattern_modules: dict[nn.Module, list[_Entry]] = {}
        self._pattern_hooks: dict[nn.Module, tuple[Callable, ...]] = {}  # what attach() put on each module
        self._entries: list[_Entry] = []  # in the order added, so callbacks can be re-bound positionally
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._configs: list[tuple[object, str | None]] = []

    @property
    def sites(self) -> tuple[Site, ...]:
        """The (module path, in|out) sites that carry one PyTorch hook each while attached; module paths
        are relative to the base model. Pattern hooks are not among them (they live in the attention
        function)."""
        return tuple(self._sites)

    @property
    def attached(self) -> bool:
        return bool(self._handles or self._configs)

    def bind(self, callbacks: list[Callback]) -> None:
        """Give the hook points, in the order they were added, new callbacks (reusing the placement)."""
        for entry, callback in zip(self._entries, callbacks, strict=True):
            entry.callback = callback

    def _dispatcher(self, site: Site, layer: int | None) -> _SiteDispatcher:
        concrete = Site(self._resolve(site.path, layer), site.io)
        if concrete not in self._sites:
            self._sites[concrete] = _SiteDispatcher(concrete)
        return self._sites[concrete]

    def _stashed(self, site: Site, layer: int | None) -> Site:
        dispatcher = self._dispatcher(site, layer)
        dispatcher.stash = self._stash
        return dispatcher.site

    def add(self, name: str, point: Point, layer: int | None, callback: Callback, read_only: bool) -> None:
        """Attach `callback` to hook point `point` (of block `layer`, or None for global points)."""
        if isinstance(point, Pattern):
            entry = _Entry(name, _identity, _replace, callback)
            module = self._module(self._resolve(point.module, layer))
            self._pattern_modules.setdefault(module, []).append(entry)
        else:
            if isinstance(point, SumWithBase) and read_only and point.read is not None:
                point = Direct(point.read)
            site, get, set_ = self._accessors(point, layer)
            entry = _Entry(name, get, set_, callback, _fused_part(point, self._dims))
            self._dispatcher(site, layer).entries.append(entry)
        self._entries.append(entry)

    def _accessors(self, point: Point, layer: int | None) -> tuple[Site, Getter, Setter]:
        stash = self._stash
        if isinstance(point, Direct):
            if point.copy:
                return point.site, torch.clone, lambda t, new: new.clone()
            if point.heads is None:
                return point.site, _identity, _replace
            n = self._dims.n_heads if point.heads == "q" else self._dims.n_kv_heads
            return (point.site, *_heads_view(n, self._dims.d_head))
        if isinstance(point, Fused):
            return (point.site, *_fused(point, self._dims))
        if isinstance(point, Scaled):  # the block computes `sublayer_out * multiplier`: same bits
            f = point.factor
            return point.site, lambda t: t * f, lambda t, new: new / f
        if isinstance(point, PerToken):  # [batch * pos, n] <-> [batch, pos, n]
            like = self._stashed(point.like, layer)
            return (
                point.site,
                lambda t: t.view(*stash[like].shape[:-1], t.shape[-1]),
                lambda t, new: new.reshape(t.shape),
            )
        base = self._stashed(point.base, layer)
        if isinstance(point, SumWithBase) and point.factor != 1.0:
            f = point.factor
            return point.site, lambda t: stash[base] + t * f, lambda t, new: (new - stash[base]) / f
        if isinstance(point, SumWithBase):  # value = base + site; GPT-2 adds `attn + resid`, same bits
            return point.site, lambda t: stash[base] + t, lambda t, new: new - stash[base]
        if isinstance(point, DiffFromBase):
            return point.site, lambda t: t - stash[base], lambda t, new: stash[base] + new
        raise TypeError(f"unknown hook point {point!r}")

    def attach(self) -> None:
        """Register everything added so far on the model."""
        try:
            for site, dispatcher in self._sites.items():
                module = dispatcher.module
                if module is None:  # resolved on the first attach; a memoised installation reuses it
                    module = dispatcher.module = self._module(site.path)
                if site.io == "in":
                    handle = module.register_forward_pre_hook(dispatcher.pre_hook, with_kwargs=True)
                else:
                    handle = module.register_forward_hook(dispatcher.post_hook)
                self._handles.append(handle)
            if self._pattern_modules:
                self._switch_to_pattern_attention()
        except BaseException:
            self.remove()
            raise

    def _switch_to_pattern_attention(self) -> None:
        register()
        for module, entries in self._pattern_modules.items():
            mine = tuple(_pattern_hook(entry) for entry in entries)
            self._pattern_hooks[module] = mine
            # stack on an enclosing block's pattern hooks (they run first, as plain hooks do); written to
            # the instance dict directly: nn.Module.__setattr__ first checks parameters, buffers and
            # submodules, on every install and removal
            module.__dict__[PATTERN_HOOKS_ATTR] = (*module.__dict__.get(PATTERN_HOOKS_ATTR, ()), *mine)
        for cfg in self._attention_configs:
            self._configs.append((cfg, cfg._attn_implementation))
            cfg._attn_implementation = PATTERN_IMPL

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module, mine in self._pattern_hooks.items():  # remove only this installation's hooks
            rest = tuple(
                h for h in module.__dict__.get(PATTERN_HOOKS_ATTR, ()) if all(h is not m for m in mine)
            )
            if rest:
                module.__dict__[PATTERN_HOOKS_ATTR] = rest
            else:
                module.__dict__.pop(PATTERN_HOOKS_ATTR, None)
        self._pattern_hooks.clear()
        for cfg, impl in reversed(self._configs):
            cfg._attn_implementation = impl
        self._configs.clear()
        self._stash.clear()
        for entry in self._entries:  # drop references to the caller's callbacks (and what they hold)
            entry.callback = _unbound


def _unbound(tensor: torch.Tensor) -> None:
    return None


def _pattern_hook(entry: _Entry) -> Callable[[torch.Tensor], torch.Tensor]:
    def hook(pattern: torch.Tensor) -> torch.Tensor:
        new = entry.callback(pattern)
        if new is None or new is pattern:
            return pattern
        return _checked(entry.name, pattern, new)

    return hook
