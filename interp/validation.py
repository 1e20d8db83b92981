"""Checks on what users pass in, each failing with one `InterpError` that names the fix.

Kept apart from the code that does the work so a forward pass reads as the forward pass; each
check is cheap (a few tensor reductions), never a copy of the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from interp.errors import InterpError


def max_positions(hf_config: object) -> int | None:
    """The longest input a model with learned position embeddings accepts (None: no fixed limit)."""
    n = getattr(hf_config, "n_positions", None)
    if n is None and getattr(hf_config, "position_embedding_type", None) == "absolute":
        n = getattr(hf_config, "max_position_embeddings", None)
    return int(n) if n else None


def check_token_ids(ids: torch.Tensor, vocab: int | None, n_positions: int | None) -> torch.Tensor:
    """`ids` as [batch, pos] after checking dtype, rank, emptiness, range and length."""
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise InterpError(f"token ids must be an integer tensor, got dtype {ids.dtype}; use ids.long()")
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2:
        raise InterpError(
            f"token ids must be [pos] or [batch, pos], got a {ids.ndim}-D tensor of shape {tuple(ids.shape)}; "
            "reshape to 2-D (e.g. ids.flatten(0, -2))"
        )
    if ids.numel() == 0:
        raise InterpError(f"empty input (token ids of shape {tuple(ids.shape)}); pass at least one token")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or (vocab is not None and hi >= vocab):
        bad = lo if lo < 0 else hi
        raise InterpError(f"token id {bad} is outside the model's vocabulary (0..{(vocab or 0) - 1})")
    if n_positions is not None and ids.shape[1] > n_positions:
        raise InterpError(
            f"input is {ids.shape[1]} tokens long but the model takes at most {n_positions} positions; "
            "truncate it (e.g. ids[:, -max_len:]) or split it"
        )
    return ids


def check_texts(texts: Sequence[str]) -> None:
    """Refuse an empty list of texts and empty strings (they tokenize to nothing)."""
    if len(texts) == 0:
        raise InterpError("empty input: pass a text, a list of texts or token ids")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InterpError(f"input {i} is a {type(text).__name__}, expected text or token ids")


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """A numpy array, list or number as a tensor (tensors pass through); anything else is refused."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(value))
    except ImportError:  # numpy is optional for this check
        pass
    if isinstance(value, (list, tuple, int, float)):
        try:
            return torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise InterpError(f"{what}: could not read {type(value).__name__} as a tensor ({err})") from None
    raise InterpError(
        f"{what}: expected a tensor, numpy array or list of numbers, got {type(value).__name__}"
    )


def check_finite_tensor(value: torch.Tensor, what: str) -> None:
    """Refuse NaN or inf in a tensor given by the user (it would turn every output NaN silently)."""
    if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
        bad = "NaN" if bool(torch.isnan(value).any()) else "inf"
        raise InterpError(f"{what} contains {bad}; pass finite values")


def check_finite_number(value: Any, what: str) -> float:
    """`value` as a finite float, or an `InterpError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InterpError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InterpError(f"{what} must be finite, got {value!r}")
    return number


def check_indices(values: Any, what: str) -> tuple[int, ...]:
    """Whole-number indices as a tuple of ints; 2.5 or "1" is refused rather than truncated."""
    items = values.tolist() if isinstance(values, torch.Tensor) else values
    items = [items] if isinstance(items, (int, float)) else list(items)
    out = []
    for v in items:
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
            if hasattr(v, "__index__"):
                out.append(int(v.__index__()))
                continue
            raise InterpError(f"{what} must be whole numbers, got {v!r}")
        out.append(int(v))
    return tuple(out)


def check_intervention_sets(sets: Any) -> None:
    """`run_batched` needs a non-empty list of lists of interventions."""
    if isinstance(sets, (str, bytes)) or not isinstance(sets, Sequence):
        raise InterpError(
            f"intervention sets must be a list of lists of interventions, got {type(sets).__name__}"
        )
    if len(sets) == 0:
        raise InterpError(
            "run_batched got no intervention sets; pass at least one (use [[]] for a plain run)"
        )
    for i, entry in enumerate(sets):
        if not isinstance(entry, (list, tuple)):
            raise InterpError(
                f"intervention set {i} is a {type(entry).__name__}, expected a list of interventions "
                "(wrap a single one: [[iv]])"
            )


def check_device(device: str) -> str:
    """`device` if this torch can use it: cpu, cuda[:N], mps or auto; otherwise one line saying why."""
    name = str(device).strip().lower()
    if name in ("cpu", "auto"):
        return name
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "no visible CUDA GPU"
            raise InterpError(f"device {device!r}: this machine has {build}; use --device cpu")
        if ":" in name:
            index = name.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise InterpError(f"device {device!r}: there are {torch.cuda.device_count()} CUDA devices")
        return name
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InterpError("device 'mps': MPS is not available here; use --device cpu")
        return name
    raise InterpError(f"device {device!r}: expected cpu, cuda, cuda:N, mps or auto")


def check_positive(value: Any, what: str, minimum: float = 1) -> Any:
    """Refuse a number below `minimum` (e.g. `--tokens 0`), NaN or inf."""
    if value is None:
        return value
    number = check_finite_number(value, what)
    if number < minimum:
        raise InterpError(f"{what} must be >= {minimum:g}, got {value}")
    return value


def check_count(n: Any, seed: Any = 0) -> None:
    """A number of examples (whole, >= 1) and a seed (whole, >= 0)."""
    for value, what, minimum in ((n, "n", 1), (seed, "seed", 0)):
        if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
            raise InterpError(f"{what} must be a whole number, got {value!r}")
        if int(value) < minimum:
            raise InterpError(f"{what} must be >= {minimum}, got {value}")
