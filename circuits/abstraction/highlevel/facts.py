"""High-level model of factual recall: attribute = knowledge_base[entity][rel].

Inputs: `subject` ("First Last", one of the knowledge base's subjects) and `relation` (city, sport
or instrument). `entity` = subject is the subject as the network carries it (e.g. at its last token,
where ROME-style edits act, or moved to the end); `rel` = relation is the relation as read from the
prompt's wording; the output `attribute` looks the pair up in the same made-up knowledge base as
`interp.tasks.facts` (same `n_subjects` and `kb_seed`). Interchanging `entity` from a source asks
for the source subject's attribute under the base's relation; interchanging `rel`, for the base
subject's attribute under the source's relation.

    >>> tm = build()
    >>> s = tm.causal.sample_input(np.random.default_rng(0))
    >>> tm.causal.run(s)["attribute"]
"""

from __future__ import annotations

import numpy as np

from circuits.abstraction.causal_model import CausalModel, Setting
from circuits.abstraction.highlevel.base import TaskModel
from interp.tasks.facts import RELATIONS, Facts
from interp.tasks.vocab import CITIES, INSTRUMENTS, SPORTS

ATTRIBUTES = tuple(dict.fromkeys(CITIES + SPORTS + INSTRUMENTS))


def _words(s: Setting) -> tuple[list[str], dict[str, int]]:
    first, last = s["subject"].split(" ")
    phrase = RELATIONS[s["relation"]][0].split()
    words = [first, last, *phrase]
    return words, {"SUBJ_FIRST": 1, "SUBJ_LAST": 2, "REL": 3, "END": len(words)}


def build(n_subjects: int = 64, kb_seed: int = 0) -> TaskModel:
    """The facts task model over the knowledge base of `interp.tasks.get("facts", n_subjects, kb_seed)`."""
    kb = {
        f"{f} {last}": attrs
        for (f, last), attrs in Facts(n_subjects=n_subjects, kb_seed=kb_seed).knowledge_base().items()
    }
    subjects = tuple(kb)
    relations = tuple(RELATIONS)

    def sample(rng: np.random.Generator) -> Setting:
        return {
            "subject": subjects[int(rng.integers(len(subjects)))],
            "relation": relations[int(rng.integers(3))],
        }

    causal = CausalModel(
        values={
            "subject": subjects,
            "relation": relations,
            "entity": subjects,
            "rel": relations,
            "attribute": ATTRIBUTES,
        },
        parents={"entity": ("subject",), "rel": ("relation",), "attribute": ("entity", "rel")},
        mechanisms={"entity": lambda s: s, "rel": lambda r: r, "attribute": lambda e, r: kb[e][r]},
        outputs=("attribute",),
        sampler=sample,
    )
    return TaskModel(
        name="facts",
        causal=causal,
        words=_words,
        answer_words=ATTRIBUTES,
        answer_word=str,
        description="entity = subject; rel = relation; attribute = knowledge_base[entity][rel]",
        filler=("the", "of", "in"),
    )
