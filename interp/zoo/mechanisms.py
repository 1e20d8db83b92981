"""Observed attention between a task's named positions, summarised for model cards.

For every head and every ordered pair of named positions (query, key) with the key before the query
in every prompt, the mean attention weight from query to key over a batch of clean prompts. Heads
whose strongest such weight passes a threshold are listed as, e.g.,
`"L1H2: END -> IO (0.93)"` (layer 1, head 2 attends from END to IO with mean weight 0.93).
These are observations to start a circuit analysis from, not verified mechanisms.
"""

from __future__ import annotations

import torch
from transformers import GPT2LMHeadModel

from interp.tasks import TaskBatch


def attention_to_positions(
    model: GPT2LMHeadModel, batch: TaskBatch
) -> dict[tuple[int, int, str, str], float]:
    """(layer, head, query name, key name) -> mean attention weight over `batch` (clean prompts)."""
    before = model.config._attn_implementation
    model.set_attn_implementation("eager")  # attention weights need the eager kernel
    try:
        with torch.no_grad():
            attentions = model(batch.clean, output_attentions=True).attentions  # layer x [batch, head, q, k]
    finally:
        model.set_attn_implementation(before)
    rows = torch.arange(len(batch))
    out = {}
    for q_name, q_pos in batch.positions.items():
        for k_name, k_pos in batch.positions.items():
            if not bool((k_pos < q_pos).all()):
                continue
            for layer, pattern in enumerate(attentions):
                weights = pattern[rows, :, q_pos, k_pos]  # [batch, head]
                for head, w in enumerate(weights.mean(0).tolist()):
                    out[(layer, head, q_name, k_name)] = w
    return out


def attention_summary(model: GPT2LMHeadModel, batch: TaskBatch, threshold: float = 0.3) -> list[str]:
    """One line per head whose strongest named-position attention is at least `threshold`.

    Example:
        >>> attention_summary(model, interp.tasks.get("ioi").generate(500, seed=1))
        ['L2H1: END -> IO (0.91)', 'L1H0: S2 -> S1 (0.74)']
    """
    best: dict[tuple[int, int], tuple[float, str, str]] = {}
    for (layer, head, q, k), w in attention_to_positions(model, batch).items():
        if w > best.get((layer, head), (-1.0, "", ""))[0]:
            best[(layer, head)] = (w, q, k)
    lines = sorted(
        ((w, f"L{layer}H{head}: {q} -> {k} ({w:.2f})") for (layer, head), (w, q, k) in best.items()),
        reverse=True,
    )
    return [line for w, line in lines if w >= threshold]
