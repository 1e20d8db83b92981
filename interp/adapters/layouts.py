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

from collections.abc import Callable
from typing import Literal

import torch

Layout = Literal["blocked", "interleaved", "grouped", "halves"]
Getter = Callable[[torch.Tensor], torch.Tensor]
Setter = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fused_part(
    layout: Layout, part: int, n_heads: int, n_kv_heads: int, d_head: int
) -> tuple[Getter, Setter]:
    """(get, set) for part `part` of `layout`: get [..., features] -> [..., head, d_head] (or [..., half]
    for "halves"); set(t, new) returns `t` with that part replaced by `new`."""
    h, kv, dh = n_heads, n_kv_heads, d_head
    if layout == "halves":

        def get(t: torch.Tensor) -> torch.Tensor:
            return t.chunk(2, dim=-1)[part]

        def set_(t: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
            parts = list(t.chunk(2, dim=-1))
            parts[part] = new
            return torch.cat(parts, dim=-1)

        return get, set_
    if layout == "blocked":
        sizes = [h * dh, kv * dh, kv * dh]
        n = h if part == 0 else kv

        def get(t: torch.Tensor) -> torch.Tensor:
            return t.split(sizes, dim=-1)[part].unflatten(-1, (n, dh))

        def set_(t: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
            parts = list(t.split(sizes, dim=-1))
            parts[part] = new.flatten(-2)
            return torch.cat(parts, dim=-1)

        return get, set_
    if layout == "interleaved":

        def get(t: torch.Tensor) -> torch.Tensor:
            return t.unflatten(-1, (h, 3, dh))[..., part, :]

        def set_(t: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
            parts = list(t.unflatten(-1, (h, 3, dh)).unbind(-2))
            parts[part] = new
            return torch.stack(parts, dim=-2).flatten(-3)

        return get, set_
    if layout == "grouped":
        g = h // kv

        def get(t: torch.Tensor) -> torch.Tensor:
            grouped = t.unflatten(-1, (kv, g + 2, dh))  # [..., kv, g + 2, d_head]
            if part == 0:
                return grouped[..., :g, :].flatten(-3, -2)  # [..., head, d_head]
            return grouped[..., g + part - 1, :]  # [..., kv_head, d_head]

        def set_(t: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
            grouped = t.unflatten(-1, (kv, g + 2, dh))
            q, k, v = grouped[..., :g, :], grouped[..., g, :], grouped[..., g + 1, :]
            if part == 0:
                q = new.unflatten(-2, (kv, g))
            elif part == 1:
                k = new
            else:
                v = new
            return torch.cat([q, k[..., None, :], v[..., None, :]], dim=-2).flatten(-3)

        return get, set_
    raise ValueError(f"unknown fused layout {layout!r}")
