"""LEACE: least-squares concept erasure in closed form (Belrose et al., 2023), used to set a concept.

Algorithm, per concept C with one-hot value z, on the site activation x (last residual at `END`):
  1. From training activations: mean mu, covariance S_xx, cross-covariance S_xz.
  2. Whitening W = S_xx^{-1/2} (pseudo-inverse on the support, from the SVD of the centred data so
     that condition numbers of 1e10 keep their small directions), U = orthonormal basis of
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
from interp.errors import InterpError
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
    tol: float | None = None
    """Singular values of the centred activations below `tol * max` count as zero (None: float64
    round-off, max(n, d) * eps). A larger value leaves the concept readable in the dropped directions."""


@dataclass(frozen=True)
class Eraser:
    """The LEACE eraser `x -> x - up @ down^T (x - mean)`, kept factored and in float64.

    The oblique projector Q = up @ down^T has entries up to sqrt(cond(S_xx)) in size: rounded to
    float32 it would no longer erase the low-variance directions of an ill-conditioned covariance,
    so `__call__` applies it in float64 and rounds only the result.

    Example:
        >>> eraser = leace_eraser(x, F.one_hot(y, 3))
        >>> erased = eraser(x)  # class-conditional means of `erased` are equal
    """

    mean: Tensor
    """[d] float64: the training mean."""
    down: Tensor
    """[d, r] float64: W U, reads the concept coordinates (W = S_xx^{-1/2} on its support)."""
    up: Tensor
    """[d, r] float64: W^+ U, writes them back (r <= k - 1)."""

    @property
    def rank(self) -> int:
        return self.down.shape[1]

    def projector(self) -> Tensor:
        """[d, d] float64 oblique projector Q."""
        return self.up @ self.down.T

    def __call__(self, x: Tensor) -> Tensor:
        """x [..., d] with its concept erased, in x's dtype (computed in float64)."""
        x64 = x.double()
        return (x64 - ((x64 - self.mean.to(x.device)) @ self.down.to(x.device)) @ self.up.to(x.device).T).to(
            x.dtype
        )


def leace_eraser(x: Tensor, z: Tensor, tol: float | None = None) -> Eraser:
    """The LEACE eraser fitted on x [n, d] and one-hot (or any numeric) labels z [n, k].

    Works from the SVD of the centred data rather than the covariance, so the small eigenvalues of
    S_xx keep their precision (condition numbers of 1e10 and beyond): with xc = A diag(s) V^T,
    S_xx = V diag(s^2 / n) V^T and W S_xz = V A^T zc / sqrt(n) needs no division by small values.
    Directions count as null only at float64 round-off (`tol` relative to the largest singular
    value; default max(n, d) * eps), never at a fixed fraction of the largest variance.
    """
    if x.ndim != 2 or z.ndim != 2 or x.shape[0] != z.shape[0]:
        raise InterpError(
            f"leace: expected x [n, d] and z [n, k] with the same n, got {tuple(x.shape)} and {tuple(z.shape)}"
        )
    if x.shape[0] < 2:
        raise InterpError("leace: needs at least 2 training examples")
    if not torch.isfinite(x).all():
        raise InterpError("leace: the activations contain NaN or inf; check the model and the site")
    x64, z64 = x.double(), z.double()
    n, d = x64.shape
    mean = x64.mean(0)
    xc, zc = x64 - mean, z64 - z64.mean(0)  # [n, d], [n, k]
    a, s, vh = torch.linalg.svd(xc, full_matrices=False)  # [n, m], [m], [m, d]
    rtol = max(n, d) * torch.finfo(torch.float64).eps if tol is None else tol
    keep = s > rtol * s.max().clamp_min(1e-300)
    a, s, v = a[:, keep], s[keep], vh[keep].T  # [n, r], [r], [d, r]
    wsxz = v @ (a.T @ zc) / n**0.5  # [d, k] = S_xx^{-1/2} S_xz
    u, sv, _ = torch.linalg.svd(wsxz, full_matrices=False)
    u = u[:, sv > 1e-10 * sv.max().clamp_min(1e-300)]  # [d, r' <= k - 1]
    scale = s / n**0.5  # sqrt of the kept eigenvalues of S_xx
    down = v @ ((v.T @ u) / scale[:, None])  # W u   [d, r']
    up = v @ ((v.T @ u) * scale[:, None])  # W^+ u [d, r']
    return Eraser(mean=mean, down=down, up=up)


def leace_projector(x: Tensor, z: Tensor, tol: float | None = None) -> Tensor:
    """[d, d] float64 oblique projector Q of the LEACE eraser `x - Q (x - mu)` (x [n, d], z [n, k] one-hot).

    Float64 on purpose: see `Eraser`. Apply it in float64 (`Eraser.__call__` does).
    """
    return leace_eraser(x, z, tol).projector()


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: LEACE estimates of the ICaCE of each edit (see the module docstring)."""
    train = require_train(train, "leace")
    hook = site_hook(model, cfg.hook, "leace")
    x = site_acts(model, train.tokens, hook)  # [n, d_model]
    out = torch.zeros(len(edits), len(train.task.labels))
    for concept, mask in per_concept(edits):
        y = concept_labels(train, concept)
        k = len(train.task.values[concept])
        eraser = leace_eraser(x, F.one_hot(y, k), cfg.tol)
        q = eraser.projector()  # [d_model, d_model] float64
        log.info("leace %s: rank-%d eraser", concept, eraser.rank)
        out[mask] = subspace_estimate(model, edits.subset(mask), hook, q, class_means(x, y, k))
    return out


METHOD = Method(
    name="leace",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="LEACE closed-form eraser at the last residual; put back the target value's class mean",
)
