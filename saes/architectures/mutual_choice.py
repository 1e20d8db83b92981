"""Mutual Choice SAE (Ayonrinde 2024, "Adaptive Sparse Allocation with Mutual Choice & Feature Choice
Sparse Autoencoders").

Token-latent matching as resource allocation under one budget of k * batch matches: Mutual Choice
solves it without further constraints, i.e. the k * batch largest activations of the [batch, d_sae]
matrix are kept (the same allocation as BatchTopK), so hard tokens get more latents. What
distinguishes it is the auxiliary Zipf loss, which revives dead *and* under-used latents:

    w_i  = clip(1 - density_i / target_i, 0, 1),  target = Zipf(rank of density_i; exponent alpha),
           scaled so the targets sum to k (the mean L0)
    aux  = AuxK-style reconstruction of the residual by the top aux_k latents of relu(pre) * w

(`saes.architectures.ops.zipf_weights`; without a density estimate it falls back to AuxK's dead
mask). Inference uses a learned global threshold (exported to SAELens as `jumprelu`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from saes.architectures import ops
from saes.architectures.batchtopk import BatchTopKSAE, ThresholdKnobs


def zipf_aux(sae, pre: Tensor, residual: Tensor, dead_mask, density, aux_k: int) -> Tensor:
    """The auxiliary Zipf loss shared by Mutual and Feature Choice SAEs."""
    if density is not None:
        weight = ops.zipf_weights(density.to(pre.device), float(sae.cfg.k), sae.cfg.knobs.zipf_exponent)
    elif dead_mask is not None:
        weight = dead_mask.float()
    else:
        return pre.new_zeros(())
    return ops.auxk_loss(pre, residual, sae.W_dec, weight.to(pre.dtype), aux_k)


@dataclass(frozen=True)
class ZipfKnobs(ThresholdKnobs):
    """Knobs of the architectures trained with the auxiliary Zipf loss (`mutual_choice`, `feature_choice`)."""

    zipf_exponent: float = 1.0
    """Exponent alpha of the Zipf target density (rank^-alpha) of the auxiliary Zipf loss."""


class MutualChoiceSAE(BatchTopKSAE):
    """Mutual Choice SAE (`arch="mutual_choice"`, needs `k`, the mean active latents per token)."""

    arch = "mutual_choice"
    knobs = ZipfKnobs

    def _aux(self, pre: Tensor, target: Tensor, residual: Tensor, dead_mask, density, aux_k: int) -> Tensor:
        return zipf_aux(self, pre, residual, dead_mask, density, aux_k)
