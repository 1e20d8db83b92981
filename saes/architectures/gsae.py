"""Gradient SAE, g-SAE (Olmo et al. 2025, "Features that Make a Difference: Leveraging Gradients for
Improved Dictionary Learning").

TopK selects latents by activation alone; g-SAE also weighs each latent's effect on a downstream
output. Given g = dL/dx_out, the gradient of a downstream quantity (e.g. the next-token loss) with
respect to the reconstructed activation, the selection score of latent i is

    score_i = a_i * (1 + beta * e_i / mean_j e_j),   e_i = |W_dec[i] . g|,  a = relu(pre)

and the k highest-scoring latents keep their activation a_i (the score only selects). We divide e by
its per-token mean so that beta does not depend on the gradient's scale (the paper uses the raw
gradient and tunes beta). Pass the gradient as `encode(x, grad=g)` / `loss(x, grad=g)`, or as a third
batch element, or let the store record it (`ActivationStore(..., with_grads=True)`, key
`"<hook>:grad"`), for the trainer.

Without a gradient (inference, or training data with no gradient signal) the score is a itself and
g-SAE is exactly a TopK SAE; it is exported to SAELens as `topk`. It trains on TopK's sparse path
with its own selection (`_select`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from saes.architectures.topk import TopKKnobs, TopKSAE


@dataclass(frozen=True)
class GSAEKnobs(TopKKnobs):
    """Knobs of g-SAE: TopK's, and the weight of the gradient term."""

    gsae_beta: float = 1.0
    """Weight beta of the gradient term in the selection score z * (1 + beta * |W_dec g|)."""


class GradientSAE(TopKSAE):
    """Gradient-aware TopK SAE (`arch="gsae"`, needs `k`; the knob `gsae_beta` weighs the gradient term)."""

    arch = "gsae"
    knobs = GSAEKnobs
    saelens_architecture = "topk"

    def _select(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        if grad is None:
            return super()._select(pre, grad)
        effect = (grad.to(self.W_dec.dtype) @ self.W_dec.detach().T).abs()  # [batch, d_sae]
        effect = effect / effect.mean(-1, keepdim=True).clamp_min(1e-12)
        score = pre.detach().relu() * (1 + self.cfg.knobs.gsae_beta * effect)
        return score.topk(self.cfg.k, dim=-1, sorted=False).indices  # [batch, k]

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        idx = self._select(pre, grad)  # [batch, k]
        return pre.new_zeros(pre.shape).scatter(-1, idx, pre.relu().gather(-1, idx))  # [batch, d_sae]
