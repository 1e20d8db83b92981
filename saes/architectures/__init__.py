"""SAE architectures, one module each, registered by name in `REGISTRY`."""

from saes.architectures.base import SAELoss, SparseAutoencoder
from saes.architectures.registry import REGISTRY, ArchSpec, build

__all__ = ["REGISTRY", "ArchSpec", "SAELoss", "SparseAutoencoder", "build"]
