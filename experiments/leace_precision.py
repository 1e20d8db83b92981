"""LEACE on ill-conditioned covariances: held-out probe accuracy after erasure.

Two settings: the `concepts-tiny` site `blocks.1.hook_resid_post` (covariance condition number ~5e9)
and synthetic data whose covariance has condition number 1e10 with the concept in a low-variance
direction. For each: majority rate, a whitened held-out linear probe before erasure, after the
eraser with the former cut-off (eigenvalues below 1e-5 x max dropped), and after the current one.

    python experiments/leace_precision.py --out experiments/results/leace_precision.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch
import torch.nn.functional as F

import interp
from circuits.concepts.methods.common import site_acts
from circuits.concepts.methods.leace import leace_eraser
from circuits.concepts.probe import majority, probe_accuracy
from interp.io import atomic_write_json, package_versions
from interp.tasks.concepts import CONCEPTS, Concepts

OLD_CUTOFF = 1e-5**0.5  # eigenvalues below 1e-5 x max = singular values below sqrt(1e-5) x max


def synthetic(n: int, d: int = 12, cond: float = 1e10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x [n, d] float32 with covariance condition number ~`cond`; labels y [n] (3 classes) in a low direction."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    var = torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), d, dtype=torch.float64)
    y = torch.randint(3, (n,), generator=g)
    coords = torch.randn(n, d, generator=g, dtype=torch.float64) * var.sqrt()
    coords[:, d - 2] += (y.double() - 1) * 4 * var[d - 2].sqrt()
    return (coords @ basis.T + 0.5).float(), y


def condition(x: torch.Tensor) -> float:
    s = torch.linalg.svdvals(x.double() - x.double().mean(0))
    return (s.max() / s.min()).item() ** 2


def row(x, y, xt, yt) -> dict:
    k = int(y.max()) + 1
    new, old = leace_eraser(x, F.one_hot(y, k)), leace_eraser(x, F.one_hot(y, k), tol=OLD_CUTOFF)
    edit = lambda e: ((e(x).double() - x.double()) ** 2).sum(1).mean().item()  # noqa: E731
    return {
        "majority": round(majority(yt), 4),
        "probe_before": round(probe_accuracy(x, y, xt, yt), 4),
        "probe_after_old_cutoff": round(probe_accuracy(old(x), y, old(xt), yt, reference=x), 4),
        "probe_after": round(probe_accuracy(new(x), y, new(xt), yt, reference=x), 4),
        "mean_sq_edit_old_cutoff": edit(old),
        "mean_sq_edit": edit(new),
    }


def report(row: Callable[..., dict], description: str) -> None:
    """Score an eraser on the concepts-tiny site (per concept) and on synthetic data with condition
    number about 1e10: `row(x, y, x_test, y_test)` gives one result row; prints and optionally writes JSON."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    args = parser.parse_args()
    model = interp.load("concepts-tiny")
    task = Concepts()
    train, test = task.sample(2000, seed=1), task.sample(1000, seed=2)
    hook = "blocks.1.hook_resid_post"
    x, xt = site_acts(model, train.tokens, hook), site_acts(model, test.tokens, hook)
    site = {c: row(x, train.values[:, i], xt, test.values[:, i]) for i, c in enumerate(CONCEPTS)}
    sx, sy = synthetic(6000)
    result = {
        "concepts_tiny": {"hook": hook, "condition_number": condition(x), "per_concept": site},
        "synthetic": {
            "condition_number": condition(sx[:4000]),
            **row(sx[:4000], sy[:4000], sx[4000:], sy[4000:]),
        },
        "versions": package_versions(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        atomic_write_json(args.out, result)


def main() -> None:
    report(row, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
