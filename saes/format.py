"""File names of the on-disk layout, and atomic folder writes (temp folder, then rename); atomic file
writes come from `interp.io`.

The layout is SAELens's: a folder with `cfg.json` and `sae_weights.safetensors`. Checkpoints add
`train_cfg.json` and `trainer_state.pt` (optimizer and RNG state; the only pickle, loaded with
`weights_only=True`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from interp.io import share_tree

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


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `path` in one rename.

    On an exception the temporary folder is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        share_tree(tmp)  # mkdtemp and safetensors make private 0700/0600 entries
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
