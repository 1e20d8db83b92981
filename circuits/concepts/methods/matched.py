"""Approximate counterfactuals: a matched example with the changed concept (CEBaB's baseline).

Algorithm, for the edit (x, C: c -> c'):
  1. Among training examples with C = c', keep those whose other concepts equal x's (if none, those
     at the smallest Hamming distance on the other concepts).
  2. Draw `n_matches` of them at random (seeded) and estimate ICaCE ~ mean N(x~) - N(x).
It never touches the model's internals, but x~ differs from x in everything that is not a concept
(wording, clause order, intensity), so its error is the effect of that exogenous variation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.concepts.data import Edits, output_dist
from circuits.concepts.methods.common import require_train
from circuits.concepts.methods.spec import Method
from interp import HookedModel
from interp.errors import InterpError
from interp.tasks.concepts import ConceptSample


@dataclass(frozen=True)
class Config:
    """Options of the matched-example baseline.

    Example:
        >>> Config(n_matches=4)
    """

    n_matches: int = 1
    """Matched examples averaged per edit (1: CEBaB's single approximate counterfactual)."""
    seed: int = 0
    """Seed of the draw."""

    def __post_init__(self) -> None:
        if self.n_matches < 1:
            raise InterpError("matched n_matches must be >= 1")


def match(edits: Edits, train: ConceptSample, n_matches: int, seed: int) -> Tensor:
    """[edit, n_matches] long: indices into `train` of the matched examples of each edit."""
    generator = torch.Generator().manual_seed(seed)
    values, tv = edits.values, train.values  # [edit, concept], [n, concept]
    others = torch.ones(len(edits), values.shape[1], dtype=torch.bool)
    others[torch.arange(len(edits)), edits.concept] = False  # [edit, concept]
    distance = ((values[:, None] != tv[None]) & others[:, None]).sum(-1)  # [edit, n]
    has_target = tv.T[edits.concept]  # [edit, n]: each training example's value of the edited concept
    if not (has_target == edits.target[:, None]).any(1).all():
        raise InterpError(
            "matched: some target value never occurs in the training examples; pass more of them"
        )
    distance = torch.where(has_target == edits.target[:, None], distance, torch.iinfo(torch.long).max)
    best = distance == distance.min(1, keepdim=True).values  # [edit, n]
    weights = best.float() + 1e-12 * (distance < torch.iinfo(torch.long).max).float()
    return torch.multinomial(weights, n_matches, replacement=True, generator=generator)


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: mean output on matched examples minus the output on the original."""
    train = require_train(train, "matched")
    label_ids = train.task.label_ids
    pool = output_dist(model, train.tokens, label_ids)  # [n, label]
    picks = match(edits, train, cfg.n_matches, cfg.seed)  # [edit, n_matches]
    return pool[picks].mean(1) - output_dist(model, edits.tokens, label_ids)


METHOD = Method(
    name="matched",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="baseline: output on a sampled training example with the target value, other concepts matched",
)
