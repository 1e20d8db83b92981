"""Data the erasure tests share: synthetic ill-conditioned activations and the concepts-tiny site
where the precision regressions were found (computed once per session)."""

from __future__ import annotations

import pytest
import torch

from circuits.concepts.methods.common import site_acts


def ill_conditioned(n: int, d: int = 12, k: int = 3, cond: float = 1e10, seed: int = 0):
    """x [n, d] float32 whose covariance has condition number ~`cond`, labels y [n] read from a
    direction of variance cond^-0.9 (near the bottom of the spectrum)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    var = torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), d, dtype=torch.float64)
    y = torch.randint(k, (n,), generator=g)
    coords = torch.randn(n, d, generator=g, dtype=torch.float64) * var.sqrt()
    low = d - 2  # second-smallest variance: the signal sits in a direction the old cut-off dropped
    coords[:, low] += (y.double() - (k - 1) / 2) * 4 * var[low].sqrt()
    x = (coords @ basis.T + 0.5).float()  # an offset, so the mean matters too
    return x, y


@pytest.fixture(scope="module")
def synthetic():
    x, y = ill_conditioned(6000)
    return x[:4000], y[:4000], x[4000:], y[4000:]


def condition_number(x: torch.Tensor) -> float:
    s = torch.linalg.svdvals(x.double() - x.double().mean(0))
    return (s.max() / s.min()).item() ** 2


@pytest.fixture(scope="session")
def concepts_site():
    import interp
    from interp.tasks.concepts import Concepts

    model = interp.load("concepts-tiny")
    task = Concepts()
    train, test = task.sample(2000, seed=1), task.sample(1000, seed=2)
    hook = "blocks.1.hook_resid_post"
    x, xt = site_acts(model, train.tokens, hook), site_acts(model, test.tokens, hook)
    assert condition_number(x) > 1e8  # the ill-conditioned site the regression was found on
    return x, train.values, xt, test.values
