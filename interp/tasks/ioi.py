"""Indirect object identification (Wang et al., 2022).

"When Mary and John went to the store, John gave a drink to" -> " Mary". Two names are introduced
(IO and S, in either order: ABBA or BABA), the subject S is repeated, and the answer is the name
that appears once. Five templates, all 14 words long (15 tokens with `<bos>`), vary where the names
sit. Named positions: `IO`, `S1` (first S), `S2` (repeated S), `END` (last token, "to").

Corruptions (`corruption=`):
  * `"s2_io"` (default): S2 is replaced by the IO name, so the corrupted answer is S and the clean
    logit difference (IO minus S) flips sign. Differs from clean only at `S2`.
  * `"abc"`: IO, S1 and S2 are replaced by three fresh distinct names; no name repeats, so the
    corrupted prompt carries no IOI signal. Differs only at `IO`, `S1`, `S2`.

A small transformer is expected to solve it the way GPT-2 small does: heads at S2 that attend to S1
(duplicate-token) and heads at END that attend to and copy the name that is not duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from interp.errors import InterpError
from interp.tasks.base import Task, _Builder
from interp.tasks.vocab import IOI_VERBS, NAMES, OBJECTS, PLACES, TOKEN_ID

# {A} {B}: the two introduced names; {C}: the repeated subject; every template is 14 words
TEMPLATES: tuple[str, ...] = (
    "When {A} and {B} went to the {P} , {C} {V} a {O} to",
    "While {A} and {B} were at the {P} , {C} {V} a {O} to",
    "After {A} and {B} arrived at the {P} , {C} {V} a {O} to",
    "{A} and {B} went to the {P} , then {C} {V} a {O} to",
    "At the {P} , {A} and {B} talked and {C} {V} a {O} to",
)
CORRUPTIONS = ("s2_io", "abc")


@dataclass(frozen=True)
class IOI(Task):
    """Indirect object identification; see the module docstring.

    Example:
        >>> batch = IOI().generate(2, seed=0)
        >>> batch.clean_text[0], batch.variables["IO"][0]
    """

    corruption: str = "s2_io"
    """`"s2_io"` (replace S2 with the IO name) or `"abc"` (replace all three names)."""
    templates: tuple[int, ...] = tuple(range(len(TEMPLATES)))
    """Indices into `TEMPLATES` to draw from."""

    name: ClassVar[str] = "ioi"
    corrupted_positions: ClassVar[tuple[str, ...]] = ("IO", "S1", "S2")

    def __post_init__(self) -> None:
        if self.corruption not in CORRUPTIONS:
            raise InterpError(f"ioi corruption must be one of {CORRUPTIONS}, got {self.corruption!r}")
        if not self.templates or any(not 0 <= t < len(TEMPLATES) for t in self.templates):
            raise InterpError(f"ioi templates must be indices in 0..{len(TEMPLATES) - 1}")

    def _example(self, rng: np.random.Generator, builder: _Builder) -> None:
        t = int(rng.choice(self.templates))
        io, s, *fresh = (str(x) for x in rng.choice(NAMES, size=5, replace=False))
        order = "ABBA" if rng.random() < 0.5 else "BABA"
        a, b = (io, s) if order == "ABBA" else (s, io)
        slots = {"P": str(rng.choice(PLACES)), "V": str(rng.choice(IOI_VERBS)), "O": str(rng.choice(OBJECTS))}
        words = TEMPLATES[t].split()
        clean = [{"{A}": a, "{B}": b, "{C}": s}.get(w) or _fill(w, slots) for w in words]
        a_pos, b_pos, c_pos = (words.index(k) + 1 for k in ("{A}", "{B}", "{C}"))  # +1 for <bos>
        io_pos, s1_pos = (a_pos, b_pos) if order == "ABBA" else (b_pos, a_pos)
        corrupted = list(clean)
        if self.corruption == "s2_io":
            corrupted[c_pos - 1] = io
        else:  # abc: three fresh names in the three name slots
            for pos, new in zip((io_pos, s1_pos, c_pos), fresh, strict=True):
                corrupted[pos - 1] = new
        builder.add(
            clean,
            corrupted,
            answer=TOKEN_ID[io],
            wrong=TOKEN_ID[s],
            positions={"IO": io_pos, "S1": s1_pos, "S2": c_pos, "END": len(words)},
            variables={"IO": io, "S": s, "order": order, "template": t, **slots},
        )


def _fill(word: str, slots: dict[str, str]) -> str:
    return slots[word[1:-1]] if word.startswith("{") else word
