"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"), trained with a straight-through L0 penalty.

    acts = pre * H(pre - theta),   theta = exp(log_theta) > 0 (one learned threshold per latent)
    loss = ||x - x_hat||^2 + lambda * sum_i H(pre_i - theta_i)

The Heaviside step H has zero gradient almost everywhere, so the thresholds are trained with a
straight-through estimator: in the backward pass dH/dtheta is replaced by a rectangle kernel of width
`jumprelu_bandwidth` around the threshold, -(1/eps) K((pre - theta)/eps). The same estimator gives the
reconstruction loss a gradient towards theta through the jump of `acts` (scaled by theta/eps).
The encoder only learns from the reconstruction term (the L0 gradient goes to the thresholds alone).
SAELens name: `jumprelu` (its `threshold` parameter is our exp(log_threshold)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from interp.errors import InterpError
from saes.architectures.base import SparseAutoencoder
from saes.architectures.knobs import Knobs


def _rectangle(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta) with the straight-through pseudo-derivative for theta."""

    @staticmethod
    def forward(ctx: Any, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, None]:
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = (pre > theta).to(pre.dtype) * grad_out
        grad_theta = (-(theta / eps) * _rectangle((pre - theta) / eps) * grad_out).sum(0)
        return grad_pre, grad_theta, None


class _Step(torch.autograd.Function):
    """H(pre - theta) with the straight-through pseudo-derivative for theta (none for pre)."""

    @staticmethod
    def forward(ctx: Any, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[None, Tensor, None]:
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_theta = (-(1.0 / eps) * _rectangle((pre - theta) / eps) * grad_out).sum(0)
        return None, grad_theta, None


@dataclass(frozen=True)
class JumpReLUKnobs(Knobs):
    """Knobs of JumpReLU (`jumprelu`, `clt_jumprelu`)."""

    jumprelu_init_threshold: float = 0.1
    """Initial threshold, in normalised input units (inputs of mean norm sqrt(d_in))."""

    jumprelu_bandwidth: float = 0.1
    """Width of the rectangle kernel of the straight-through estimator for the L0 penalty (the paper's
    0.001 suits its much longer training runs)."""

    def __post_init__(self) -> None:
        if self.jumprelu_init_threshold <= 0 or self.jumprelu_bandwidth <= 0:
            raise InterpError("jumprelu_init_threshold and jumprelu_bandwidth must be positive")


class JumpReLUSAE(SparseAutoencoder):
    """JumpReLU SAE with learned positive per-latent thresholds (`arch="jumprelu"`)."""

    arch = "jumprelu"
    knobs = JumpReLUKnobs
    saelens_architecture = "jumprelu"
    saelens_transcoder_architecture = "jumprelu_transcoder"

    def _init_encoder_bias(self) -> None:
        super()._init_encoder_bias()
        init = math.log(self.cfg.knobs.jumprelu_init_threshold)
        self.log_threshold = nn.Parameter(torch.full((self.cfg.d_sae,), init, dtype=self.W_enc.dtype))

    @property
    def threshold(self) -> Tensor:
        """Per-latent thresholds [d_sae], always positive."""
        return self.log_threshold.exp()

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        return _JumpReLU.apply(pre, self.threshold, self.cfg.knobs.jumprelu_bandwidth)  # [batch, d_sae]

    def _sparsity(self, acts: Tensor, pre: Tensor) -> Tensor:
        return _Step.apply(pre, self.threshold, self.cfg.knobs.jumprelu_bandwidth).sum(-1).mean()

    def _saelens_params(self) -> dict[str, Tensor]:
        return {**super()._saelens_params(), "threshold": self.threshold}

    def _load_saelens_params(self, state: dict[str, Tensor]) -> None:
        super()._load_saelens_params(state)
        with torch.no_grad():
            self.log_threshold.copy_(state["threshold"].to(self.log_threshold.dtype).clamp_min(1e-12).log())
