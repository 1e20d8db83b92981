"""INLP on ill-conditioned covariances: held-out probe accuracy after erasure.

Two settings, as in `leace_precision.py`: the `concepts-tiny` site `blocks.1.hook_resid_post`
(covariance condition number ~5e9) and synthetic data with condition number 1e10 and the concept in
a low-variance direction. For each: majority rate, a whitened held-out linear probe before erasure,
after the former INLP (float32 probes on raw activations, orthogonal projection in raw coordinates)
and after the current one (probes and projection in whitened float64 coordinates).

    python experiments/inlp_precision.py --out experiments/results/inlp_precision.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from circuits.concepts.methods.common import fit_probe, orthonormal
from circuits.concepts.methods.inlp import Config, inlp_projector
from circuits.concepts.probe import majority, probe_accuracy

sys.path.insert(0, str(Path(__file__).parent))
from leace_precision import report  # noqa: E402


def former_projector(x: torch.Tensor, y: torch.Tensor, k: int, cfg: Config) -> tuple[torch.Tensor, int]:
    """([d, d], rank): the former INLP (float32 probes on raw activations, orthogonal projector B^T B)."""
    split = max(1, int(0.8 * x.shape[0]))
    basis = x.new_zeros(0, x.shape[1])
    top = torch.bincount(y[split:], minlength=k).max().item() / max(1, y[split:].numel())
    for _ in range(8):  # its defaults: 8 rounds, stop within 0.02 of the majority rate, l2 1e-3
        xp = x - (x @ basis.T) @ basis  # [n, d]
        w, _ = fit_probe(xp[:split], y[:split], k, 1e-3)
        acc = (((xp[split:] - xp[:split].mean(0)) @ w.T).argmax(-1) == y[split:]).float().mean().item()
        if acc <= top + 0.02:
            break
        basis = orthonormal(torch.cat([basis, w]))
    return (basis.T @ basis).double(), basis.shape[0]


def row(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor) -> dict:
    k, cfg = int(y.max()) + 1, Config()
    mean = x.double().mean(0)
    old, old_rank = former_projector(x, y, k, cfg)
    new, rank = inlp_projector(x, y, k, cfg)
    erase = lambda p, a: a.double() - (a.double() - mean) @ p.T  # noqa: E731
    return {
        "majority": round(majority(yt), 4),
        "probe_before": round(probe_accuracy(x, y, xt, yt), 4),
        "probe_after_former": round(probe_accuracy(erase(old, x), y, erase(old, xt), yt, reference=x), 4),
        "probe_after": round(probe_accuracy(erase(new, x), y, erase(new, xt), yt, reference=x), 4),
        "dims_removed_former": old_rank,
        "dims_removed": rank,
    }


def main() -> None:
    torch.manual_seed(0)
    report(row, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
