"""Frozen, self-documenting configurations: what an SAE *is* (`SAEConfig`) and how it is trained (`TrainConfig`).

Both are frozen dataclasses with a docstring under every field, check their invariants in
`__post_init__`, and round-trip through JSON (`to_dict` / `from_dict`). Derived values (the output
width of a transcoder, the number of training steps) are properties or trainer state, never written
back into the config.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

from interp.errors import InterpError
from saes.architectures.knobs import Knobs
from saes.architectures.registry import REGISTRY

Normalize = Literal["none", "mean_norm"]
BDecInit = Literal["geometric_median", "mean", "zeros"]


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InterpError(f"{cls.__name__}: unknown field(s) {unknown}; valid fields are {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


@dataclass(frozen=True)
class SAEConfig:
    """What a sparse autoencoder (or transcoder) is: architecture, sizes, and the hooks it reads and writes.

    Example:
        >>> cfg = SAEConfig("topk", d_in=64, d_sae=512, k=8, hook_in="blocks.0.hook_resid_post")
        >>> SAEConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    arch: str
    """Architecture name, a key of `saes.architectures.REGISTRY` (`relu`, `topk`, `batchtopk`, `jumprelu`,
    `gated`, `matryoshka`, `mutual_choice`, `feature_choice`, `gsae`)."""

    d_in: int
    """Width of the activations read at `hook_in` (for `attn.hook_z`: n_heads * d_head)."""

    d_sae: int
    """Number of latents (dictionary size)."""

    k: int | None = None
    """Active latents per token for the TopK family (`topk`, `gsae`, `matryoshka`); the mean per token
    for batch-allocated ones (`batchtopk`, `mutual_choice`, `feature_choice`). Unused by the others."""

    d_out: int | None = None
    """Width of the reconstructed activations; None means `d_in`. Differs only for transcoders."""

    hook_in: str = ""
    """Canonical hook the SAE reads, e.g. `blocks.1.hook_resid_post`."""

    hook_out: str | None = None
    """Hook the SAE reconstructs; None means `hook_in` (a normal SAE). A different hook makes a transcoder."""

    model_name: str = ""
    """Name of the model the SAE was trained on (informational; written to the SAELens metadata)."""

    normalize: Normalize = "mean_norm"
    """`mean_norm`: inputs (and targets) are scaled by a constant estimated before training so their mean
    L2 norm is sqrt(d_in) (SAELens' `expected_average_only_in`); the scale is stored with the SAE and
    undone on decode, so `forward` works in the model's units. `none`: no scaling."""

    apply_b_dec_to_input: bool = True
    """Subtract `b_dec` from the input before encoding (standard SAEs). Forced off for transcoders."""

    dtype: str = "float32"
    """Parameter dtype name (`float32`, `float64`, `bfloat16`, `float16`)."""

    knobs: Knobs | dict[str, Any] | None = None
    """The architecture's own settings: an instance of `REGISTRY[arch].knobs` (e.g. `JumpReLUKnobs`),
    built from a dict or None. Knobs can also be passed by name, `SAEConfig("jumprelu", 8, 32,
    jumprelu_bandwidth=0.05)`; a knob the architecture does not have is an error listing its knobs."""

    def __post_init__(self) -> None:
        if self.arch not in REGISTRY:
            raise InterpError(f"unknown SAE architecture {self.arch!r}; choose one of {sorted(REGISTRY)}")
        for name in ("d_in", "d_sae"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise InterpError(f"SAEConfig.{name} must be a positive int, got {value!r}")
        if self.d_out is not None and (not isinstance(self.d_out, int) or self.d_out <= 0):
            raise InterpError(f"SAEConfig.d_out must be a positive int or None, got {self.d_out!r}")
        spec = REGISTRY[self.arch]
        if spec.needs_k:
            if self.k is None:
                raise InterpError(
                    f"architecture {self.arch!r} needs k (active latents per token); pass k=..."
                )
            if not isinstance(self.k, int) or not 0 < self.k <= self.d_sae:
                raise InterpError(
                    f"k={self.k} must be an int with 0 < k <= d_sae={self.d_sae}; "
                    "lower k or raise the expansion factor"
                )
        if self.normalize not in ("none", "mean_norm"):
            raise InterpError(f"normalize must be 'none' or 'mean_norm', got {self.normalize!r}")
        if self.dtype not in ("float32", "float64", "bfloat16", "float16"):
            raise InterpError(f"unsupported dtype {self.dtype!r}")
        if type(self.knobs) is not spec.knobs:
            object.__setattr__(self, "knobs", knobs_for(self.arch, self.knobs))
        self.knobs.check(self)

    # derived, read-only views -------------------------------------------------------------
    @property
    def out_dim(self) -> int:
        """Width of the reconstruction: `d_out`, or `d_in` when not a transcoder."""
        return self.d_in if self.d_out is None else self.d_out

    @property
    def out_hook(self) -> str:
        """The hook reconstructed: `hook_out`, or `hook_in` for a normal SAE."""
        return self.hook_in if self.hook_out is None else self.hook_out

    @property
    def is_transcoder(self) -> bool:
        """True when the SAE reconstructs a different hook (or width) than it reads."""
        return self.out_hook != self.hook_in or self.out_dim != self.d_in

    @property
    def prefixes(self) -> tuple[int, ...]:
        """Matryoshka prefix lengths (the explicit ones, or the default geometric ladder)."""
        return self.knobs.prefixes(self.d_sae)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `SAEConfig.from_dict(cfg.to_dict()) == cfg`."""
        out = dataclasses.asdict(self)
        out["knobs"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["knobs"].items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        """Inverse of `to_dict`; unknown keys are an error that lists the valid ones. A flat dict of the
        layout before per-architecture knobs (every architecture's knobs side by side) loads too: the
        architecture's own knobs are kept, the others (which it never read) dropped."""
        data = dict(data)
        if "knobs" not in data:
            own = set(REGISTRY[data["arch"]].knobs.names()) if data.get("arch") in REGISTRY else set()
            legacy = {k: data.pop(k) for k in [k for k in data if k in _ALL_KNOBS]}
            data["knobs"] = {k: v for k, v in legacy.items() if k in own}
        return _from_dict(cls, data)


_ALL_KNOBS = frozenset(name for spec in REGISTRY.values() for name in spec.knobs.names())


def knobs_for(arch: str, values: Knobs | dict[str, Any] | None) -> Knobs:
    """`arch`'s knobs from a dict (or None, or another architecture's knobs, of which the values set
    away from their defaults carry over). A knob `arch` does not have is one error listing its knobs."""
    cls = REGISTRY[arch].knobs
    if isinstance(values, Knobs):
        values = {
            f.name: getattr(values, f.name)
            for f in dataclasses.fields(values)
            if getattr(values, f.name) != f.default
        }
    values = dict(values or {})
    unknown = sorted(set(values) - set(cls.names()))
    if unknown:
        owners = sorted(a for a, spec in REGISTRY.items() if unknown[0] in spec.knobs.names())
        where = f" ({unknown[0]} is only for the {', '.join(owners)} architectures)" if owners else ""
        raise InterpError(
            f"SAE architecture {arch!r} has no knob {', '.join(unknown)}{where}; "
            f"its knobs: {', '.join(cls.names()) or 'none'}"
        )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _knobs_by_name(init: Any) -> Any:
    """Let `SAEConfig(...)` take knobs as keyword arguments (merged into `knobs`, checked in `__post_init__`)."""
    names = {f.name for f in dataclasses.fields(SAEConfig)}

    @functools.wraps(init)
    def __init__(self: SAEConfig, *args: Any, **kwargs: Any) -> None:
        named = {k: kwargs.pop(k) for k in [k for k in kwargs if k not in names]}
        if named:
            given = kwargs.get("knobs")
            base = dataclasses.asdict(given) if isinstance(given, Knobs) else dict(given or {})
            kwargs["knobs"] = {**base, **named}
        init(self, *args, **kwargs)

    return __init__


SAEConfig.__init__ = _knobs_by_name(SAEConfig.__init__)  # type: ignore[method-assign]


@dataclass(frozen=True)
class TrainConfig:
    """How an SAE is trained. Every field has a default that trains a small SAE sensibly.

    Example:
        >>> tc = TrainConfig(lr=1e-3, total_steps=1000, checkpoint_every=200, checkpoint_dir="ckpt")
        >>> TrainConfig.from_dict(tc.to_dict()) == tc
        True
    """

    lr: float = 4e-4
    """Peak Adam learning rate."""

    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam (beta1, beta2)."""

    lr_warmup_steps: int = 0
    """Linear warm-up from 0 to `lr` over this many steps."""

    lr_decay_steps: int = 0
    """Linear decay to 0 over the last this-many steps (needs a known number of steps)."""

    sparsity_coef: float = 1.0
    """Coefficient of the sparsity penalty: L1 for `relu`/`gated`, L0 for `jumprelu`; unused by TopK-style
    architectures, whose sparsity is structural."""

    sparsity_warmup_steps: int = 0
    """Linear warm-up of `sparsity_coef` from 0 over this many steps."""

    aux_coef: float = 1 / 32
    """Coefficient of the auxiliary loss (AuxK, the auxiliary Zipf loss, or the gated SAE's gate loss)."""

    batch_size: int = 4096
    """Activations per step; informational for `fit` (batches come from the iterable), used by the store
    and the CLI, and to turn `total_tokens` into steps."""

    total_steps: int | None = None
    """Stop after this many optimiser steps (None: when the batches run out, or `total_tokens`)."""

    total_tokens: int | None = None
    """Stop after this many activations (alternative to `total_steps`)."""

    b_dec_init: BDecInit = "geometric_median"
    """Initial decoder bias: geometric median or mean of the first batch's targets, or zeros."""

    norm_estimation_batches: int = 1
    """Batches used to estimate the `mean_norm` input scale (before training; they are trained on too)."""

    dead_window_tokens: int = 1_000_000
    """A latent that has not fired on this many consecutive activations counts as dead."""

    aux_k: int | None = None
    """Latents in the auxiliary reconstruction (AuxK); None means d_in // 2."""

    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this value (None: no clipping)."""

    seed: int = 0
    """Seed of the SAE initialisation and of any training randomness."""

    checkpoint_dir: str | None = None
    """Folder for atomic checkpoints (`step_000100/`); also where `fit(resume=True)` resumes from."""

    checkpoint_every: int = 0
    """Write a checkpoint every this many steps (0: only the final one, when `checkpoint_dir` is set)."""

    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep."""

    log_every: int = 50
    """Log metrics (logging, progress bar, wandb) every this many steps."""

    progress: bool = True
    """Show a tqdm progress bar."""

    wandb_project: str | None = None
    """Log to this Weights & Biases project (opt-in; needs `wandb` installed)."""

    autocast: str | None = None
    """Mixed precision: run the SAE's forward and loss under `torch.autocast` in `bfloat16` or `float16`
    while parameters, gradients and Adam state stay float32 (master weights); `float16` also scales
    the loss against underflow (`torch.amp.GradScaler`). None: everything in the SAE's dtype."""

    prefetch: bool = True
    """Compute the next batches of a source that runs a model (an `ActivationStore`) on a background
    thread while the trainer steps, with the torch threads split between the two (used on a CPU with
    two or more cores, in a single process; the batches and their order are unchanged; see
    `saes.prefetch`)."""

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InterpError(f"lr must be positive and finite, got {self.lr}")
        for name in ("lr_warmup_steps", "lr_decay_steps", "sparsity_warmup_steps", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise InterpError(f"TrainConfig.{name} must be >= 0")
        if self.batch_size <= 0:
            raise InterpError("batch_size must be positive")
        for name in ("total_steps", "total_tokens"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InterpError(f"TrainConfig.{name} must be positive or None")
        if self.b_dec_init not in ("geometric_median", "mean", "zeros"):
            raise InterpError(f"b_dec_init must be geometric_median, mean or zeros, got {self.b_dec_init!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise InterpError("grad_clip must be positive or None")
        if self.keep_checkpoints < 1:
            raise InterpError("keep_checkpoints must be >= 1")
        if self.sparsity_coef < 0 or self.aux_coef < 0:
            raise InterpError("sparsity_coef and aux_coef must be >= 0")
        if self.norm_estimation_batches < 1:
            raise InterpError("norm_estimation_batches must be >= 1")
        if self.autocast not in (None, "bfloat16", "float16"):
            raise InterpError(f"autocast must be None, 'bfloat16' or 'float16', got {self.autocast!r}")

    @property
    def max_steps(self) -> int | None:
        """Steps to train, from `total_steps` or `total_tokens / batch_size` (None: until the data ends)."""
        if self.total_steps is not None:
            return self.total_steps
        if self.total_tokens is not None:
            return max(1, self.total_tokens // self.batch_size)
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `TrainConfig.from_dict(tc.to_dict()) == tc`."""
        out = dataclasses.asdict(self)
        out["adam_betas"] = list(self.adam_betas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`."""
        return _from_dict(cls, data)
