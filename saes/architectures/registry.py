"""The architecture table: registry name -> class and what its config needs. Loading picks the class
from `cfg.arch` here; adding an architecture is one module plus one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from saes.architectures.base import SparseAutoencoder
from saes.architectures.batchtopk import BatchTopKSAE
from saes.architectures.clt import CrossLayerJumpReLU, CrossLayerTopK
from saes.architectures.feature_choice import FeatureChoiceSAE
from saes.architectures.gated import GatedSAE
from saes.architectures.gsae import GradientSAE
from saes.architectures.jumprelu import JumpReLUSAE
from saes.architectures.knobs import Knobs
from saes.architectures.matryoshka import MatryoshkaSAE
from saes.architectures.mutual_choice import MutualChoiceSAE
from saes.architectures.relu import ReluSAE
from saes.architectures.topk import TopKSAE

if TYPE_CHECKING:
    from saes.config import SAEConfig


@dataclass(frozen=True)
class ArchSpec:
    """One row of the table."""

    cls: type[SparseAutoencoder]
    needs_k: bool
    summary: str

    @property
    def knobs(self) -> type[Knobs]:
        """The architecture's own settings (a frozen dataclass declared beside its class)."""
        return self.cls.knobs


REGISTRY: dict[str, ArchSpec] = {
    "relu": ArchSpec(ReluSAE, False, "ReLU + L1 weighted by decoder norms"),
    "topk": ArchSpec(TopKSAE, True, "k largest per token, AuxK"),
    "batchtopk": ArchSpec(BatchTopKSAE, True, "k * batch largest per batch; threshold at inference"),
    "jumprelu": ArchSpec(JumpReLUSAE, False, "learned thresholds, straight-through L0"),
    "gated": ArchSpec(GatedSAE, False, "gate and magnitude paths, L1 on the gate"),
    "matryoshka": ArchSpec(MatryoshkaSAE, True, "TopK with nested prefixes that each reconstruct"),
    "mutual_choice": ArchSpec(MutualChoiceSAE, True, "joint budget over the batch, Zipf aux loss"),
    "feature_choice": ArchSpec(FeatureChoiceSAE, True, "latents pick their quota of tokens, Zipf aux loss"),
    "clt_topk": ArchSpec(CrossLayerTopK, True, "transcoder set over all layers, TopK per layer"),
    "clt_jumprelu": ArchSpec(CrossLayerJumpReLU, False, "transcoder set over all layers, JumpReLU"),
    "gsae": ArchSpec(GradientSAE, True, "TopK selection weighted by downstream gradient effect"),
}


def build(cfg: SAEConfig, *, generator: torch.Generator | None = None) -> SparseAutoencoder:
    """A freshly initialised SAE for `cfg` (an `SAEConfig`); `generator` seeds the initialisation.

    Example:
        >>> from saes import SAEConfig, build
        >>> build(SAEConfig("relu", d_in=8, d_sae=32))
        ReluSAE(arch=relu, d_in=8, d_sae=32, d_out=8)
    """
    return REGISTRY[cfg.arch].cls(cfg, generator=generator)
