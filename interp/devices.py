"""Models spread over several devices, or partly offloaded to CPU memory or disk.

Placement is accelerate's: `device_map` names a device (`"cuda:0"`, `"cpu"`, `"disk"`) per module, and
accelerate's hooks move each module's inputs (and offloaded weights) to its execution device when it
runs. The toolkit's hooks sit on the same modules and see the activations where they are computed, so
hook names, caches and interventions mean exactly what they mean on one device:

- inputs go to the execution device of the input embeddings (`input_device`);
- intervention values are moved to the device of the activation they edit (`interp.interventions`);
- `run_with_cache(..., device="cpu")`, or `HookedModel.cache_device`, collects a cache on one device
  whatever device each layer ran on.

    >>> model = interp.load("path/to/llama", device_map="auto", dtype=torch.bfloat16, cache_device="cpu")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from interp.errors import InterpError

logger = logging.getLogger(__name__)

DeviceMap = str | Mapping[str, str | int | torch.device]
_DEVICE_MAP_STRINGS = ("auto", "balanced", "balanced_low_0", "sequential")


def is_dispatched(hf_model: nn.Module) -> bool:
    """True when accelerate placed the model's modules by a device map (several devices or offload)."""
    return getattr(hf_model, "hf_device_map", None) is not None


def input_device(hf_model: nn.Module) -> torch.device:
    """Where token ids go: the execution device of the input embeddings (the first parameter's device
    on a model that is not dispatched)."""
    if not is_dispatched(hf_model):
        return next(hf_model.parameters()).device
    embed = hf_model.get_input_embeddings() if hasattr(hf_model, "get_input_embeddings") else None
    for module in ([embed] if embed is not None else []) + list(hf_model.modules()):
        hook = getattr(module, "_hf_hook", None)
        device = getattr(hook, "execution_device", None)
        if device is not None:
            return torch.device(device if not isinstance(device, int) else f"cuda:{device}")
    for param in hf_model.parameters():
        if param.device.type != "meta":
            return param.device
    return torch.device("cpu")


def check_device_map(device_map: DeviceMap, offload_folder: str | None) -> None:
    """One clear error for a device map that cannot work, before any weight is loaded."""
    if isinstance(device_map, str):
        if device_map not in _DEVICE_MAP_STRINGS:
            raise InterpError(
                f"device_map={device_map!r} is not understood; pass one of {', '.join(_DEVICE_MAP_STRINGS)} "
                "or a dict from module name to device ('cuda:0', 'cpu', 'disk')"
            )
        return
    if not isinstance(device_map, Mapping) or not device_map:
        raise InterpError("device_map must be 'auto' or a non-empty dict from module name to device")
    if "disk" in {str(v) for v in device_map.values()} and offload_folder is None:
        raise InterpError("device_map offloads modules to 'disk': pass offload_folder=DIR for their weights")


def dispatch(
    hf_model: nn.Module,
    device_map: DeviceMap,
    *,
    offload_folder: str | None = None,
    max_memory: Mapping[str | int, int | str] | None = None,
) -> nn.Module:
    """Place an in-memory model by `device_map` with accelerate ("auto": fill GPUs, then CPU, then disk).

    A model loaded from a folder is placed by `from_pretrained` itself (`interp.load(..., device_map=)`).
    """
    check_device_map(device_map, offload_folder)
    try:
        import accelerate
    except ImportError as exc:  # accelerate is a dependency, but keep the message useful
        raise InterpError("device_map needs accelerate: pip install accelerate") from exc
    if isinstance(device_map, str):
        no_split = list(getattr(hf_model, "_no_split_modules", None) or [])
        device_map = accelerate.infer_auto_device_map(
            hf_model, max_memory=dict(max_memory) if max_memory else None, no_split_module_classes=no_split
        )
        if "disk" in {str(v) for v in device_map.values()} and offload_folder is None:
            raise InterpError(
                "the model does not fit in memory and would be offloaded to disk: pass offload_folder=DIR"
            )
    hf_model = accelerate.dispatch_model(hf_model, device_map=dict(device_map), offload_dir=offload_folder)
    hf_model.hf_device_map = dict(device_map)
    logger.info(
        "dispatched %s over %s", type(hf_model).__name__, sorted({str(v) for v in device_map.values()})
    )
    return hf_model
