"""ReLU SAE with an L1 penalty weighted by decoder norms (Anthropic, "Towards Monosemanticity" and the
April 2024 update).

    acts = relu((x - b_dec) W_enc + b_enc)
    loss = ||x - x_hat||^2 + lambda * sum_i acts_i * ||W_dec[i]||

Weighting the L1 by decoder norms removes the incentive to shrink activations by growing decoder
rows, so the decoder is left unconstrained. SAELens name: `standard` (`transcoder` for transcoders).
"""

from __future__ import annotations

from torch import Tensor

from saes.architectures.base import SparseAutoencoder


class ReluSAE(SparseAutoencoder):
    """L1-penalised ReLU SAE (`arch="relu"`)."""

    arch = "relu"
    saelens_architecture = "standard"
    saelens_transcoder_architecture = "transcoder"
    unit_norm_decoder = False

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        return pre.relu()  # [batch, d_sae]

    def _sparsity(self, acts: Tensor, pre: Tensor) -> Tensor:
        return (acts * self.W_dec.norm(dim=-1)).sum(-1).mean()
