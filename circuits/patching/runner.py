"""Shared plumbing of every sweep: inputs checked once, intervention sets run through `run_batched`,
forward passes counted (and reported in each result's `meta`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.patching.metrics import Metric, reducer, scalar
from interp.batched import bytes_per_example, default_budget
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs
from interp.interventions import Intervention

logger = logging.getLogger(__name__)

MODES = ("denoise", "noise")
CPU_TOKENS_PER_PASS = 2048
"""On CPU, sweeps run at most this many tokens (rows x positions) per forward pass by default. Larger
passes were measured slower per row on a shared 2-core machine (allocator and cache pressure): a
64-set resid_pre sweep of 8 pairs x 16 positions on a 4-layer GPT-2 took 1.5 s in 64-row passes and
7.7 s in 512-row passes; 8 plain 64-row forwards took 4.6 s against 9.0 s for one 512-row forward."""


def sweep_budget(model: HookedModel, n_pos: int) -> int:
    """Default memory budget of a sweep: `run_batched`'s, capped on CPU at `CPU_TOKENS_PER_PASS` tokens."""
    budget = default_budget(model.device)
    if model.device.type == "cpu":
        rows = max(1, CPU_TOKENS_PER_PASS // max(1, n_pos))
        budget = min(budget, rows * bytes_per_example(model, n_pos))
    return budget


def token_ids(model: HookedModel, inputs: Inputs) -> Tensor:
    """Token ids [batch, pos] of text or token inputs; padded text is refused (positions would not align)."""
    ids, mask = model.to_tokens(inputs)
    if mask is not None:
        raise InterpError(
            "inputs of different token lengths were padded; patching compares positions across prompts, "
            "so give prompts of one length (or token ids)"
        )
    return ids


def pair(model: HookedModel, clean: Inputs, corrupted: Inputs) -> tuple[Tensor, Tensor]:
    """Clean and corrupted token ids, both [batch, pos], checked to have the same shape."""
    clean_ids, corrupted_ids = token_ids(model, clean), token_ids(model, corrupted)
    if clean_ids.shape != corrupted_ids.shape:
        raise InterpError(
            f"clean and corrupted inputs must have the same shape [batch, pos], got {tuple(clean_ids.shape)} "
            f"and {tuple(corrupted_ids.shape)}: patching swaps activations position by position, so "
            "prompts must be aligned token for token (or patch named positions with positions={name: [batch]})"
        )
    return clean_ids, corrupted_ids


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InterpError(
            f"mode must be 'denoise' (patch clean into corrupted) or 'noise' (the reverse), got {mode!r}"
        )


@contextlib.contextmanager
def count_forwards(model: HookedModel) -> Iterator[list[int]]:
    """Count forward passes of the wrapped model inside the block: yields a one-element list."""
    count = [0]

    def bump(module: torch.nn.Module, args: tuple) -> None:
        count[0] += 1

    handle = model.hf_model.register_forward_pre_hook(bump)
    try:
        yield count
    finally:
        handle.remove()


@dataclass(frozen=True)
class Baselines:
    """The metric on the clean and the corrupted run, and the source run's cache."""

    clean: float
    corrupted: float
    cache: dict[str, Tensor]  # hook name -> activation of the *source* run (clean when denoising)


def baselines(
    model: HookedModel,
    clean_ids: Tensor,
    corrupted_ids: Tensor,
    metric: Metric,
    names: Sequence[str],
    source: str = "clean",
) -> Baselines:
    """Two forward passes: the source run (`"clean"` or `"corrupted"`) cached at `names`, the other plain."""
    with torch.no_grad():
        source_ids, other_ids = (
            (clean_ids, corrupted_ids) if source == "clean" else (corrupted_ids, clean_ids)
        )
        source_logits, cache = model.run_with_cache(source_ids, names=list(names))
        other_logits = model(other_ids)
        m_source, m_other = scalar(metric, source_logits).item(), scalar(metric, other_logits).item()
    m_clean, m_corrupted = (m_source, m_other) if source == "clean" else (m_other, m_source)
    return Baselines(m_clean, m_corrupted, cache.to_dict())


def run_sets(
    model: HookedModel,
    ids: Tensor,
    sets: Sequence[Sequence[Intervention]],
    metric: Metric,
    memory_budget: int | None = None,
) -> tuple[Tensor, int]:
    """The metric under each intervention set, [n_sets], and the number of forward passes it took."""
    if not sets:
        return torch.zeros(0), 0
    budget = memory_budget or sweep_budget(model, ids.shape[1])
    with torch.no_grad(), count_forwards(model) as passes:
        values = model.run_batched(ids, sets, reduce=reducer(metric), memory_budget=budget)
    logger.debug("%d intervention sets in %d forward passes", len(sets), passes[0])
    return values.float().cpu(), passes[0]


def token_labels(model: HookedModel, ids: Tensor) -> tuple[str, ...]:
    """Tick labels for the positions of `ids[0]`: `"3 Mary"` (token strings when there is a tokenizer)."""
    row = ids[0].tolist()
    tok = model.tokenizer
    words = tok.convert_ids_to_tokens(row) if tok is not None else [str(i) for i in row]
    return tuple(f"{i} {w}" for i, w in enumerate(words))
