"""Hierarchical equality (Geiger et al., 2022): "red red blue green?" -> "false".

Four symbols W X Y Z; the answer is `true` when (W == X) == (Y == Z). The high-level causal model has
two intermediate variables, `left` = (W == X) and `right` = (Y == Z), and `output` = (left == right),
the natural target for interchange-intervention experiments. `left` and `right` are each true with
probability 1/2. Prompts are 5 words (6 tokens). Named positions: `W`, `X`, `Y`, `Z`, `END` ("?").

Corruption (`corrupt=`): `"left"` (default) replaces X so that `left` flips, or `"right"` replaces Z
so that `right` flips; either way the output flips, and `wrong` is the corrupted answer. Differs from
clean only at `X` (or only at `Z`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from interp.errors import InterpError
from interp.tasks.base import Task, _Builder
from interp.tasks.vocab import SYMBOLS, TOKEN_ID

SIDES = ("left", "right")


@dataclass(frozen=True)
class HierarchicalEquality(Task):
    """(W == X) == (Y == Z); see the module docstring.

    Example:
        >>> batch = HierarchicalEquality().generate(2, seed=0)
        >>> batch.clean_text[0], batch.variables["output"][0]
    """

    corrupt: str = "left"
    """Which pair the corruption flips: `"left"` (changes X) or `"right"` (changes Z)."""
    n_symbols: int = len(SYMBOLS)
    """How many of the symbol words to draw from (2..10)."""

    name: ClassVar[str] = "hierarchical_equality"

    def __post_init__(self) -> None:
        if self.corrupt not in SIDES:
            raise InterpError(f"hierarchical_equality corrupt must be one of {SIDES}, got {self.corrupt!r}")
        if not 3 <= self.n_symbols <= len(SYMBOLS):
            raise InterpError(f"hierarchical_equality n_symbols must be in 3..{len(SYMBOLS)}")

    @property
    def corrupted_positions(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("X",) if self.corrupt == "left" else ("Z",)

    def _example(self, rng: np.random.Generator, builder: _Builder) -> None:
        symbols = SYMBOLS[: self.n_symbols]
        left, right = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        w, x = _pair(rng, symbols, left)
        y, z = _pair(rng, symbols, right)
        clean = [w, x, y, z, "?"]
        corrupted = list(clean)
        if self.corrupt == "left":
            corrupted[1] = _pair(rng, symbols, not left, first=w)[1]
        else:
            corrupted[3] = _pair(rng, symbols, not right, first=y)[1]
        output = left == right
        builder.add(
            clean,
            corrupted,
            answer=TOKEN_ID[str(output).lower()],
            wrong=TOKEN_ID[str(not output).lower()],
            positions={"W": 1, "X": 2, "Y": 3, "Z": 4, "END": 5},
            variables={"left": left, "right": right, "output": output, "W": w, "X": x, "Y": y, "Z": z},
        )

    def training_batch(self, n: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """Task prompts supervised at END with the output and, as auxiliary targets, at X with
        `left` and at Z with `right`: the high-level model's intermediate variables are trained to be
        computed at those positions (the output alone is an XNOR, which gradient descent finds slowly).
        """
        batch = self.generate(n, seed=int(rng.integers(2**62)))
        labels = torch.full_like(batch.clean, -100)  # [batch, pos]
        bool_id = {True: TOKEN_ID["true"], False: TOKEN_ID["false"]}
        labels[:, 2] = torch.tensor([bool_id[v] for v in batch.variables["left"]])
        labels[:, 4] = torch.tensor([bool_id[v] for v in batch.variables["right"]])
        labels[:, 5] = batch.answer
        return batch.clean, labels


def _pair(
    rng: np.random.Generator, symbols: tuple[str, ...], equal: bool, first: str | None = None
) -> tuple[str, str]:
    a = first if first is not None else str(rng.choice(symbols))
    b = a if equal else str(rng.choice([s for s in symbols if s != a]))
    return a, b
