"""INLP: iterative nullspace projection (Ravfogel et al., 2020), used to set a concept's value.

Algorithm, per concept C, on the site activation x (last block's residual at `END` by default):
  1. Fit a linear probe predicting C's value from x on training examples; add its weight rows to the
     concept basis B and project them out of x.
  2. Repeat until the probe, on held-out training examples, is no better than the majority class
     (or `n_iter` rounds); P = B^T B is the orthogonal projector onto the concept subspace.
  3. Estimate the edit c -> c' by setting x's component in span(B) to that of the class mean of c',
     minus the same with c: ICaCE ~ N(x - P(x - mu_c')) - N(x - P(x - mu_c)).
Exact when the model reads C linearly from a direction inside span(B) (see `common.subspace_estimate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.concepts.data import Edits
from circuits.concepts.methods.common import (
    class_means,
    concept_labels,
    fit_probe,
    orthonormal,
    per_concept,
    require_train,
    site_acts,
    site_hook,
    subspace_estimate,
)
from circuits.concepts.methods.spec import Method
from interp import HookedModel
from interp.errors import InterpError
from interp.tasks.concepts import ConceptSample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Options of INLP.

    Example:
        >>> Config(n_iter=4)
    """

    hook: str | None = None
    """Hook whose activation at `END` is edited (None: the last block's `hook_resid_post`)."""
    n_iter: int = 8
    """Most probe-and-project rounds."""
    min_gain: float = 0.02
    """Stop when held-out probe accuracy is within this of the majority-class rate."""
    l2: float = 1e-3
    """L2 penalty of each probe."""

    def __post_init__(self) -> None:
        if self.n_iter < 1:
            raise InterpError("inlp n_iter must be >= 1")


def inlp_basis(x: Tensor, y: Tensor, n_classes: int, cfg: Config) -> Tensor:
    """[k, d] orthonormal basis of the subspace INLP removes (x [n, d], y [n] long)."""
    split = max(1, int(0.8 * x.shape[0]))
    basis = x.new_zeros(0, x.shape[1])
    majority = torch.bincount(y[split:], minlength=n_classes).max().item() / max(1, y[split:].numel())
    for it in range(cfg.n_iter):
        xp = x - (x @ basis.T) @ basis  # [n, d]
        w, _ = fit_probe(xp[:split], y[:split], n_classes, cfg.l2)
        held = ((xp[split:] - xp[:split].mean(0)) @ w.T).argmax(-1)
        acc = (held == y[split:]).float().mean().item() if split < x.shape[0] else 1.0
        log.debug("inlp round %d: held-out accuracy %.3f (majority %.3f)", it, acc, majority)
        if acc <= majority + cfg.min_gain:
            break
        basis = orthonormal(torch.cat([basis, w]))
    return basis


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: INLP estimates of the ICaCE of each edit (see the module docstring)."""
    train = require_train(train, "inlp")
    hook = site_hook(model, cfg.hook, "inlp")
    x = site_acts(model, train.tokens, hook)  # [n, d_model]
    out = torch.zeros(len(edits), len(train.task.labels))
    for concept, mask in per_concept(edits):
        y = concept_labels(train, concept)
        k = len(train.task.values[concept])
        basis = inlp_basis(x, y, k, cfg)  # [r, d_model]
        log.info("inlp %s: removed a %d-dim subspace", concept, basis.shape[0])
        out[mask] = subspace_estimate(model, edits.subset(mask), hook, basis.T @ basis, class_means(x, y, k))
    return out


METHOD = Method(
    name="inlp",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="INLP concept subspace at the last residual; set it to the target value's class mean",
)
