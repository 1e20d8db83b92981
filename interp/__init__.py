"""interp: hooked Hugging Face transformers under TransformerLens-style names.

>>> import interp
>>> model = interp.load("ioi-tiny")
>>> logits, cache = model.run_with_cache("When Mary and John went to the store", names="blocks.*.hook_resid_post")

Names are imported on first use (PEP 562), so `import interp` and the `interp` CLI start without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ActivationCache": "interp.cache",
    "Ablate": "interp.interventions",
    "Add": "interp.interventions",
    "Component": "interp.names",
    "HookNameError": "interp.errors",
    "HookPoint": "interp.names",
    "HookedModel": "interp.hooked",
    "InterpError": "interp.errors",
    "Intervention": "interp.interventions",
    "Patch": "interp.interventions",
    "Project": "interp.interventions",
    "Scale": "interp.interventions",
    "ShapeError": "interp.errors",
    "load": "interp.loading",
}
_SUBMODULES = ("data", "tasks", "zoo")

__all__ = [
    "Ablate",
    "ActivationCache",
    "Add",
    "Component",
    "HookNameError",
    "HookPoint",
    "HookedModel",
    "InterpError",
    "Intervention",
    "Patch",
    "Project",
    "Scale",
    "ShapeError",
    "data",
    "load",
    "tasks",
    "zoo",
]

if TYPE_CHECKING:
    from interp import data, tasks, zoo
    from interp.cache import ActivationCache
    from interp.errors import HookNameError, InterpError, ShapeError
    from interp.hooked import HookedModel
    from interp.interventions import Ablate, Add, Intervention, Patch, Project, Scale
    from interp.loading import load
    from interp.names import Component, HookPoint


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"interp.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'interp' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
