"""Steering along a learned concept direction (mean-difference / ActAdd-style activation addition).

Algorithm, per concept C, on the site activation x (last residual at `END` by default):
  1. From training activations, the class means mu_v of each value v of C.
  2. The direction from c to c' is mu_c' - mu_c (the difference-of-means concept direction).
  3. Estimate the edit c -> c' as N(x + coeff (mu_c' - mu_c)) - N(x), adding the vector with
     `interp.Add` at `END`.
Unlike the erasure methods it does not remove x's own concept component; it assumes the model
reads C additively along the direction, and it inherits any confounding of the class means.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

import interp
from circuits.concepts.data import CHUNK, Edits, output_dist
from circuits.concepts.methods.common import (
    class_means,
    concept_labels,
    per_concept,
    require_train,
    site_acts,
    site_hook,
)
from circuits.concepts.methods.spec import Method
from interp import HookedModel
from interp.tasks.concepts import ConceptSample


@dataclass(frozen=True)
class Config:
    """Options of steering.

    Example:
        >>> Config(coeff=0.5)
    """

    hook: str | None = None
    """Hook whose activation at `END` is steered (None: the last block's `hook_resid_post`)."""
    coeff: float = 1.0
    """Multiplier of the mean-difference vector."""


def steered(
    model: HookedModel, tokens: Tensor, hook: str, vector: Tensor, label_ids: tuple[int, ...]
) -> Tensor:
    """[batch, label]: output distribution with `vector` [d_model] added at `hook`, last position."""
    add = [interp.Add(hook, vector=vector, positions=(tokens.shape[1] - 1,))]
    outs = []
    with torch.no_grad():
        for start in range(0, tokens.shape[0], CHUNK):
            logits = model.run_with_interventions(
                tokens[start : start + CHUNK].to(model.device), add, logits_to_keep=1
            )
            outs.append(logits[:, -1, list(label_ids)].float().softmax(-1).cpu())
    return torch.cat(outs)


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: steering estimates of the ICaCE of each edit (see the module docstring)."""
    train = require_train(train, "steering")
    hook = site_hook(model, cfg.hook, "steering")
    label_ids = train.task.label_ids
    x = site_acts(model, train.tokens, hook)  # [n, d_model]
    out = torch.zeros(len(edits), len(label_ids))
    base = output_dist(model, edits.tokens, label_ids)  # [edit, label]
    for concept, mask in per_concept(edits):
        means = class_means(x, concept_labels(train, concept), len(train.task.values[concept]))
        pairs = torch.stack([edits.source, edits.target], 1)  # [edit, 2]
        for s, t in pairs[mask].unique(dim=0).tolist():
            rows = mask & (edits.source == s) & (edits.target == t)
            vector = cfg.coeff * (means[t] - means[s])  # [d_model]
            out[rows] = steered(model, edits.tokens[rows], hook, vector, label_ids) - base[rows]
    return out


METHOD = Method(
    name="steering",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="add the difference of class means (target - source) at the last residual",
)
