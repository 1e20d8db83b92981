"""Shared by the patching tests: a clean/corrupted pair of random token ids for the tiny models."""

from __future__ import annotations

import torch

from tests.tiny_models import VOCAB


def corrupted_pair(
    batch: int = 2, n_pos: int = 8, at: int = 3, seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted) token ids [batch, n_pos]: random tokens, corrupted differing only at position `at`."""
    clean = torch.randint(0, VOCAB, (batch, n_pos), generator=torch.Generator().manual_seed(seed))
    corrupted = clean.clone()
    corrupted[:, at] = (corrupted[:, at] + 5) % VOCAB
    return clean, corrupted
