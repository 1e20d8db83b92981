"""interp: hooked Hugging Face transformers under TransformerLens-style names.

>>> import interp
>>> model = interp.load("ioi-tiny")
>>> logits, cache = model.run_with_cache("When Mary and John went to the store", names="blocks.*.hook_resid_post")
"""

from interp import data, tasks, zoo
from interp.cache import ActivationCache
from interp.errors import HookNameError, InterpError, ShapeError
from interp.hooked import HookedModel
from interp.interventions import Ablate, Add, Intervention, Patch, Project, Scale
from interp.loading import load

__all__ = [
    "ActivationCache",
    "Ablate",
    "Add",
    "HookNameError",
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
