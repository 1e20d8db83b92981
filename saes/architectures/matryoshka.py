"""Matryoshka SAE (Bussmann et al. 2025; Nabeshima 2024): nested prefixes of the dictionary each
reconstruct the input on their own.

With prefix lengths m_1 < m_2 < ... < m_n = d_sae,

    acts = relu(topk_k(pre))                                   (TopK activation)
    loss = mean_j ||x - (acts[:, :m_j] W_dec[:m_j] + b_dec)||^2  + AuxK

so the first latents are pushed to carry the most general features and later ones refine them.
Inference is a plain TopK SAE, which is how it is exported to SAELens (`topk`). Training takes
TopK's sparse path, each prefix decoding the chosen latents with the ones past it weighted 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from interp.errors import InterpError
from saes import sparse
from saes.architectures.topk import TopKKnobs, TopKSAE

if TYPE_CHECKING:
    from saes.config import SAEConfig


@dataclass(frozen=True)
class MatryoshkaKnobs(TopKKnobs):
    """Knobs of Matryoshka: TopK's, and the nested prefix lengths."""

    matryoshka_prefixes: tuple[int, ...] = ()
    """Nested prefix lengths, increasing, the last equal to `d_sae`. Empty means
    (d_sae/8, d_sae/4, d_sae/2, d_sae) rounded down (at least 1)."""

    def prefixes(self, d_sae: int) -> tuple[int, ...]:
        """The prefix lengths for a dictionary of `d_sae` latents (explicit, or the geometric ladder)."""
        if self.matryoshka_prefixes:
            return tuple(self.matryoshka_prefixes)
        ladder = sorted({max(1, d_sae // 8), max(1, d_sae // 4), max(1, d_sae // 2)})
        return tuple(p for p in ladder if p < d_sae) + (d_sae,)

    def check(self, cfg: SAEConfig) -> None:
        prefixes = self.prefixes(cfg.d_sae)
        if list(prefixes) != sorted(set(prefixes)) or prefixes[-1] != cfg.d_sae or prefixes[0] < 1:
            raise InterpError(
                f"matryoshka_prefixes must increase strictly and end at d_sae={cfg.d_sae}, got {prefixes}"
            )


class MatryoshkaSAE(TopKSAE):
    """Matryoshka TopK SAE (`arch="matryoshka"`, needs `k`; prefixes from its knob `matryoshka_prefixes`)."""

    arch = "matryoshka"
    knobs = MatryoshkaKnobs
    saelens_architecture = "topk"

    def _prefix_outputs(self, acts: Tensor) -> list[Tensor]:
        """Normalised reconstructions [batch, d_out] from each prefix of the latents."""
        return [acts[:, :m] @ self.W_dec[:m] + self.b_dec for m in self.cfg.knobs.prefixes(self.cfg.d_sae)]

    def _reconstruction(self, acts: Tensor, recon: Tensor, target: Tensor) -> Tensor:
        errors = [(out - target).pow(2).sum(-1).mean() for out in self._prefix_outputs(acts)]
        return torch.stack(errors).mean()

    def _sparse_reconstruction(
        self, vals: Tensor, bags: sparse.LatentBags, target: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Mean prefix error from the k (index, value) pairs: latents past a prefix get weight 0."""
        outs = [
            sparse.topk_decode(vals * (bags.idx < m), bags, self.W_dec, self.b_dec)
            for m in self.cfg.knobs.prefixes(self.cfg.d_sae)
        ]
        errors = [(out - target).pow(2).sum(-1).mean() for out in outs]  # outs: [batch, d_out] each
        return torch.stack(errors).mean(), outs[-1]

    def prefix_reconstructions(self, x: Tensor) -> list[Tensor]:
        """Reconstructions of `x` (model units) from each nested prefix; the last is `forward(x)`."""
        lead = self._check_width(x, self.cfg.d_in, "input")
        acts = self.encode(x).reshape(-1, self.cfg.d_sae)
        return [(out / self.scale_out).reshape(*lead, -1) for out in self._prefix_outputs(acts)]

    def _saelens_extra_config(self) -> dict[str, Any]:
        return {"k": self.cfg.k, "rescale_acts_by_decoder_norm": False}
