"""LEACE on ill-conditioned covariances: the concept is gone, the edit is the least one, float32 is handled.

Replays the cases where the eraser used to drop every direction below 1e-5 x the largest variance
(so the concept survived there) and rounded its oblique projector to float32.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from circuits.concepts.methods.leace import leace_eraser, leace_projector
from circuits.concepts.probe import majority, probe_accuracy, whitening
from interp.errors import InterpError
from tests.reliability.conftest import condition_number as _cond


def test_the_synthetic_covariance_is_that_ill_conditioned(synthetic):
    x, y, xt, yt = synthetic
    assert _cond(x) > 5e9
    assert probe_accuracy(x, y, xt, yt) > 0.9  # readable before erasure


def test_class_means_are_equal_after_erasure(synthetic):
    x, y, _, _ = synthetic
    erased = leace_eraser(x, F.one_hot(y, 3))(x).double()
    _, w = whitening(x)  # measure the gap in whitened units: a 1e-5 direction counts as much as a 1 one
    for c in range(3):
        gap = (erased[y == c].mean(0) - erased.mean(0)) @ w
        assert gap.norm() < 1e-3, (c, gap.norm())


def test_a_held_out_probe_is_at_chance_after_erasure(synthetic):
    x, y, xt, yt = synthetic
    eraser = leace_eraser(x, F.one_hot(y, 3))
    acc = probe_accuracy(eraser(x), y, eraser(xt), yt, reference=x)
    assert acc < majority(yt) + 0.03, acc


def test_the_old_cut_off_left_the_concept_readable(synthetic):
    """What the regression was: with eigenvalues below 1e-5 x max dropped, the probe still reads it."""
    x, y, xt, yt = synthetic
    eraser = leace_eraser(x, F.one_hot(y, 3), tol=1e-5**0.5)  # singular values: sqrt of the old cut-off
    acc = probe_accuracy(eraser(x), y, eraser(xt), yt, reference=x)
    assert acc > 0.9


def test_the_edit_is_the_least_mean_squared_one(synthetic):
    x, y, _, _ = synthetic
    z = F.one_hot(y, 3).double()
    eraser = leace_eraser(x, z)
    x64 = x.double()
    xc, zc = x64 - x64.mean(0), z - z.mean(0)
    sxz = xc.T @ zc / len(x)  # [d, k]

    def edit(q: torch.Tensor) -> float:  # mean squared change of x -> x - Q (x - mu)
        return ((xc @ q.T) ** 2).sum(1).mean().item()

    q = eraser.projector()
    assert torch.allclose(q @ sxz, sxz, atol=1e-9 * sxz.abs().max())  # Q S_xz = S_xz: erases
    best = edit(q)
    u, s, _ = torch.linalg.svd(sxz, full_matrices=False)
    u = u[:, s > 1e-10 * s.max()]
    ortho = u @ u.T  # the orthogonal projection onto span(S_xz) also erases, with a larger edit
    assert best < edit(ortho)
    g = torch.Generator().manual_seed(1)
    free = torch.eye(x.shape[1], dtype=torch.float64) - ortho  # E = M (I - Pi) keeps Q S_xz = S_xz
    for _ in range(5):
        e = torch.randn(x.shape[1], x.shape[1], generator=g, dtype=torch.float64) @ free
        for eps in (1e-3, 1e-6):
            assert edit(q + eps * e / e.norm()) >= best * (1 - 1e-12)


def test_float32_rounding_of_the_projector_is_avoided(synthetic):
    """The oblique projector has entries ~sqrt(cond); applied in float32 it leaves a class-mean gap
    three orders of magnitude larger than the float64 application the eraser uses."""
    x, y, _, _ = synthetic
    eraser = leace_eraser(x, F.one_hot(y, 3))
    q = leace_projector(x, F.one_hot(y, 3))
    assert q.dtype == torch.float64
    assert eraser(x).dtype == torch.float32  # rounded once, at the end
    _, w = whitening(x)

    def gap(erased: torch.Tensor) -> float:
        erased = erased.double()
        return max(((erased[y == c].mean(0) - erased.mean(0)) @ w).norm().item() for c in range(3))

    in_float32 = gap(x - (x - x.mean(0)) @ q.float().T)
    assert gap(eraser(x)) < 1e-3 and gap(eraser(x)) * 100 < in_float32


def test_bad_inputs_are_refused():
    with pytest.raises(InterpError, match="NaN"):
        leace_eraser(torch.full((4, 3), float("nan")), torch.eye(2)[[0, 1, 0, 1]])
    with pytest.raises(InterpError, match="same n"):
        leace_eraser(torch.zeros(4, 3), torch.zeros(5, 2))


def test_concepts_tiny_site_is_erased(concepts_site):
    """The real site (condition number ~5e9): every concept's probe falls to chance."""
    x, values, xt, values_t = concepts_site
    for c in range(values.shape[1]):
        y, yt = values[:, c], values_t[:, c]
        eraser = leace_eraser(x, F.one_hot(y))
        acc = probe_accuracy(eraser(x), y, eraser(xt), yt, reference=x)
        assert acc < majority(yt) + 0.04, (c, acc)
