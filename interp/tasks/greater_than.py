"""Greater-than (Hanna et al., 2023): "The war lasted from the year 1732 to the year 17" -> YY > 32.

Start years are single tokens `CCYY` (centuries 15-17, YY in 02..98); the end year is completed by a
two-digit token `00`..`99`. Every YY' > YY is correct (`TaskBatch.correct`), so `accuracy` asks that
the argmax is any later year and `prob` is the probability mass on all later years. `answer` is the
smallest correct year (YY + 1) and `wrong` the largest incorrect one (YY), so `logit_diff` measures
how sharp the threshold is. Prompts are 11 words (12 tokens). Named positions: `NOUN`, `YEAR` (the
start year), `END` (the final century token).

Corruption: the start year becomes `CC01` (the "01-02" baseline of Hanna et al.: every answer is then
correct, so the clean logit difference collapses). Differs from clean only at `YEAR`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from interp.errors import InterpError
from interp.tasks.base import Task, _Builder
from interp.tasks.vocab import CENTURIES, GT_NOUNS, TOKEN_ID

TEMPLATE = "The {N} lasted from the year {Y} to the year {C}"


@dataclass(frozen=True)
class GreaterThan(Task):
    """Year comparison; see the module docstring.

    Example:
        >>> batch = GreaterThan().generate(2, seed=0)
        >>> batch.clean_text[0], batch.variables["yy"][0]
    """

    min_yy: int = 2
    """Smallest start year within the century (at least 2, so that `01` stays below it)."""
    max_yy: int = 98
    """Largest start year within the century (at most 98, so a later year exists)."""

    name: ClassVar[str] = "greater_than"
    corrupted_positions: ClassVar[tuple[str, ...]] = ("YEAR",)

    def __post_init__(self) -> None:
        if not 2 <= self.min_yy <= self.max_yy <= 98:
            raise InterpError("greater_than needs 2 <= min_yy <= max_yy <= 98")

    def _example(self, rng: np.random.Generator, builder: _Builder) -> None:
        century = int(rng.choice(CENTURIES))
        yy = int(rng.integers(self.min_yy, self.max_yy + 1))
        noun = str(rng.choice(GT_NOUNS))
        words = TEMPLATE.split()
        slots = {"{N}": noun, "{Y}": f"{century}{yy:02d}", "{C}": str(century)}
        clean = [slots.get(w, w) for w in words]
        year_pos = words.index("{Y}") + 1  # +1 for <bos>
        corrupted = list(clean)
        corrupted[year_pos - 1] = f"{century}01"
        builder.add(
            clean,
            corrupted,
            answer=TOKEN_ID[f"{yy + 1:02d}"],
            wrong=TOKEN_ID[f"{yy:02d}"],
            positions={"NOUN": words.index("{N}") + 1, "YEAR": year_pos, "END": len(words)},
            variables={"century": century, "yy": yy, "noun": noun},
            correct=tuple(TOKEN_ID[f"{y:02d}"] for y in range(yy + 1, 100)),
        )
