"""High-level model of hierarchical equality: left = (W == X), right = (Y == Z), output = (left == right).

The intermediate variables `left` and `right` are the usual targets of interchange interventions
(Geiger et al., 2022). Inputs are drawn like `interp.tasks.hierarchical_equality`: `left` and
`right` are each true with probability 1/2.

    >>> tm = build()
    >>> tm.causal.run({"W": "red", "X": "red", "Y": "blue", "Z": "green"})["output"]
    False
"""

from __future__ import annotations

import numpy as np

from circuits.abstraction.causal_model import CausalModel, Setting
from circuits.abstraction.highlevel.base import TaskModel
from interp.tasks.vocab import SYMBOLS

BOOLS = (True, False)


def _sampler(symbols: tuple[str, ...]):
    def sample(rng: np.random.Generator) -> Setting:
        out: Setting = {}
        for a, b in (("W", "X"), ("Y", "Z")):
            first = str(rng.choice(symbols))
            equal = bool(rng.random() < 0.5)
            out[a] = first
            out[b] = first if equal else str(rng.choice([s for s in symbols if s != first]))
        return out

    return sample


def _words(setting: Setting) -> tuple[list[str], dict[str, int]]:
    words = [setting["W"], setting["X"], setting["Y"], setting["Z"], "?"]
    return words, {"W": 1, "X": 2, "Y": 3, "Z": 4, "END": 5}


def build(n_symbols: int = len(SYMBOLS)) -> TaskModel:
    """The hierarchical-equality task model over the first `n_symbols` symbols."""
    symbols = SYMBOLS[:n_symbols]
    causal = CausalModel(
        values={
            "W": symbols,
            "X": symbols,
            "Y": symbols,
            "Z": symbols,
            "left": BOOLS,
            "right": BOOLS,
            "output": BOOLS,
        },
        parents={"left": ("W", "X"), "right": ("Y", "Z"), "output": ("left", "right")},
        mechanisms={
            "left": lambda w, x: w == x,
            "right": lambda y, z: y == z,
            "output": lambda left, right: left == right,
        },
        outputs=("output",),
        sampler=_sampler(symbols),
    )
    return TaskModel(
        name="hierarchical_equality",
        causal=causal,
        words=_words,
        answer_words=("true", "false"),
        answer_word=lambda v: "true" if v else "false",
        description="left = (W == X), right = (Y == Z), output = (left == right)",
        filler=symbols,
    )
