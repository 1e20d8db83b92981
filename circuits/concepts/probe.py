"""A strong held-out linear probe, for checking that an eraser leaves nothing linearly readable.

The probe whitens its inputs with the covariance of a reference set (by default its training
inputs) in float64 before a multinomial logistic regression, so a concept hidden in a direction of
tiny variance is as easy to read as one in a direction of large variance: the usual probe on raw
activations of an ill-conditioned site would miss it and report a false "erased".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.errors import InterpError


def whitening(reference: Tensor) -> tuple[Tensor, Tensor]:
    """(mean [d], W [d, r]) float64 with (x - mean) @ W of identity covariance on `reference` [n, d]."""
    x = reference.double()
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    keep = s > max(x.shape) * torch.finfo(torch.float64).eps * s.max().clamp_min(1e-300)
    return mean, vh[keep].T / (s[keep] / x.shape[0] ** 0.5)


def probe_accuracy(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    reference: Tensor | None = None,
    l2: float = 1e-4,
    steps: int = 300,
) -> float:
    """Held-out accuracy of a linear probe trained on (x_train [n, d], y_train [n]) and tested on x_test.

    `reference` [m, d] sets the whitening (default: x_train). Compare with the majority rate
    `majority(y_test)`: an erased concept leaves the probe there.

    Example:
        >>> acc = probe_accuracy(erased[:800], y[:800], erased[800:], y[800:], reference=x[:800])
    """
    if x_train.shape[0] != y_train.shape[0] or x_test.shape[0] != y_test.shape[0]:
        raise InterpError("probe_accuracy: each x needs one label per row")
    mean, w = whitening(x_train if reference is None else reference)
    a, b = (x_train.double() - mean) @ w, (x_test.double() - mean) @ w  # [n, r], [m, r]
    k = int(max(y_train.max(), y_test.max())) + 1
    weight, bias = fit_linear_probe(a, y_train, k, l2, steps)
    return ((b @ weight.T + bias).argmax(-1) == y_test).double().mean().item()


def fit_linear_probe(
    a: Tensor, y: Tensor, n_classes: int, l2: float = 1e-4, steps: int = 300
) -> tuple[Tensor, Tensor]:
    """(weight [class, r], bias [class]) float64 of a multinomial logistic regression on a [n, r] (LBFGS)."""
    a = a.double()
    weight = torch.zeros(n_classes, a.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(a @ weight.T + bias, y) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weight.detach(), bias.detach()


def majority(y: Tensor) -> float:
    """The accuracy of always answering the most frequent label of `y`."""
    return torch.bincount(y).max().item() / max(1, y.numel())
