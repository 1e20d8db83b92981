"""Running many intervention sets in few forward passes.

Set i of a chunk edits rows [i * batch, (i + 1) * batch) of a batch repeated once per set, so a sweep
over hundreds of patches costs a handful of forward passes. The result equals running each set alone
(up to float rounding from different matmul batch sizes; tested).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from interp.interventions import Intervention

if TYPE_CHECKING:
    from interp.hooked import HookedModel

_CPU_BUDGET = 2 * 1024**3
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
_mmap_threshold_fixed = False


def fix_mmap_threshold(threshold: int = 1 << 17) -> None:
    """Keep CPU memory of long sweeps near the budget (glibc only; once per process).

    glibc raises its mmap threshold each time a large block is freed; after that the activations of
    every pass come from the heap, which fragments, so RSS grows pass after pass far beyond the
    budget. A fixed threshold keeps large tensors in their own mappings, returned to the OS on free.
    """
    global _mmap_threshold_fixed
    if _mmap_threshold_fixed or not sys.platform.startswith("linux"):
        return
    _mmap_threshold_fixed = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):  # not glibc: nothing to fix
        pass


def bytes_per_example(model: HookedModel, n_pos: int) -> int:
    """A generous estimate of the peak memory one example of length `n_pos` needs in a forward pass."""
    c = model.cfg
    element = torch.finfo(model.dtype).bits // 8
    per_layer = n_pos * (8 * c.d_model + 2 * c.d_mlp) + 2 * c.n_heads * n_pos * n_pos
    return element * (n_pos * 2 * c.d_vocab + c.n_layers * per_layer)


def default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    return _CPU_BUDGET


def _chunk_hook(batch: int, edits: list[tuple[int, Intervention]]) -> Callable[[torch.Tensor], torch.Tensor]:
    """One hook for a whole chunk: applies each (set index, intervention) to that set's rows."""
    by_set: dict[int, list[Intervention]] = defaultdict(list)
    for index, iv in edits:
        by_set[index].append(iv)

    def hook(act: torch.Tensor) -> torch.Tensor:
        rows = list(act.split(batch, dim=0))
        for index, interventions in by_set.items():
            for iv in interventions:
                rows[index] = iv.apply(rows[index])
        return torch.cat(rows, dim=0)

    return hook


def run_batched(
    model: HookedModel,
    ids: torch.Tensor,  # [batch, pos]
    mask: torch.Tensor | None,
    intervention_sets: Sequence[Sequence[Intervention]],
    reduce: Callable[[torch.Tensor], torch.Tensor] | None,
    memory_budget: int | None,
    progress: bool,
    grad: bool = False,
) -> torch.Tensor:
    batch, n_pos = ids.shape
    if model.device.type == "cpu":
        fix_mmap_threshold()
    budget = memory_budget or default_budget(model.device)
    per_set = max(1, batch * bytes_per_example(model, n_pos))
    chunk = max(1, min(len(intervention_sets), budget // per_set))
    outputs: list[torch.Tensor] = []
    # without a graph unless asked: each pass's graph would hold ~3x the memory budget
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        starts = range(0, len(intervention_sets), chunk)
        for start in tqdm(starts, desc="intervention sets", disable=not progress, unit="pass"):
            sets = intervention_sets[start : start + chunk]
            edits: dict[str, list[tuple[int, Intervention]]] = defaultdict(list)
            for index, interventions in enumerate(sets):
                for iv in interventions:
                    edits[iv.hook].append((index, iv))
            hooks = [(hook, _chunk_hook(batch, pairs)) for hook, pairs in edits.items()]
            chunk_ids = ids.repeat(len(sets), 1)
            chunk_mask = None if mask is None else mask.repeat(len(sets), 1)
            installation = model._install(hooks, read_only=False)
            try:
                logits = model._forward(chunk_ids, chunk_mask)
            finally:
                installation.remove()
            for per_set_logits in logits.split(batch, dim=0):
                if reduce is None:
                    outputs.append(per_set_logits)
                    continue
                reduced = reduce(per_set_logits)
                # a view (e.g. logits[:, -1]) would keep the whole pass's logits alive: copy it out
                outputs.append(
                    reduced.clone()
                    if isinstance(reduced, torch.Tensor) and reduced._base is not None
                    else reduced
                )
            del logits
    return torch.stack(outputs)
