"""CausaLM says so when its concept-blind copy still lets a (whitened) linear probe read the concept.

Its adversary reads per-dimension standardised activations, so on an ill-conditioned site it misses
low-variance directions: on `concepts-tiny` a whitened held-out probe still read food at 0.96 after
the default 150 steps, while the raw float32 probe it used to log showed 0.64 on training data.
"""

from __future__ import annotations

import logging

import interp
from circuits.concepts.data import all_edits
from circuits.concepts.methods.causalm import Config, estimate
from interp.tasks.concepts import Concepts


def test_a_concept_left_readable_is_reported(caplog):
    model = interp.load("concepts-tiny")
    train, test = Concepts().sample(500, seed=1), Concepts().sample(5, seed=2)
    with caplog.at_level(logging.WARNING, logger="circuits.concepts.methods.causalm"):
        out = estimate(model, all_edits(test, ("food",)), train, Config(steps=20))
    assert out.isfinite().all()
    assert any("still linearly readable" in r.getMessage() for r in caplog.records)
