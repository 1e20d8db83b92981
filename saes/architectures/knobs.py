"""Architecture knobs: each architecture module declares a small frozen dataclass of the settings only it
reads (JumpReLU's threshold and bandwidth, Matryoshka's prefixes, ...) and names it in its SAE class's
`knobs`; `SAEConfig.knobs` holds an instance of it. `Knobs` itself has no fields (ReLU, gated).

A fragment checks its own values in `__post_init__` and, in `check(cfg)`, what depends on the shared
fields of the whole `SAEConfig` (sizes, `k`). Field names are the ones the flat config used, so old
`cfg.json` files map one to one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saes.config import SAEConfig


@dataclass(frozen=True)
class Knobs:
    """No architecture-specific settings."""

    def check(self, cfg: SAEConfig) -> None:
        """Invariants that involve the shared fields of `cfg` (nothing by default)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The knob names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))
