"""LEACE: least-squares concept erasure in closed form (Belrose et al., 2023), used to set a concept.

Algorithm, per concept C with one-hot value z, on the site activation x (last residual at `END`):
  1. From training activations: mean mu, covariance S_xx, cross-covariance S_xz.
  2. Whitening W = S_xx^{-1/2} (pseudo-inverse on the numerical support), U = orthonormal basis of
     colspace(W S_xz), P = U U^T; the oblique projector Q = W^+ P W. The eraser x - Q(x - mu) makes
     every linear probe for C no better than a constant, with the least mean squared change.
  3. Estimate the edit c -> c' as N(x - Q(x - mu_c')) - N(x - Q(x - mu_c)), mu_v the class means:
     erase C, then put back the target's (resp. the source's) value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from circuits.concepts.data import Edits
from circuits.concepts.methods.common import (
    class_means,
    concept_labels,
    per_concept,
    require_train,
    site_acts,
    site_hook,
    subspace_estimate,
)
from circuits.concepts.methods.spec import Method
from interp import HookedModel
from interp.tasks.concepts import ConceptSample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Options of LEACE.

    Example:
        >>> Config(hook="blocks.1.hook_resid_mid")
    """

    hook: str | None = None
    """Hook whose activation at `END` is edited (None: the last block's `hook_resid_post`)."""
    tol: float = 1e-5
    """Eigenvalues of S_xx below `tol * max` (and singular values of W S_xz likewise) count as zero."""


def leace_projector(x: Tensor, z: Tensor, tol: float = 1e-5) -> Tensor:
    """[d, d] oblique projector Q of the LEACE eraser `x - Q (x - mu)` (x [n, d], z [n, k] one-hot)."""
    x64, z64 = x.double(), z.double()
    xc, zc = x64 - x64.mean(0), z64 - z64.mean(0)
    n = x.shape[0]
    sxx, sxz = xc.T @ xc / n, xc.T @ zc / n  # [d, d], [d, k]
    evals, evecs = torch.linalg.eigh(sxx)
    keep = evals > tol * evals.max().clamp_min(1e-30)
    v, lam = evecs[:, keep], evals[keep]  # [d, r], [r]
    w = v @ torch.diag(lam.rsqrt()) @ v.T  # S^{-1/2} on the support
    w_pinv = v @ torch.diag(lam.sqrt()) @ v.T  # S^{1/2}
    u, s, _ = torch.linalg.svd(w @ sxz, full_matrices=False)
    u = u[:, s > tol * s.max().clamp_min(1e-30)]  # [d, rank <= k - 1]
    return (w_pinv @ u @ u.T @ w).float()


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: LEACE estimates of the ICaCE of each edit (see the module docstring)."""
    train = require_train(train, "leace")
    hook = site_hook(model, cfg.hook, "leace")
    x = site_acts(model, train.tokens, hook)  # [n, d_model]
    out = torch.zeros(len(edits), len(train.task.labels))
    for concept, mask in per_concept(edits):
        y = concept_labels(train, concept)
        k = len(train.task.values[concept])
        q = leace_projector(x, F.one_hot(y, k), cfg.tol)  # [d_model, d_model]
        log.info("leace %s: rank-%d eraser", concept, int(torch.linalg.matrix_rank(q)))
        out[mask] = subspace_estimate(model, edits.subset(mask), hook, q, class_means(x, y, k))
    return out


METHOD = Method(
    name="leace",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="LEACE closed-form eraser at the last residual; put back the target value's class mean",
)
