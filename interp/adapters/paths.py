"""Every module path an adapter names, and which of them a model lacks."""

from __future__ import annotations

from dataclasses import fields

from torch import nn

from interp.adapters.spec import Adapter, Architecture, Pattern, Proj, Site
from interp.errors import InterpError, closest


def submodule(base: nn.Module, path: str) -> nn.Module:
    """`base.get_submodule(path)`, or an InterpError naming the closest paths that exist."""
    try:
        return base.get_submodule(path)
    except AttributeError:
        hint = closest(path, [n for n, _ in base.named_modules() if n], n=3)
        raise InterpError(
            f"{type(base).__name__} has no module {path!r}"
            + (f"; closest: {', '.join(hint)}" if hint else "")
        ) from None


def _point_paths(point: object) -> list[str]:
    if isinstance(point, Pattern):
        return [point.module]
    out = []
    for f in fields(point):
        value = getattr(point, f.name)
        if isinstance(value, Site):
            out.append(value.path)
    return out


def _arch_paths(arch: Architecture) -> list[str]:
    out = []
    for f in fields(arch):
        value = getattr(arch, f.name)
        if isinstance(value, Proj):
            out.append(value.path)
        elif isinstance(value, str) and f.name not in ("residual", "positional", "layers"):
            out.append(value)
    return out


def adapter_paths(adapter: Adapter) -> list[str]:
    """Module path templates ({l} = layer) named by the adapter's points and architecture."""
    paths: list[str] = []
    for point in (*adapter.global_points.values(), *adapter.block_points.values()):
        if not isinstance(point, str):
            paths += _point_paths(point)
    if adapter.arch is not None:
        paths += _arch_paths(adapter.arch)
    if adapter.final_norm:
        paths.append(adapter.final_norm)
    return list(dict.fromkeys(paths))


def _exists(base: nn.Module, path: str) -> bool:
    try:
        base.get_submodule(path)
    except AttributeError:
        return False
    return True


def missing_paths(adapter: Adapter, base: nn.Module) -> list[str]:
    """Concrete paths (first and last block) that `base` lacks; the layer list first."""
    if not _exists(base, adapter.layers):
        return [adapter.layers]
    n_layers = len(base.get_submodule(adapter.layers))
    missing = []
    for template in adapter_paths(adapter):
        for layer in sorted({0, max(n_layers - 1, 0)}):
            path = template.format(l=layer) if "{l}" in template else template
            if not _exists(base, path) and path not in missing:
                missing.append(path)
    return missing
