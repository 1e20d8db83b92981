"""Causal tracing (Meng et al. 2022, ROME): where does the model recall a fact about a subject?

Algorithm:
  1. Clean run: the prompt as is; cache the states that will be restored (the residual stream after
     each block for `kind="resid"`, or each block's `mlp_out` / `attn_out`).
  2. Corrupted runs: Gaussian noise added to the token embeddings (`hook_embed`) of the subject's
     tokens only, with standard deviation `noise` x the std of the model's token-embedding matrix
     (ROME: 3 x the embedding std), `samples` independent draws per prompt.
  3. Restored runs: each corrupted run again, with the clean state of one (layer, position) put back;
     for `mlp` / `attn`, the states of a window of `window` consecutive layers around the layer (ROME
     uses windows of 10 MLP or attention layers to show their joint role).
  4. Indirect effect of a state = metric(restored) - metric(corrupted), averaged over draws and the
     batch; the total effect is metric(clean) - metric(corrupted). With the metric the probability of
     the correct attribute, large indirect effects at the subject's last token in middle MLP layers
     are ROME's signature of stored facts.
Every (state, draw) pair is one intervention set of a single `run_batched` call.

    >>> res = causal_tracing(model, batch.clean, subject=(batch.positions["SUBJ_FIRST"], batch.positions["SUBJ_LAST"]),
    ...                      metric=batch.prob, config=TraceConfig(kind="mlp"))
    >>> res.values.shape  # [layer, position] of indirect effects
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from circuits.patching.metrics import Metric, scalar
from circuits.patching.runner import run_sets, token_ids, token_labels
from circuits.patching.sites import check_layers, check_positions
from circuits.results import LabelledArray
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs
from interp.interventions import Add, Intervention, Patch

TRACE_HOOKS = {"resid": "hook_resid_post", "mlp": "hook_mlp_out", "attn": "hook_attn_out"}


@dataclass(frozen=True)
class TraceConfig:
    """How causal tracing corrupts and restores."""

    kind: str = "resid"
    """What is restored: `"resid"` (hidden state after a block), `"mlp"` (MLP output), `"attn"`."""
    window: int = 1
    """Consecutive layers restored together, centred on the layer (ROME: 10 for MLP/attention)."""
    noise: float = 3.0
    """Noise std as a multiple of the std of the token-embedding matrix."""
    samples: int = 10
    """Independent noise draws per prompt."""
    seed: int = 0
    """Seed of the noise."""

    def __post_init__(self) -> None:
        if self.kind not in TRACE_HOOKS:
            raise InterpError(f"trace kind must be one of {', '.join(TRACE_HOOKS)}, got {self.kind!r}")
        if self.window < 1 or self.samples < 1 or self.noise < 0:
            raise InterpError("trace window and samples must be >= 1 and noise >= 0")


def subject_mask(subject: Tensor | tuple, batch: int, n_pos: int) -> Tensor:
    """[batch, pos] bool from a mask ([pos] or [batch, pos]) or an inclusive (first, last) span.

    `first` / `last` are ints or [batch] tensors (e.g. a task's SUBJ_FIRST / SUBJ_LAST positions).
    """
    if isinstance(subject, Tensor) and subject.dtype == torch.bool:
        mask = subject.expand(batch, -1) if subject.ndim == 1 else subject
        if tuple(mask.shape) != (batch, n_pos):
            raise InterpError(f"subject mask has shape {tuple(subject.shape)}, expected [{batch}, {n_pos}]")
        return mask.cpu()
    first, last = (torch.as_tensor(x).long().reshape(-1).expand(batch).cpu() for x in subject)
    if bool(((first < 0) | (last >= n_pos) | (first > last)).any()):
        raise InterpError(f"subject span out of range for inputs of {n_pos} positions")
    pos = torch.arange(n_pos)
    return (pos[None] >= first[:, None]) & (pos[None] <= last[:, None])


def embedding_noise(model: HookedModel, mask: Tensor, config: TraceConfig) -> Tensor:
    """Noise [samples, batch, pos, d_model], zero outside `mask` [batch, pos]."""
    std = float(model.hf_model.get_input_embeddings().weight.detach().float().std())
    generator = torch.Generator().manual_seed(config.seed)
    noise = torch.randn(config.samples, *mask.shape, model.cfg.d_model, generator=generator)
    return (noise * config.noise * std * mask[None, :, :, None]).to(model.device, model.dtype)


def _groups(positions: Sequence[int | Sequence[int]] | None, n_pos: int) -> list[tuple[int, ...]]:
    if positions is None:
        return [(p,) for p in range(n_pos)]
    groups = [tuple(p) if isinstance(p, Sequence) else (p,) for p in positions]
    return [tuple(check_positions(g, n_pos, 1)) for g in groups]  # type: ignore[arg-type]


def causal_tracing(
    model: HookedModel,
    inputs: Inputs,
    subject: Tensor | tuple,
    metric: Metric,
    config: TraceConfig = TraceConfig(),
    *,
    layers: Sequence[int] | None = None,
    positions: Sequence[int | Sequence[int]] | None = None,
    position_labels: Sequence[str] | None = None,
    normalise_metric: bool = False,
    memory_budget: int | None = None,
) -> LabelledArray:
    """Indirect effect of restoring each (layer, position) state, values [layer, position].

    `subject`: which tokens get noise (see `subject_mask`). `positions`: positions to restore, each an
    index or a group restored together (default: each position). `normalise_metric`: divide by the
    total effect (1 = fully restored).

    Example:
        >>> facts = interp.tasks.get("facts").generate(16, seed=0)
        >>> res = causal_tracing(model, facts.clean, (facts.positions["SUBJ_FIRST"], facts.positions["SUBJ_LAST"]),
        ...                      facts.prob, TraceConfig(kind="mlp", window=1))
        >>> res.argmax()  # {'layer': '0', 'position': '2 Smith'}
    """
    ids = token_ids(model, inputs)
    batch, n_pos = ids.shape
    mask = subject_mask(subject, batch, n_pos)
    noise = embedding_noise(model, mask, config)  # [samples, batch, pos, d_model]
    chosen = check_layers(model, layers)
    groups = _groups(positions, n_pos)
    n_layers = model.cfg.n_layers
    hook = TRACE_HOOKS[config.kind]
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(ids, names=[f"blocks.{x}.{hook}" for x in range(n_layers)])
        m_clean = scalar(metric, clean_logits).item()
    corrupt = [[Add("hook_embed", vector=noise[i])] for i in range(config.samples)]
    sets: list[list[Intervention]] = list(corrupt)
    for layer in chosen:
        low = max(0, min(layer - config.window // 2, n_layers - config.window))
        window = range(low, min(n_layers, low + config.window))
        for group in groups:
            restore = [
                Patch(f"blocks.{x}.{hook}", value=cache[f"blocks.{x}.{hook}"], positions=group)
                for x in window
            ]
            sets += [[*noisy, *restore] for noisy in corrupt]
    values, passes = run_sets(model, ids, sets, metric, memory_budget)
    m_corrupted = values[: config.samples].mean().item()
    restored = values[config.samples :].reshape(len(chosen), len(groups), config.samples).mean(-1)
    effect = restored - m_corrupted
    total = m_clean - m_corrupted
    if normalise_metric:
        if abs(total) < 1e-12:
            raise InterpError(
                "the noise does not change the metric (total effect 0): nothing to normalise by"
            )
        effect = effect / total
    ticks = position_labels if position_labels is not None else token_labels(model, ids)
    labels = {
        "layer": tuple(str(x) for x in chosen),
        "position": tuple("+".join(ticks[p] for p in g) for g in groups),
    }
    meta = {
        "method": "causal_tracing",
        "config": asdict(config),
        "hook": hook,
        "normalised": normalise_metric,
        "metric_clean": m_clean,
        "metric_corrupted": m_corrupted,
        "total_effect": total,
        "forward_passes": passes + 1,
    }
    name = "indirect effect / total effect" if normalise_metric else "indirect effect"
    return LabelledArray(effect, ("layer", "position"), labels, name, meta)
