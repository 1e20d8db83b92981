"""Cross-layer transcoders (Ameisen et al. 2025, "Circuit Tracing"), as one SAE over concatenated layers.

A transcoder set for an `n_layers` model reads every layer's MLP input and writes every layer's MLP
output. Stacking the layers along the width turns it into one SAE with structured weights:

    x      = [x_0 | x_1 | ... ]             [batch, n_layers * d_model]   (MLP inputs, one block per layer)
    acts_l = sparsify(x_l W_enc^(l) + b_enc^(l))                        [batch, n_features] per layer
    y_l'   = sum_{l <= l'} acts_l W_dec^(l -> l') + b_dec^(l')           (MLP outputs)

so `W_enc` is block-diagonal and `W_dec` block upper-triangular (`cross_layer=True`: a layer's features
write to its own and every later MLP output) or block-diagonal (`cross_layer=False`: independent
per-layer transcoders trained side by side from one activation pass). Entries outside the blocks are
zero at initialisation and their gradients are masked, so Adam never moves them and the existing
`Trainer` (decoder-norm constraint, AuxK, checkpoints) trains the whole set unchanged.

Sparsity is per layer: `clt_topk` keeps the `k // n_layers` largest pre-activations of each layer's
block; `clt_jumprelu` learns a threshold per feature (the JumpReLU straight-through estimator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.errors import InterpError
from saes.architectures.jumprelu import JumpReLUKnobs, JumpReLUSAE
from saes.architectures.knobs import Knobs
from saes.architectures.topk import TopKKnobs, TopKSAE

if TYPE_CHECKING:
    from saes.config import SAEConfig


def block_masks(n_layers: int, d_in: int, d_sae: int, d_out: int, cross_layer: bool) -> tuple[Tensor, Tensor]:
    """(encoder mask [d_in, d_sae], decoder mask [d_sae, d_out]) of the allowed weight blocks."""
    d_model, n_feat, d_model_out = d_in // n_layers, d_sae // n_layers, d_out // n_layers
    layer_in = torch.arange(d_in) // d_model  # [d_in]
    layer_feat = torch.arange(d_sae) // n_feat  # [d_sae]
    layer_out = torch.arange(d_out) // d_model_out  # [d_out]
    enc = (layer_in[:, None] == layer_feat[None, :]).float()
    if cross_layer:
        dec = (layer_feat[:, None] <= layer_out[None, :]).float()
    else:
        dec = (layer_feat[:, None] == layer_out[None, :]).float()
    return enc, dec


@dataclass(frozen=True)
class LayerKnobs(Knobs):
    """Knobs of a transcoder set over all layers."""

    n_layers: int = 1
    """Layers the set spans: inputs and outputs are the layers' activations concatenated, so `d_in`,
    `d_sae`, `d_out` (and `k`) are multiples of it."""

    cross_layer: bool = True
    """Each layer's features write to every later layer's output (a cross-layer transcoder). False:
    each layer's features write to its own layer only (per-layer transcoders)."""

    def check(self, cfg: SAEConfig) -> None:
        sizes = {"d_in": cfg.d_in, "d_sae": cfg.d_sae, "d_out": cfg.out_dim, "k": cfg.k or 0}
        bad = [f"{n}={v}" for n, v in sizes.items() if self.n_layers < 1 or v % self.n_layers]
        if bad:
            raise InterpError(
                f"a transcoder set over n_layers={self.n_layers} needs sizes divisible by it; got {', '.join(bad)}"
            )


@dataclass(frozen=True)
class CLTTopKKnobs(LayerKnobs, TopKKnobs):
    """Knobs of `clt_topk`: the layer layout and TopK's."""


@dataclass(frozen=True)
class CLTJumpReLUKnobs(LayerKnobs, JumpReLUKnobs):
    """Knobs of `clt_jumprelu`: the layer layout and JumpReLU's."""


class _LayerBlocks:
    """Mixin: zero the weights outside the layer blocks and keep them zero during training."""

    cfg: Any
    W_enc: Tensor
    W_dec: Tensor

    def _mask_blocks(self) -> None:
        cfg = self.cfg
        enc, dec = block_masks(cfg.knobs.n_layers, cfg.d_in, cfg.d_sae, cfg.out_dim, cfg.knobs.cross_layer)
        with torch.no_grad():
            self.W_enc.mul_(enc.to(self.W_enc.dtype))
            self.W_dec.mul_(dec.to(self.W_dec.dtype))
            self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))
        self.W_enc.register_hook(lambda g, m=enc.to(self.W_enc.dtype): g * m.to(g.device))
        self.W_dec.register_hook(lambda g, m=dec.to(self.W_dec.dtype): g * m.to(g.device))

    def _saelens_extra_config(self) -> dict[str, Any]:
        return {"n_layers": self.cfg.knobs.n_layers, "cross_layer": self.cfg.knobs.cross_layer}


class CrossLayerTopK(_LayerBlocks, TopKSAE):
    """Transcoder set with per-layer TopK (`arch="clt_topk"`; `k` counts all layers, k // n_layers each)."""

    arch = "clt_topk"
    knobs = CLTTopKKnobs
    saelens_architecture = None
    saelens_transcoder_architecture = None

    def __init__(self, cfg: Any, *, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator=generator)
        self._mask_blocks()

    @property
    def k_per_layer(self) -> int:
        return self.cfg.k // self.cfg.knobs.n_layers

    def _select(self, pre: Float[Tensor, "batch d_sae"], grad: Tensor | None) -> Int[Tensor, "batch k"]:
        n_layers = self.cfg.knobs.n_layers
        n_feat = self.cfg.d_sae // n_layers
        blocks = pre.reshape(pre.shape[0], n_layers, n_feat)  # [batch, layer, n_feat]
        idx = blocks.topk(self.k_per_layer, dim=-1, sorted=False).indices  # [batch, layer, k_l]
        offsets = torch.arange(n_layers, device=pre.device)[None, :, None] * n_feat
        return (idx + offsets).reshape(pre.shape[0], -1)  # [batch, k]

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        idx = self._select(pre, grad)
        return torch.zeros_like(pre).scatter(-1, idx, pre.gather(-1, idx)).relu()  # [batch, d_sae]

    def _saelens_extra_config(self) -> dict[str, Any]:
        return {**TopKSAE._saelens_extra_config(self), **_LayerBlocks._saelens_extra_config(self)}


class CrossLayerJumpReLU(_LayerBlocks, JumpReLUSAE):
    """Transcoder set with per-feature JumpReLU thresholds (`arch="clt_jumprelu"`)."""

    arch = "clt_jumprelu"
    knobs = CLTJumpReLUKnobs
    saelens_architecture = None
    saelens_transcoder_architecture = None

    def __init__(self, cfg: Any, *, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator=generator)
        self._mask_blocks()
