"""BatchTopK SAE (Bussmann et al. 2024): the k * batch largest activations of the whole batch survive.

Training: acts = keep the top (k * batch) entries of relu(pre) over the [batch, d_sae] matrix, so
tokens get a variable number of latents while the mean is k. Inference cannot depend on the batch, so
a single threshold theta is learned as an exponential moving average of the smallest kept activation,
and `eval()` mode uses acts = relu(pre) * (pre > theta), which is what SAELens calls `jumprelu`.
`encode` follows the module's mode: batch allocation under `train()`, the threshold under `eval()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interp.errors import InterpError
from saes.architectures import ops
from saes.architectures.base import SparseAutoencoder
from saes.architectures.knobs import Knobs


@dataclass(frozen=True)
class ThresholdKnobs(Knobs):
    """Knobs of the batch-allocated architectures, which learn an inference threshold (`batchtopk`,
    `mutual_choice`, `feature_choice`)."""

    threshold_momentum: float = 0.01
    """EMA rate of the inference threshold learned during training."""

    def __post_init__(self) -> None:
        if not 0 < self.threshold_momentum <= 1:
            raise InterpError("threshold_momentum must be in (0, 1]")


class BatchTopKSAE(SparseAutoencoder):
    """BatchTopK SAE (`arch="batchtopk"`, needs `k`, the mean active latents per token)."""

    arch = "batchtopk"
    knobs = ThresholdKnobs
    saelens_architecture = "jumprelu"
    saelens_transcoder_architecture = "jumprelu_transcoder"

    threshold: Tensor  # [] buffer (scalar inference threshold)

    def _init_encoder_bias(self) -> None:
        super()._init_encoder_bias()
        self.register_buffer("threshold", torch.zeros((), dtype=torch.float32))

    def _allocate(self, pre: Tensor) -> Tensor:
        return ops.topk_global(pre.relu(), self.cfg.k * pre.shape[0])

    def _activate(self, pre: Tensor, grad: Tensor | None) -> Tensor:
        if self.training:
            return self._allocate(pre)  # [batch, d_sae]
        return pre.relu() * (pre > self.threshold.to(pre.dtype))

    def _update_statistics(self, pre: Tensor, acts: Tensor) -> None:
        kept = acts[acts > 0]
        if kept.numel():
            rate = self.cfg.knobs.threshold_momentum
            self.threshold.mul_(1 - rate).add_(rate * kept.min().float())

    def _saelens_params(self) -> dict[str, Tensor]:
        return {
            **super()._saelens_params(),
            "threshold": self.threshold.expand(self.cfg.d_sae).to(self.W_enc.dtype),
        }

    def _load_saelens_params(self, state: dict[str, Tensor]) -> None:
        super()._load_saelens_params(state)
        with torch.no_grad():
            self.threshold.fill_(float(state["threshold"].float().mean()))
