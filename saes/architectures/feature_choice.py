"""Feature Choice SAE (Ayonrinde 2024, "Adaptive Sparse Allocation ...").

Latents pick tokens: with a budget of k * batch matches and d_sae latents, every latent takes the
m = ceil(k * batch / d_sae) tokens of the batch on which its pre-activation is largest (and positive),
so no latent can die and tokens receive a variable number of latents. Training uses the auxiliary Zipf
loss of `mutual_choice` to push under-used latents toward a Zipf-shaped density.

Inference cannot see the batch, so each latent learns its own threshold theta_i, an exponential
moving average of the smallest activation it kept; `eval()` mode computes relu(pre) * (pre > theta),
which SAELens loads as `jumprelu` (per-latent `threshold`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from saes.architectures import ops
from saes.architectures.base import SparseAutoencoder
from saes.architectures.mutual_choice import ZipfKnobs, zipf_aux


class FeatureChoiceSAE(SparseAutoencoder):
    """Feature Choice SAE (`arch="feature_choice"`, needs `k`, the mean active latents per token)."""

    arch = "feature_choice"
    knobs = ZipfKnobs
    saelens_architecture = "jumprelu"
    saelens_transcoder_architecture = "jumprelu_transcoder"

    threshold: Tensor  # [d_sae] buffer

    def _init_encoder_bias(self) -> None:
        super()._init_encoder_bias()
        self.register_buffer("threshold", torch.zeros(self.cfg.d_sae, dtype=torch.float32))

    def quota(self, batch: int) -> int:
        """Tokens each latent picks in a batch of `batch` tokens."""
        return max(1, math.ceil(self.cfg.k * batch / self.cfg.d_sae))

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        if self.training:
            return ops.topk_per_column(pre.relu(), self.quota(pre.shape[0]))  # [batch, d_sae]
        return pre.relu() * (pre > self.threshold.to(pre.dtype))

    def _update_statistics(self, pre: Tensor, acts: Tensor) -> None:
        smallest = torch.where(acts > 0, acts, torch.full_like(acts, math.inf)).amin(0)  # [d_sae]
        seen = torch.isfinite(smallest)
        rate = self.cfg.knobs.threshold_momentum
        updated = (1 - rate) * self.threshold + rate * smallest.float()
        self.threshold.copy_(torch.where(seen, updated, self.threshold))

    def _aux(self, pre: Tensor, target: Tensor, residual: Tensor, dead_mask, density, aux_k: int) -> Tensor:
        return zipf_aux(self, pre, residual, dead_mask, density, aux_k)

    def _saelens_params(self) -> dict[str, Tensor]:
        return {**super()._saelens_params(), "threshold": self.threshold.to(self.W_enc.dtype)}

    def _load_saelens_params(self, state: dict[str, Tensor]) -> None:
        super()._load_saelens_params(state)
        with torch.no_grad():
            self.threshold.copy_(state["threshold"].float())
