"""saes: sparse autoencoders over hooked models -- architectures, activation store, trainer,
evaluation, and the SAELens file format."""

from saes.architectures import REGISTRY, SAELoss, SparseAutoencoder, build
from saes.config import SAEConfig, TrainConfig
from saes.evaluate import EvalResult, evaluate
from saes.io import load
from saes.report import write_report
from saes.store import ActivationStore
from saes.trainer import Trainer, TrainingDivergedError
from saes.transcoder_set import TranscoderSet, train_transcoder_set

__all__ = [
    "REGISTRY",
    "ActivationStore",
    "EvalResult",
    "SAEConfig",
    "SAELoss",
    "SparseAutoencoder",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "TranscoderSet",
    "build",
    "evaluate",
    "load",
    "train_transcoder_set",
    "write_report",
]
