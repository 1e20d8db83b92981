"""Atomic training checkpoints and their loading.

A checkpoint is a folder `step_000000100/` holding
- `cfg.json` + `sae_weights.safetensors`: the SAE in the SAELens layout (loadable by `saes.load` and SAELens),
- `sae_state.safetensors`: the exact parameters and buffers, for bit-exact resumption,
- `train_cfg.json`: the `TrainConfig`,
- `trainer_state.pt`: optimizer state, step, latent statistics, RNG states (read with `weights_only=True`).

It is written into a temporary sibling folder and renamed into place, so a crash never leaves a
half-written `step_*` folder; older checkpoints are deleted only after a new one is complete.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from interp.errors import InterpError
from interp.io import atomic_write_json
from saes.architectures import SparseAutoencoder
from saes.config import SAEConfig
from saes.format import (
    SAE_CFG_FILENAME,
    SAE_WEIGHTS_FILENAME,
    TRAIN_CFG_FILENAME,
    TRAINER_STATE_FILENAME,
    atomic_dir,
)

logger = logging.getLogger(__name__)

SAE_STATE_FILENAME = "sae_state.safetensors"
_STEP_DIR = re.compile(r"^step_(\d+)$")
_REQUIRED = (
    SAE_CFG_FILENAME,
    SAE_WEIGHTS_FILENAME,
    SAE_STATE_FILENAME,
    TRAIN_CFG_FILENAME,
    TRAINER_STATE_FILENAME,
)


def checkpoint_dirs(root: str | Path) -> list[Path]:
    """Complete-looking `step_*` folders under `root`, oldest first (temporary folders are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def write_checkpoint(
    root: str | Path,
    step: int,
    sae: SparseAutoencoder,
    train_cfg_dict: dict[str, Any],
    trainer_state: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint `step` atomically under `root` and delete all but the newest `keep`."""
    for name, tensor in sae.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InterpError(f"refusing to checkpoint non-finite SAE weights ({name}) at step {step}")
    path = Path(root) / f"step_{step:09d}"
    with atomic_dir(path) as tmp:
        sae.save(tmp / "sae")
        for name in (SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME):
            (tmp / "sae" / name).rename(tmp / name)
        (tmp / "sae").rmdir()
        state = {k: v.detach().contiguous().cpu() for k, v in sae.state_dict().items()}
        save_file(state, str(tmp / SAE_STATE_FILENAME))
        atomic_write_json(tmp / TRAIN_CFG_FILENAME, train_cfg_dict)
        torch.save(trainer_state, tmp / TRAINER_STATE_FILENAME)
    for old in checkpoint_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("checkpoint written: %s", path)
    return path


def read_checkpoint(path: str | Path, sae: SparseAutoencoder) -> dict[str, Any]:
    """Load weights into `sae` and return the trainer state; a broken folder is a clear `InterpError`."""
    path = Path(path)
    missing = [name for name in _REQUIRED if not (path / name).is_file()]
    if missing:
        raise InterpError(
            f"checkpoint {path} is partial (missing {', '.join(missing)}); delete it to resume from an older one"
        )
    try:
        saved_cfg = json.loads((path / SAE_CFG_FILENAME).read_text())["metadata"]["interp"]["config"]
        state = load_file(str(path / SAE_STATE_FILENAME))
        trainer_state = torch.load(path / TRAINER_STATE_FILENAME, weights_only=True, map_location="cpu")
    except (
        json.JSONDecodeError,
        KeyError,
        TypeError,
        SafetensorError,
        RuntimeError,
        OSError,
        EOFError,
        ValueError,
        IndexError,  # the weights-only unpickler on a truncated file
        AttributeError,
        pickle.UnpicklingError,
    ) as exc:
        raise InterpError(
            f"checkpoint {path} is corrupt ({type(exc).__name__}: {exc}); delete it to resume from an older one"
        ) from exc
    if SAEConfig.from_dict(saved_cfg) != sae.cfg:  # the saved dict may be of the older, flat layout
        raise InterpError(
            f"checkpoint {path} was written for a different SAEConfig; resume with the config it was trained with"
        )
    try:
        sae.load_state_dict(state)
    except RuntimeError as exc:
        raise InterpError(f"checkpoint {path} does not match the SAE ({exc})") from exc
    return trainer_state


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest `step_*` folder under `root`, or None."""
    dirs = checkpoint_dirs(root)
    return dirs[-1] if dirs else None


def read_newest_checkpoint(root: str | Path, sae: SparseAutoencoder) -> tuple[Path, dict[str, Any]] | None:
    """Load the newest readable checkpoint under `root` into `sae`: (its folder, the trainer state), or
    None when there is none. A broken newest one is reported and the one before it tried; when none can
    be read, the oldest one's error is raised."""
    candidates = checkpoint_dirs(root)[::-1]  # newest first
    for i, path in enumerate(candidates):
        try:
            return path, read_checkpoint(path, sae)
        except InterpError as exc:
            if i + 1 == len(candidates):
                raise
            logger.warning(
                "%s; resuming from the previous checkpoint %s instead", exc, candidates[i + 1].name
            )
    return None
