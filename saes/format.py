"""File names of the on-disk layout; folders and files are written atomically through `interp.io`.

The layout is SAELens's: a folder with `cfg.json` and `sae_weights.safetensors`. Checkpoints add
`train_cfg.json` and `trainer_state.pt` (optimizer and RNG state; the only pickle, loaded with
`weights_only=True`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from interp import io

SAE_CFG_FILENAME = "cfg.json"
SAE_WEIGHTS_FILENAME = "sae_weights.safetensors"
TRAIN_CFG_FILENAME = "train_cfg.json"
TRAINER_STATE_FILENAME = "trainer_state.pt"
RESULT_FILENAME = "result.json"

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def atomic_dir(path: str | Path) -> contextlib.AbstractContextManager[Path]:
    """`interp.io.atomic_dir` with `force`: an SAE folder written to `path` replaces what is there, in
    one rename once complete; on an exception `path` is left as it was."""
    return io.atomic_dir(path, force=True)
