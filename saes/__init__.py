"""saes: sparse autoencoders over hooked models -- architectures, activation store, trainer,
evaluation, and the SAELens file format.

Names are imported on first use (PEP 562), so the CLI can register `interp sae` without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "REGISTRY": "saes.architectures",
    "SAELoss": "saes.architectures",
    "SparseAutoencoder": "saes.architectures",
    "build": "saes.architectures",
    "SAEConfig": "saes.config",
    "TrainConfig": "saes.config",
    "EvalResult": "saes.evaluation",
    "evaluate": "saes.evaluation",
    "load": "saes.io",
    "write_report": "saes.report",
    "ActivationStore": "saes.store",
    "ShardCache": "saes.shards",
    "Trainer": "saes.trainer",
    "TrainingDivergedError": "saes.trainer",
    "fit_many": "saes.multi",
    "ParallelTrainer": "saes.parallel",
    "TranscoderSet": "saes.transcoder_set",
    "train_transcoder_set": "saes.transcoder_set",
}

__all__ = [
    "ActivationStore",
    "EvalResult",
    "ParallelTrainer",
    "REGISTRY",
    "SAEConfig",
    "SAELoss",
    "ShardCache",
    "SparseAutoencoder",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "TranscoderSet",
    "build",
    "evaluate",
    "fit_many",
    "load",
    "train_transcoder_set",
    "write_report",
]

if TYPE_CHECKING:
    from saes.architectures import REGISTRY, SAELoss, SparseAutoencoder, build
    from saes.config import SAEConfig, TrainConfig
    from saes.evaluation import EvalResult, evaluate
    from saes.io import load
    from saes.multi import fit_many
    from saes.parallel import ParallelTrainer
    from saes.report import write_report
    from saes.shards import ShardCache
    from saes.store import ActivationStore
    from saes.trainer import Trainer, TrainingDivergedError
    from saes.transcoder_set import TranscoderSet, train_transcoder_set


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'saes' has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(_EXPORTS[name]), name)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
