"""The on-disk activation cache: safetensors shards of whole token windows plus one `index.json`.

Layout of a cache folder:

    index.json                    what produced the activations and which windows each shard holds
    shard_00000.safetensors       {tensor name: Tensor[rows, width]} for windows [first_window, +windows)
    shard_00001.safetensors       ...

- A tensor name is a hook name (`blocks.1.hook_resid_post`) or `<hook>:grad`; every shard holds every
  name, with the same rows: row `r` of a shard is position `r % context_len` of window
  `first_window + r // context_len` of the token stream. Rows are float32, written on the CPU.
- Shards are written as they are produced (file first, atomically, then the index, atomically), so a
  pass that stops half way leaves a usable prefix; a later pass reads those windows and computes
  (and appends) only the rest. `complete` says the token stream ended inside the cached windows.
- `index.json` fields: `format` ("interp-activation-shards"), `version` (1), `key` (model fingerprint,
  dataset fingerprint, column, hooks, context_len, with_grads: a cache is only read by a store with
  the same key), `names`, `widths` {name: width}, `dtype`, `context_len`, `windows` (cached windows,
  contiguous from 0), `complete`, `shards`: [{`file`, `first_window`, `windows`, `rows`}].

API: `ShardCache(folder, key, context_len)`; `.windows`, `.complete`, `.names`, `.widths`;
`.read(first_window, n_windows, device)` -> {name: Tensor[n_windows * context_len, width]};
`.append(first_window, acts, windows)` buffers rows and writes a shard every `shard_rows`;
`.flush()` writes what is buffered; `.finish(stream_windows)` flushes and marks the cache complete.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from interp.errors import InterpError
from interp.io import atomic_write_json

logger = logging.getLogger(__name__)

INDEX = "index.json"
FORMAT = "interp-activation-shards"
VERSION = 1


def shard_name(i: int) -> str:
    return f"shard_{i:05d}.safetensors"


class ShardCache:
    """A folder of activation shards for one (model, dataset, hooks, context length) key.

    Example:
        >>> cache = ShardCache("acts", key, context_len=64)  # doctest: +SKIP
        >>> cache.read(0, 16)["blocks.0.hook_resid_post"].shape  # [16 * 64, d_model]  # doctest: +SKIP
    """

    def __init__(
        self, folder: str | Path, key: dict[str, Any], context_len: int, shard_rows: int = 65536
    ) -> None:
        self.folder = Path(folder)
        self.key = key
        self.context_len = context_len
        self.shard_rows = max(shard_rows, context_len)
        self.index: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "key": key,
            "names": [],
            "widths": {},
            "dtype": "float32",
            "context_len": context_len,
            "windows": 0,
            "complete": False,
            "shards": [],
        }
        path = self.folder / INDEX
        if path.is_file():
            try:
                found = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise InterpError(
                    f"{path} is corrupt ({exc}); delete the folder to rebuild the cache"
                ) from exc
            if found.get("format") != FORMAT or found.get("version") != VERSION:
                raise InterpError(f"{path} is not an activation cache of version {VERSION}; delete it")
            if found.get("key") != key:
                raise InterpError(
                    f"activation cache {self.folder} was built from a different model, dataset, hooks or "
                    "context length; delete it or pick another cache_dir"
                )
            self.index = found
        self._pending: dict[str, list[Tensor]] = {}
        self._pending_windows = 0
        self._open: dict[str, Any] = {}

    # ---- reading ------------------------------------------------------------------------------
    @property
    def windows(self) -> int:
        """Windows on disk, contiguous from window 0."""
        return int(self.index["windows"])

    @property
    def complete(self) -> bool:
        return bool(self.index["complete"])

    @property
    def names(self) -> list[str]:
        return list(self.index["names"])

    @property
    def widths(self) -> dict[str, int]:
        return dict(self.index["widths"])

    def read(
        self, first_window: int, n_windows: int, device: str | torch.device = "cpu"
    ) -> dict[str, Tensor]:
        """Rows of windows [first_window, first_window + n_windows), which must be on disk."""
        end = first_window + n_windows
        if first_window < 0 or end > self.windows:
            raise InterpError(
                f"windows {first_window}..{end} are not in the activation cache {self.folder} "
                f"({self.windows} cached)"
            )
        parts: dict[str, list[Tensor]] = {name: [] for name in self.names}
        ctx = self.context_len
        for shard in self.index["shards"]:
            lo, hi = shard["first_window"], shard["first_window"] + shard["windows"]
            if hi <= first_window or lo >= end:
                continue
            a, b = (max(lo, first_window) - lo) * ctx, (min(hi, end) - lo) * ctx
            handle = self._handle(shard["file"])
            for name in self.names:
                parts[name].append(handle.get_slice(name)[a:b])  # [rows, width]
        return {
            name: (torch.cat(p) if len(p) > 1 else p[0]).to(device, non_blocking=True)
            for name, p in parts.items()
        }

    def _handle(self, file: str) -> Any:
        handle = self._open.get(file)
        if handle is None:
            if len(self._open) > 8:
                self._open.clear()
            handle = self._open[file] = safe_open(str(self.folder / file), framework="pt")
        return handle

    # ---- writing ------------------------------------------------------------------------------
    def append(self, first_window: int, acts: dict[str, Tensor], windows: int) -> bool:
        """Buffer the rows of `windows` windows starting at `first_window`; returns False (and keeps
        nothing) unless they extend the cache contiguously. Writes a shard every `shard_rows` rows."""
        if first_window != self.windows + self._pending_windows or self.complete:
            return False
        if not self.index["names"]:
            self.index["names"] = list(acts)
            self.index["widths"] = {name: int(t.shape[-1]) for name, t in acts.items()}
        elif list(acts) != self.index["names"]:
            raise InterpError(f"activation names {list(acts)} differ from the cache's {self.index['names']}")
        for name, t in acts.items():
            self._pending.setdefault(name, []).append(t.detach().float().cpu())
        self._pending_windows += windows
        if self._pending_windows * self.context_len >= self.shard_rows:
            self.flush()
        return True

    def flush(self) -> None:
        """Write the buffered rows as one shard, then the index (both atomically)."""
        if not self._pending_windows:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        i = len(self.index["shards"])
        file = shard_name(i)
        tensors = {name: torch.cat(parts).contiguous() for name, parts in self._pending.items()}
        first = self.windows
        tmp = self.folder / f".{file}.tmp"
        save_file(
            tensors, str(tmp), metadata={"first_window": str(first), "windows": str(self._pending_windows)}
        )
        os.replace(tmp, self.folder / file)
        self.index["shards"].append(
            {
                "file": file,
                "first_window": first,
                "windows": self._pending_windows,
                "rows": self._pending_windows * self.context_len,
            }
        )
        self.index["windows"] = first + self._pending_windows
        atomic_write_json(self.folder / INDEX, self.index)
        logger.debug("wrote %s (windows %d..%d)", file, first, self.index["windows"])
        self._pending, self._pending_windows = {}, 0

    def finish(self, stream_windows: int | None) -> None:
        """Flush; `stream_windows` (the token stream's length in windows, when it ended) marks the
        cache complete if every one of them is on disk."""
        self.flush()
        if stream_windows is not None and self.windows >= stream_windows and not self.complete:
            self.index["complete"] = True
            atomic_write_json(self.folder / INDEX, self.index)
