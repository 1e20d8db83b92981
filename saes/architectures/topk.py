"""TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders").

    acts = relu(topk_k((x - b_dec) W_enc + b_enc))

Exactly the k largest pre-activations of each token survive (fewer are non-zero only when fewer than
k are positive). Dead latents are revived by the AuxK loss: the top `aux_k` dead latents reconstruct
the residual error. SAELens name: `topk`.

Training takes the sparse path of `saes.sparse` unless its knob `sparse_topk` is off: the loss is computed
from the k (index, value) pairs per token, gradients reach only the chosen latents, and AuxK runs
densely on the dead latents alone. Subclasses (`gsae`, `matryoshka`) change which latents are chosen
(`_select`) or how they reconstruct (`_sparse_reconstruction`) and inherit the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor

from saes import sparse
from saes.architectures import ops
from saes.architectures.base import SAELoss, SparseAutoencoder
from saes.architectures.knobs import Knobs


@dataclass(frozen=True)
class TopKKnobs(Knobs):
    """Knobs of the TopK family (`topk`, `gsae`, `matryoshka`, `clt_topk`)."""

    sparse_topk: bool = True
    """Train with the sparse kernels of `saes.sparse`: decode from the k (index, value) pairs per token
    and send gradients only to the chosen latents, never building the dense [batch, d_sae] code (the
    same loss and gradients as the dense path, which `False` selects). Ignored at inference."""


class TopKSAE(SparseAutoencoder):
    """TopK SAE (`arch="topk"`, needs `k`)."""

    arch = "topk"
    knobs = TopKKnobs
    saelens_architecture = "topk"

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        return ops.topk_per_row(pre, pre, self.cfg.k).relu()  # [batch, d_sae]

    def _select(self, pre: Float[Tensor, "batch d_sae"], grad: Tensor | None) -> Int[Tensor, "batch k"]:
        """Indices of the latents each token keeps (called without grad on the pre-activations)."""
        return ops.topk_indices(pre, self.cfg.k)

    def _sparse_reconstruction(
        self, vals: Float[Tensor, "batch k"], bags: sparse.LatentBags, target: Tensor
    ) -> tuple[Tensor, Float[Tensor, "batch d_out"]]:
        """(reconstruction loss, full reconstruction) from the chosen latents."""
        recon = sparse.topk_decode(vals, bags, self.W_dec, self.b_dec)  # [batch, d_out]
        return (recon - target).pow(2).sum(-1).mean(), recon

    def loss(
        self,
        x: Float[Tensor, "batch d_in"],
        target: Float[Tensor, "batch d_out"] | None = None,
        *,
        sparsity_coef: float = 1.0,
        aux_coef: float = 0.0,
        dead_mask: Tensor | None = None,
        density: Tensor | None = None,
        aux_k: int | None = None,
        grad: Tensor | None = None,
    ) -> SAELoss:
        """The base class's loss. With the `sparse_topk` knob it is computed sparsely (same value and gradients)
        and `acts` is a sparse COO tensor; the TopK family keeps no running statistics to update."""
        if not self.cfg.knobs.sparse_topk:
            return super().loss(
                x,
                target,
                sparsity_coef=sparsity_coef,
                aux_coef=aux_coef,
                dead_mask=dead_mask,
                density=density,
                aux_k=aux_k,
                grad=grad,
            )
        x_n, t_n, g = self._normalized_batch(x, target, grad)  # [batch, d_in], [batch, d_out]
        b_pre = self.b_dec if self.subtracts_b_dec else None
        vals, bags = sparse.topk_encode(x_n, self.W_enc, self.b_enc, b_pre, lambda pre: self._select(pre, g))
        vals = vals.relu()  # [batch, k]
        mse, recon = self._sparse_reconstruction(vals, bags, t_n)
        aux = mse.new_zeros(())
        if dead_mask is not None and bool(dead_mask.any()):
            x_c = x_n if b_pre is None else x_n - b_pre
            residual = (t_n - recon).detach()
            k_aux = aux_k or max(1, self.cfg.d_in // 2)
            aux = sparse.auxk_loss(x_c, self.W_enc, self.b_enc, self.W_dec, residual, dead_mask, k_aux)
        aux_w = aux_coef if self.aux_weight is None else self.aux_weight
        acts = sparse.sparse_codes(vals, bags)
        return SAELoss(total=mse + aux_w * aux, mse=mse, sparsity=mse.new_zeros(()), aux=aux, acts=acts)

    def _saelens_extra_config(self) -> dict[str, Any]:
        return {"k": self.cfg.k, "rescale_acts_by_decoder_norm": False}
