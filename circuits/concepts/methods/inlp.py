"""INLP: iterative nullspace projection (Ravfogel et al., 2020), used to set a concept's value.

Algorithm, per concept C, on the site activation x (last block's residual at `END` by default):
  0. Whiten x: u = (x - mean) W has identity covariance on the training examples (W from the SVD of
     the centred activations, in float64). Residual streams are very ill-conditioned (condition
     numbers of 1e9-1e10); a probe on raw activations cannot find a concept in a direction of tiny
     variance, and projecting probe directions out orthogonally in raw coordinates does not remove
     the class-mean difference there, so the concept stays readable.
  1. Fit a linear probe (float64) predicting C's value from u on training examples; add its weight
     rows to the concept basis B and project them out of u.
  2. Repeat for `n_iter` rounds (or, with `min_gain`, until a probe fitted on 80% of the training
     examples is no better than the majority class on the rest). In whitened coordinates Q = B^T B is an orthogonal projector; on the
     activations it is the oblique projector P = (W Q W^+)^T (x -> x - (x - mean) P^T).
  3. Estimate the edit c -> c' by setting x's component in the concept subspace to that of the class
     mean of c', minus the same with c: ICaCE ~ N(x - P(x - mu_c')) - N(x - P(x - mu_c)).
Exact when the model reads C linearly from a direction inside that subspace (see `common.subspace_estimate`).
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
    orthonormal,
    per_concept,
    require_train,
    site_acts,
    site_hook,
    subspace_estimate,
)
from circuits.concepts.methods.spec import Method
from circuits.concepts.probe import fit_linear_probe, whitening
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
    """Probe-and-project rounds (fewer when `min_gain` stops early)."""
    min_gain: float | None = None
    """Stop early when held-out probe accuracy is within this of the majority-class rate (None: run
    all `n_iter` rounds). Off by default: on an ill-conditioned site the check, on 20% of the training
    examples, stops after the first round while a probe on all of them still reads the concept."""
    l2: float = 1e-3
    """L2 penalty of each probe."""

    def __post_init__(self) -> None:
        if self.n_iter < 1:
            raise InterpError("inlp n_iter must be >= 1")


def inlp_basis(u: Tensor, y: Tensor, n_classes: int, cfg: Config) -> Tensor:
    """[k, r] float64 orthonormal basis of the subspace INLP removes from `u` [n, r] (y [n] long).

    `u` should be whitened (see `inlp_projector`); the probes are fitted in float64.
    """
    u = u.double()
    split = max(1, int(0.8 * u.shape[0]))
    basis = u.new_zeros(0, u.shape[1])
    majority = torch.bincount(y[split:], minlength=n_classes).max().item() / max(1, y[split:].numel())
    for it in range(cfg.n_iter):
        up = u - (u @ basis.T) @ basis  # [n, r]
        if cfg.min_gain is not None and split < u.shape[0]:
            mu = up[:split].mean(0)
            w, b = fit_linear_probe(up[:split] - mu, y[:split], n_classes, cfg.l2, steps=100)
            acc = (((up[split:] - mu) @ w.T + b).argmax(-1) == y[split:]).double().mean().item()
            log.debug("inlp round %d: held-out accuracy %.3f (majority %.3f)", it, acc, majority)
            if acc <= majority + cfg.min_gain:
                break
        w, _ = fit_linear_probe(up - up.mean(0), y, n_classes, cfg.l2, steps=100)  # [class, r]
        basis = orthonormal(torch.cat([basis, w]))
    return basis


def inlp_projector(x: Tensor, y: Tensor, n_classes: int, cfg: Config) -> tuple[Tensor, int]:
    """(P [d, d] float64, rank): INLP's projector onto the concept subspace of `x` [n, d] (y [n] long).

    Erasing is x -> x - (x - mean) @ P.T; P is oblique (orthogonal in the whitened coordinates).
    """
    mean, w = whitening(x)  # [d], [d, r]
    basis = inlp_basis((x.double() - mean) @ w, y, n_classes, cfg)  # [k, r]
    unwhiten = torch.linalg.pinv(w)  # [r, d]
    return ((w @ basis.T) @ (basis @ unwhiten)).T, basis.shape[0]


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: INLP estimates of the ICaCE of each edit (see the module docstring)."""
    train = require_train(train, "inlp")
    hook = site_hook(model, cfg.hook, "inlp")
    x = site_acts(model, train.tokens, hook)  # [n, d_model]
    out = torch.zeros(len(edits), len(train.task.labels))
    for concept, mask in per_concept(edits):
        y = concept_labels(train, concept)
        k = len(train.task.values[concept])
        projector, rank = inlp_projector(x, y, k, cfg)  # [d_model, d_model]
        log.info("inlp %s: removed a %d-dim subspace", concept, rank)
        out[mask] = subspace_estimate(model, edits.subset(mask), hook, projector, class_means(x, y, k))
    return out


METHOD = Method(
    name="inlp",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="INLP concept subspace at the last residual; set it to the target value's class mean",
)
