"""TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders").

    acts = relu(topk_k((x - b_dec) W_enc + b_enc))

Exactly the k largest pre-activations of each token survive (fewer are non-zero only when fewer than
k are positive). Dead latents are revived by the AuxK loss: the top `aux_k` dead latents reconstruct
the residual error. SAELens name: `topk`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from saes.architectures import ops
from saes.architectures.base import SparseAutoencoder


class TopKSAE(SparseAutoencoder):
    """TopK SAE (`arch="topk"`, needs `k`)."""

    arch = "topk"
    saelens_architecture = "topk"

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        return ops.topk_per_row(pre, pre, self.cfg.k).relu()  # [batch, d_sae]

    def _saelens_extra_config(self) -> dict[str, Any]:
        return {"k": self.cfg.k, "rescale_acts_by_decoder_norm": False}
