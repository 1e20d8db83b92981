"""Gated SAE (Rajamanoharan et al. 2024, "Improving Dictionary Learning with Gated SAEs").

A gate decides which latents are on, a magnitude path (sharing the encoder up to a per-latent scale)
how much:

    pi_gate = (x - b_dec) W_enc + b_gate
    pi_mag  = (x - b_dec) (W_enc * exp(r_mag)) + b_mag
    acts    = 1[pi_gate > 0] * relu(pi_mag)
    loss    = ||x - x_hat||^2 + lambda * sum_i relu(pi_gate)_i ||W_dec[i]||
              + ||x - (relu(pi_gate) W_dec^T + b_dec)||^2   (decoder frozen in this term)

The last (auxiliary) term gives the gate a reconstruction signal; it enters with weight 1, as in the
paper, whatever the trainer's `aux_coef`. SAELens name: `gated`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from saes.architectures.base import SparseAutoencoder


class GatedSAE(SparseAutoencoder):
    """Gated SAE (`arch="gated"`)."""

    arch = "gated"
    saelens_architecture = "gated"
    aux_weight = 1.0

    def _init_encoder_bias(self) -> None:
        d_sae, dtype = self.cfg.d_sae, self.W_enc.dtype
        self.b_gate = nn.Parameter(torch.zeros(d_sae, dtype=dtype))
        self.b_mag = nn.Parameter(torch.zeros(d_sae, dtype=dtype))
        self.r_mag = nn.Parameter(torch.zeros(d_sae, dtype=dtype))

    def _encode_normalized(self, x_n: Tensor, grad: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.subtracts_b_dec:
            x_n = x_n - self.b_dec
        pi_gate = x_n @ self.W_enc + self.b_gate  # [batch, d_sae]
        pi_mag = x_n @ (self.W_enc * self.r_mag.exp()) + self.b_mag  # [batch, d_sae]
        acts = (pi_gate > 0).to(pi_mag.dtype) * pi_mag.relu()
        return acts, pi_gate

    def _sparsity(self, acts: Tensor, pre: Tensor) -> Tensor:
        return (pre.relu() * self.W_dec.norm(dim=-1)).sum(-1).mean()

    def _aux(self, pre: Tensor, target: Tensor, residual: Tensor, dead_mask, density, aux_k: int) -> Tensor:
        recon_gate = pre.relu() @ self.W_dec.detach() + self.b_dec.detach()  # [batch, d_out]
        return (recon_gate - target).pow(2).sum(-1).mean()

    def _saelens_params(self) -> dict[str, Tensor]:
        return {
            "W_enc": self.W_enc,
            "b_gate": self.b_gate,
            "b_mag": self.b_mag,
            "r_mag": self.r_mag,
            "W_dec": self.W_dec,
            "b_dec": self.b_dec,
        }

    def _load_saelens_params(self, state: dict[str, Tensor]) -> None:
        self._copy_into(state, ("W_enc", "b_gate", "b_mag", "r_mag", "W_dec", "b_dec"))
