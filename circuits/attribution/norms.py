"""Freezing normalisation denominators: the table of norm classes whose scale can be held fixed exactly.

A norm computes `scale(x)`-normalised activations; with the scale recorded on one run and held fixed,
it becomes a linear (affine) map of its input. The norm modules of the real model keep running; a
PyTorch forward hook on each replaces its output with the frozen-scale version:

| kind | classes | frozen output |
|---|---|---|
| `layer` | `nn.LayerNorm` (GPT-2, GPT-NeoX) | (x - mean(x)) / sigma0 * w + b |
| `rms` | `*RMSNorm` with `variance_epsilon` (Llama, Mistral, Qwen) | x / sigma0 * w |
| `rms_offset` | `GemmaRMSNorm`, `Gemma2RMSNorm`, `Gemma3RMSNorm` | x / sigma0 * (1 + w) |

Any other module whose class name says it normalises is refused with one line: its frozen form is
unknown, and a graph computed through it would be wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from torch import Tensor, nn

from interp.errors import InterpError

_OFFSET = ("GemmaRMSNorm", "Gemma2RMSNorm", "Gemma3RMSNorm")


class UnfreezableModelError(InterpError):
    """The model has a nonlinearity outside the MLPs that cannot be frozen exactly."""


def norm_kind(module: nn.Module) -> str | None:
    """`layer`, `rms`, `rms_offset`, or None when `module` is not a normalisation layer.

    Raises `UnfreezableModelError` for a normalisation layer outside the table.
    """
    name = type(module).__name__
    if isinstance(module, nn.LayerNorm):
        return "layer"
    if name in _OFFSET:
        return "rms_offset"
    if name.endswith("RMSNorm") and hasattr(module, "variance_epsilon") and hasattr(module, "weight"):
        return "rms"
    if "norm" in name.lower() and not isinstance(module, nn.ModuleList | nn.ModuleDict):
        raise UnfreezableModelError(
            f"cannot freeze {name}: only nn.LayerNorm and Llama/Gemma-style RMSNorm denominators can be held "
            "fixed exactly; add its frozen form to circuits/attribution/norms.py"
        )
    return None


def _eps(module: nn.Module) -> float:
    return float(getattr(module, "eps", getattr(module, "variance_epsilon", 1e-6)))


def denominator(kind: str, module: nn.Module, x: Tensor) -> Tensor:
    """The norm's scale on input `x` [..., d]: [..., 1] (detached)."""
    x = x.detach().float()
    if kind == "layer":
        return (x.var(-1, keepdim=True, unbiased=False) + _eps(module)).sqrt()
    return (x.pow(2).mean(-1, keepdim=True) + _eps(module)).sqrt()


def frozen_output(kind: str, module: nn.Module, x: Tensor, sigma: Tensor) -> Tensor:
    """The norm's output on `x` with its scale fixed at `sigma` (affine in `x`)."""
    dtype = x.dtype
    xf = x.float()
    if kind == "layer":
        out = (xf - xf.mean(-1, keepdim=True)) / sigma
        if module.weight is not None:
            out = out * module.weight.float()
        if module.bias is not None:
            out = out + module.bias.float()
        return out.to(dtype)
    weight = module.weight.float()
    return (xf / sigma * (1 + weight if kind == "rms_offset" else weight)).to(dtype)


def norm_modules(hf_model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Every normalisation module of the model: path -> (module, kind)."""
    out = {}
    for path, module in hf_model.named_modules():
        kind = norm_kind(module)
        if kind is not None:
            out[path] = (module, kind)
    return out


def _input(args: tuple, kwargs: dict) -> Tensor:
    return args[0] if args else kwargs["hidden_states"]


@dataclass
class NormScales:
    """Recorded denominators, path -> [batch, pos, 1], filled by `record`."""

    sigma: dict[str, Tensor] = field(default_factory=dict)


@contextlib.contextmanager
def record(hf_model: nn.Module, scales: NormScales) -> Iterator[None]:
    """Record every norm's denominator during the forward passes inside the block."""
    handles = []
    try:
        for path, (module, kind) in norm_modules(hf_model).items():

            def hook(mod: nn.Module, args: tuple, kwargs: dict, out: Tensor, path=path, kind=kind) -> None:
                if path in scales.sigma:
                    raise UnfreezableModelError(
                        f"norm {path} runs more than once per forward; its scale cannot be frozen per call"
                    )
                scales.sigma[path] = denominator(kind, mod, _input(args, kwargs))

            handles.append(module.register_forward_hook(hook, with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def frozen(hf_model: nn.Module, scales: NormScales) -> Iterator[None]:
    """Hold every norm's denominator at its recorded value inside the block."""
    handles = []
    try:
        for path, (module, kind) in norm_modules(hf_model).items():
            if path not in scales.sigma:
                continue  # the norm did not run on the recorded pass (e.g. an unused head)

            def hook(mod: nn.Module, args: tuple, kwargs: dict, out: Tensor, path=path, kind=kind) -> Tensor:
                return frozen_output(kind, mod, _input(args, kwargs), scales.sigma[path])

            handles.append(module.register_forward_hook(hook, with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()
