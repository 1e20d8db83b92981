"""Data files the viewer reads beside a result's figures: attention patterns on a prompt.

`attention.json` holds one prompt's tokens (as display strings, see `interp.view.tokens`) and every
head's pattern, so clicking a head in a circuit shows where it attends:
`{"schema": "interp-toolkit/attention", "version": 1, "tokens": [str], "pieces": [str],
"patterns": [layer][head][q_pos][k_pos]}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from interp.io import atomic_write_json
from interp.view.tokens import display_tokens, scheme_of

ATTENTION_FILE = "attention.json"
ATTENTION_SCHEMA, ATTENTION_VERSION = "interp-toolkit/attention", 1


def attention_payload(pieces: Sequence[str], patterns: torch.Tensor, scheme: str | None = None) -> dict:
    """The `attention.json` dict of one prompt: `patterns` [layer, head, q_pos, k_pos]."""
    if patterns.ndim != 4 or patterns.shape[-1] != len(pieces) or patterns.shape[-2] != len(pieces):
        raise ValueError(f"patterns {tuple(patterns.shape)} do not match {len(pieces)} tokens")
    return {
        "schema": ATTENTION_SCHEMA,
        "version": ATTENTION_VERSION,
        "tokens": display_tokens(pieces, scheme),
        "pieces": list(pieces),
        "patterns": patterns.float().cpu().round(decimals=4).tolist(),
    }


@torch.no_grad()
def record_attention(model: Any, ids: Sequence[int]) -> dict:
    """Run `model` (a `HookedModel`) on one prompt of token `ids` and return its `attention.json` dict.

    Example:
        >>> payload = record_attention(interp.load("ioi-tiny"), batch.clean[0].tolist())  # doctest: +SKIP
    """
    tokens = torch.tensor([list(ids)], device=model.device)  # [1, pos]
    _, cache = model.run_with_cache(tokens, names="blocks.*.attn.hook_pattern")
    patterns = cache.stack("attn.hook_pattern")[:, 0]  # [layer, head, q_pos, k_pos]
    if model.tokenizer is None:
        return attention_payload([f"<{int(i)}>" for i in ids], patterns, "words")
    pieces = model.tokenizer.convert_ids_to_tokens(list(map(int, ids)))
    return attention_payload(pieces, patterns, scheme_of(model.tokenizer))


def write_attention(folder: str | Path, payload: dict) -> Path:
    """Write an `attention_payload` to `folder/attention.json` atomically."""
    path = Path(folder) / ATTENTION_FILE
    atomic_write_json(path, payload)
    return path
