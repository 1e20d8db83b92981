"""High-level model of indirect object identification: which introduced name is repeated, and the other one.

Inputs: the two introduced names `A`, `B` (in prompt order), the repeated subject `C` (one of them)
and the template slots. `dup_first` = (C == A) is the positional "which name is duplicated" signal
that S-inhibition heads carry to the end (Wang et al., 2022); `answer` = B if `dup_first` else A.
Interchanging `dup_first` from a source with the other order flips which of the base's own names
is predicted.

    >>> tm = build()
    >>> tm.causal.run({"A": "Mary", "B": "John", "C": "John", "template": 0, "P": "store", "V": "gave", "O": "drink"})["answer"]
    'Mary'
"""

from __future__ import annotations

import numpy as np

from circuits.abstraction.causal_model import CausalModel, Setting
from circuits.abstraction.highlevel.base import TaskModel
from interp.tasks.ioi import TEMPLATES
from interp.tasks.vocab import IOI_VERBS, NAMES, OBJECTS, PLACES


def _sampler(templates: tuple[int, ...]):
    def sample(rng: np.random.Generator) -> Setting:
        a, b = (str(x) for x in rng.choice(NAMES, size=2, replace=False))
        return {
            "A": a,
            "B": b,
            "C": a if rng.random() < 0.5 else b,
            "template": int(rng.choice(templates)),
            "P": str(rng.choice(PLACES)),
            "V": str(rng.choice(IOI_VERBS)),
            "O": str(rng.choice(OBJECTS)),
        }

    return sample


def _words(s: Setting) -> tuple[list[str], dict[str, int]]:
    template = TEMPLATES[s["template"]].split()
    fill = {"{A}": s["A"], "{B}": s["B"], "{C}": s["C"], "{P}": s["P"], "{V}": s["V"], "{O}": s["O"]}
    words = [fill.get(w, w) for w in template]
    a, b, c = (template.index(k) + 1 for k in ("{A}", "{B}", "{C}"))  # +1 for <bos>
    io, s1 = (b, a) if s["C"] == s["A"] else (a, b)
    return words, {"A": a, "B": b, "IO": io, "S1": s1, "S2": c, "END": len(words)}


def build(templates: tuple[int, ...] = tuple(range(len(TEMPLATES)))) -> TaskModel:
    """The IOI task model over the given template indices."""
    causal = CausalModel(
        values={
            "A": NAMES,
            "B": NAMES,
            "C": NAMES,
            "template": tuple(range(len(TEMPLATES))),
            "P": PLACES,
            "V": IOI_VERBS,
            "O": OBJECTS,
            "dup_first": (True, False),
            "answer": NAMES,
        },
        parents={"dup_first": ("A", "C"), "answer": ("A", "B", "dup_first")},
        mechanisms={
            "dup_first": lambda a, c: a == c,
            "answer": lambda a, b, dup_first: b if dup_first else a,
        },
        outputs=("answer",),
        sampler=_sampler(templates),
    )
    return TaskModel(
        name="ioi",
        causal=causal,
        words=_words,
        answer_words=NAMES,
        answer_word=str,
        description="dup_first = (C == A); answer = B if dup_first else A",
        filler=OBJECTS,
    )
