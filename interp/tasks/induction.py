"""Induction: "... A B ... A" -> "B" (Olsson et al., 2022).

A prompt is `length` distinct random content words; the last word repeats an earlier one (A), and the
answer is the word that followed A the first time (B). Named positions: `A1` (first A), `B1` (the
token to copy, `A1 + 1`), `END` (the second A, last position). The positions of A and B vary per
example, the length does not (`length + 1` tokens with `<bos>`).

Corruption: the token at `B1` is replaced by a fresh word (not elsewhere in the prompt), which becomes
the corrupted answer and the clean `wrong` token. Differs from clean only at `B1`.

Expected mechanism: a previous-token head (at B1, attending to A1) and an induction head at END that
attends to B1 and copies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from interp.errors import InterpError
from interp.tasks.base import Task, _Builder
from interp.tasks.vocab import BOS_ID, EOS_ID, INDUCTION_POOL, TOKEN_ID

_POOL = tuple(dict.fromkeys(INDUCTION_POOL))
_POOL_IDS = torch.tensor([TOKEN_ID[w] for w in _POOL])


@dataclass(frozen=True)
class Induction(Task):
    """Single-token induction on random word sequences; see the module docstring.

    Example:
        >>> batch = Induction(length=12).generate(2, seed=0)
        >>> batch.clean_text[0], batch.variables["B"][0]
    """

    length: int = 20
    """Words per prompt (the prompt is `length + 1` tokens with `<bos>`)."""

    name: ClassVar[str] = "induction"
    corrupted_positions: ClassVar[tuple[str, ...]] = ("B1",)

    def __post_init__(self) -> None:
        if not 4 <= self.length <= len(_POOL) - 1:
            raise InterpError(f"induction length must be in 4..{len(_POOL) - 1}, got {self.length}")

    def _example(self, rng: np.random.Generator, builder: _Builder) -> None:
        picks = rng.choice(len(_POOL), size=self.length, replace=False)  # last one becomes the fresh B'
        words = [_POOL[i] for i in picks]
        fresh = words[-1]
        a1 = int(rng.integers(1, self.length - 1))  # token position of A (position 0 is <bos>)
        words[-1] = words[a1 - 1]
        corrupted = list(words)
        corrupted[a1] = fresh  # word index a1 is token position a1 + 1 = B1
        builder.add(
            words,
            corrupted,
            answer=TOKEN_ID[words[a1]],
            wrong=TOKEN_ID[fresh],
            positions={"A1": a1, "B1": a1 + 1, "END": self.length},
            variables={"A": words[a1 - 1], "B": words[a1], "A1": a1},
        )

    def training_batch(self, n: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """Half task prompts (supervised at END, right-padded), half `2 * length`-word sequences whose
        second part repeats the first at a random offset, supervised along the repeat: many induction
        targets per row make induction heads form quickly.
        """
        half = n // 2
        ids, labels = super().training_batch(n - half, rng)  # [n - half, length + 1]
        rep_ids, rep_labels = _repeated(half, 2 * self.length - 1, rng)  # [half, 2 * length]
        pad = rep_ids.shape[1] - ids.shape[1]
        ids = torch.cat([ids, torch.full((ids.shape[0], pad), EOS_ID)], dim=1)
        labels = torch.cat([labels, torch.full((labels.shape[0], pad), -100)], dim=1)
        return torch.cat([ids, rep_ids]), torch.cat([labels, rep_labels])


def _repeated(n: int, length: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Rows of `length` words: `s` distinct random words, then the first `length - s` of them again
    (`s` random per row, so the repeat's offset varies); labels run along the repeat.
    """
    ids = torch.full((n, length + 1), BOS_ID)  # [n, pos]
    labels = torch.full_like(ids, -100)
    for row in range(n):
        s = int(rng.integers((length + 1) // 2, length - 1))  # a prefix of s distinct words
        words = _POOL_IDS[rng.choice(len(_POOL), size=s, replace=False)]  # [s]
        ids[row, 1 : s + 1] = words
        ids[row, s + 1 :] = words[: length - s]
        labels[row, s + 1 : length] = words[1 : length - s]  # position s + j holds word j - 1 again
    return ids, labels
