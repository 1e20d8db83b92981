"""Factual recall: "Alice Smith was born in the city of" -> "Paris" (for causal tracing and editing).

A fixed, made-up knowledge base (a deterministic function of `kb_seed`) gives each of `n_subjects`
two-token subjects (first name + surname) one city, one sport and one instrument. A prompt asks for
one relation of one subject; all three relation templates are 8 words (9 tokens):

    {F} {L} was born in the city of          -> city
    {F} {L} is known for the sport of        -> sport
    {F} {L} is a musician who plays the      -> instrument

Named positions: `SUBJ_FIRST`, `SUBJ_LAST` (the subject's last token, where ROME-style edits act),
`REL` (first relation word), `END`.

Corruption: the subject is replaced by another subject whose attribute for the same relation differs;
`wrong` is that subject's attribute. Differs from clean only at `SUBJ_FIRST` and `SUBJ_LAST`.
A model that solves the task has memorised the knowledge base: "held-out" samples are fresh draws
of (subject, relation), not unseen facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from interp.errors import InterpError
from interp.tasks.base import Task, _Builder
from interp.tasks.vocab import CITIES, INSTRUMENTS, NAMES, SPORTS, SURNAMES, TOKEN_ID

RELATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "city": ("was born in the city of", CITIES),
    "sport": ("is known for the sport of", SPORTS),
    "instrument": ("is a musician who plays the", INSTRUMENTS),
}


@dataclass(frozen=True)
class Facts(Task):
    """Subject -> attribute recall over a made-up knowledge base; see the module docstring.

    Example:
        >>> task = Facts()
        >>> task.knowledge_base()[("Alice", "Smith")]  # {"city": ..., "sport": ..., "instrument": ...}
        >>> task.generate(2, seed=0).clean_text[0]
    """

    n_subjects: int = 64
    """How many subjects the knowledge base holds."""
    kb_seed: int = 0
    """Seed of the knowledge base itself (a model trained on one knowledge base knows only that one)."""

    name: ClassVar[str] = "facts"
    corrupted_positions: ClassVar[tuple[str, ...]] = ("SUBJ_FIRST", "SUBJ_LAST")

    def __post_init__(self) -> None:
        if not 8 <= self.n_subjects <= len(NAMES) * len(SURNAMES):
            raise InterpError(f"facts n_subjects must be in 8..{len(NAMES) * len(SURNAMES)}")

    @cached_property
    def _kb(self) -> tuple[tuple[tuple[str, str], dict[str, str]], ...]:
        rng = np.random.default_rng([self.kb_seed, 0xFAC75])
        pairs = rng.choice(len(NAMES) * len(SURNAMES), size=self.n_subjects, replace=False)
        subjects = [(NAMES[p // len(SURNAMES)], SURNAMES[p % len(SURNAMES)]) for p in pairs]
        return tuple(
            (subj, {rel: str(rng.choice(values)) for rel, (_, values) in RELATIONS.items()})
            for subj in subjects
        )

    def knowledge_base(self) -> dict[tuple[str, str], dict[str, str]]:
        """(first, last) -> {relation: attribute}, in a fixed order."""
        return {subj: dict(attrs) for subj, attrs in self._kb}

    def _example(self, rng: np.random.Generator, builder: _Builder) -> None:
        kb = self._kb
        relation = str(rng.choice(list(RELATIONS)))
        (first, last), attrs = kb[int(rng.integers(len(kb)))]
        others = [(s, a) for s, a in kb if a[relation] != attrs[relation]]
        (first2, last2), attrs2 = others[int(rng.integers(len(others)))]
        phrase = RELATIONS[relation][0].split()
        clean, corrupted = [first, last, *phrase], [first2, last2, *phrase]
        builder.add(
            clean,
            corrupted,
            answer=TOKEN_ID[attrs[relation]],
            wrong=TOKEN_ID[attrs2[relation]],
            positions={"SUBJ_FIRST": 1, "SUBJ_LAST": 2, "REL": 3, "END": len(clean)},
            variables={"subject": f"{first} {last}", "relation": relation, "attribute": attrs[relation]},
        )
