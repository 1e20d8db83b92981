"""Slicing one part (q, k, v; gate, up) out of a fused projection's output features, and writing it back.

The same functions serve activations ([..., features]) and weights (the output-feature axis moved
last), so hook points and weight access agree on where every head lives.

Layouts of the last axis:
- "blocked": [q (n_heads * d_head) | k (n_kv_heads * d_head) | v (n_kv_heads * d_head)] (GPT-2, Phi-3,
  Falcon multi-query);
- "interleaved": [head, 3, d_head], each head holding its q, k, v (GPT-NeoX, BLOOM, Falcon-7B-style
  without multi-query); needs n_kv_heads == n_heads;
- "grouped": [kv_head, n_heads / n_kv_heads + 2, d_head], each key-value group holding its queries then
  its key and value (Falcon's new decoder architecture);
- "halves": [gate | up], two equal halves (Phi-3's fused gate_up_proj); parts are not split into heads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

Layout = Literal["blocked", "interleaved", "grouped", "halves"]
Getter = Callable[[torch.Tensor], torch.Tensor]
Setter = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FusedLayout:
    """Splitting a fused projection's output into its parts and joining them back.

    `split(t)` gives every part of `t` [..., features] at once, each [..., head, d_head] (or
    [..., half] for "halves"), as views where the layout allows; `join(t, parts)` is `t` with its
    parts replaced by `parts`, in one concatenation. Replacing several parts of one tensor through
    one split and one join (`interp.hook_points` does this for q, k and v hooked together) costs one
    copy forward and one backward, where one `fused_part` setter per part would cost one each.
    """

    split: Callable[[torch.Tensor], list[torch.Tensor]]
    join: Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor]


@functools.cache
def fused_layout(layout: Layout, n_heads: int, n_kv_heads: int, d_head: int) -> FusedLayout:
    """The `FusedLayout` of `layout` for these head counts (one object per arguments)."""
    h, kv, dh = n_heads, n_kv_heads, d_head
    if layout == "halves":
        return FusedLayout(lambda t: list(t.chunk(2, dim=-1)), lambda t, parts: torch.cat(parts, dim=-1))
    if layout == "blocked":
        sizes = [h * dh, kv * dh, kv * dh]

        def split(t: torch.Tensor) -> list[torch.Tensor]:
            # split_with_sizes, not Tensor.split: the Python wrapper costs more than the split itself
            # and this runs on every hooked forward (the same views either way)
            q, k, v = t.split_with_sizes(sizes, dim=-1)
            return [q.unflatten(-1, (h, dh)), k.unflatten(-1, (kv, dh)), v.unflatten(-1, (kv, dh))]

        return FusedLayout(split, lambda t, parts: torch.cat([p.flatten(-2) for p in parts], dim=-1))
    if layout == "interleaved":
        return FusedLayout(
            lambda t: list(t.unflatten(-1, (h, 3, dh)).unbind(-2)),
            lambda t, parts: torch.stack(parts, dim=-2).flatten(-3),
        )
    if layout == "grouped":
        g = h // kv

        def split_grouped(t: torch.Tensor) -> list[torch.Tensor]:
            grouped = t.unflatten(-1, (kv, g + 2, dh))  # [..., kv, g + 2, d_head]
            q = grouped[..., :g, :].flatten(-3, -2)  # [..., head, d_head]
            return [q, grouped[..., g, :], grouped[..., g + 1, :]]  # k, v: [..., kv_head, d_head]

        def join_grouped(t: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
            q, k, v = parts
            return torch.cat([q.unflatten(-2, (kv, g)), k[..., None, :], v[..., None, :]], dim=-2).flatten(-3)

        return FusedLayout(split_grouped, join_grouped)
    raise ValueError(f"unknown fused layout {layout!r}")


def fused_part(
    layout: Layout, part: int, n_heads: int, n_kv_heads: int, d_head: int
) -> tuple[Getter, Setter]:
    """(get, set) for part `part` of `layout`: get [..., features] -> [..., head, d_head] (or [..., half]
    for "halves"); set(t, new) returns `t` with that part replaced by `new`."""
    fused = fused_layout(layout, n_heads, n_kv_heads, d_head)

    def get(t: torch.Tensor) -> torch.Tensor:
        return fused.split(t)[part]

    def set_(t: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        parts = fused.split(t)
        parts[part] = new
        return fused.join(t, parts)

    return get, set_
