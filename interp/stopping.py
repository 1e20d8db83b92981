"""`stop_at_layer`: end the forward pass after a block, so early activations cost only early blocks.

A forward hook on the last block to run raises a private exception carrying that block's output;
the caller catches it and returns the residual stream. Hooks placed by the toolkit run first (they
were registered before), so the returned stream includes their edits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from interp.errors import InterpError


class _Stopped(Exception):  # noqa: N818 (control flow, never escapes this module)
    def __init__(self, resid: torch.Tensor):
        super().__init__()
        self.resid = resid


def check_stop(stop_at_layer: object, n_layers: int) -> int:
    """`stop_at_layer` as a number of blocks to run, 0..n_layers (negative counts from the end)."""
    if (
        isinstance(stop_at_layer, bool)
        or not isinstance(stop_at_layer, int)
        or not -n_layers <= stop_at_layer <= n_layers
    ):
        raise InterpError(
            f"stop_at_layer={stop_at_layer!r} out of range: give an int in {-n_layers}..{n_layers} "
            f"(the number of blocks to run; the model has {n_layers})"
        )
    return stop_at_layer % n_layers if stop_at_layer < 0 else stop_at_layer


def run_until(blocks: nn.ModuleList, n_blocks: int, forward: Callable[[], object]) -> torch.Tensor:
    """Run `forward()` but stop after `n_blocks` blocks; the residual stream there [batch, pos, d_model]
    (`blocks.{n_blocks-1}.hook_resid_post`, or the input of block 0 when `n_blocks` is 0)."""
    if n_blocks == 0:

        def stop_before(module: nn.Module, args: tuple, kwargs: dict) -> None:
            raise _Stopped(args[0] if args else kwargs["hidden_states"])

        handle = blocks[0].register_forward_pre_hook(stop_before, with_kwargs=True)
    else:

        def stop_after(module: nn.Module, args: tuple, output: object) -> None:
            raise _Stopped(output[0] if isinstance(output, tuple) else output)

        handle = blocks[n_blocks - 1].register_forward_hook(stop_after)
    try:
        forward()
    except _Stopped as stopped:
        return stopped.resid
    finally:
        handle.remove()
    raise InterpError(f"the forward pass never ran block {max(n_blocks - 1, 0)}; cannot stop there")
