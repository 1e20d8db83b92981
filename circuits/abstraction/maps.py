"""Alignment maps: how a variable's value is carried from a source vector into a base vector.

Each map `f` is invertible, and an interchange keeps the base's coordinates except the first k of
`f`, which come from the source: `x' = f^-1(m * f(x_source) + (1 - m) * f(x_base))`.

  * `Rotation` (DAS, Geiger et al. 2024): f is orthogonal; only its first k rows matter, kept
    orthonormal by `torch.nn.utils.parametrizations.orthogonal`:
    `x' = x_base + ((x_source - x_base) @ W.T) @ W`, W [k, width].
  * `BoundlessRotation` (Boundless DAS, Wu et al. 2023): a full rotation and a learned soft boundary
    `m_i = sigmoid((b - i) / T)`; the temperature T is annealed during training and the mask is
    made hard (`m_i > 0.5`) for evaluation, so the subspace size itself is learned.
  * `CouplingFlow` (non-linear, after "The Non-Linear Representation Dilemma"): standardise, rotate,
    then additive coupling blocks `y1 = x1 + F(x2); y2 = x2 + G(y1)` (RevNet), exactly invertible.
    Its MLPs start at zero, so it starts as DAS; `hidden` and `blocks` set its power.

    >>> rot = Rotation(width=64, k=1)
    >>> rot.interchange(base, source).shape  # [batch, 64]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal


class AlignmentMap(nn.Module):
    """Base class: `interchange(base, source)` on [batch, width] vectors."""

    def interchange(self, base: Tensor, source: Tensor) -> Tensor:
        raise NotImplementedError

    def basis(self) -> Tensor | None:
        """Orthonormal rows [k, width] of the aligned subspace (linear maps only)."""
        return None

    def size(self) -> int:
        """Dimension of the aligned subspace (after training, for learned boundaries)."""
        raise NotImplementedError

    def penalty(self) -> Tensor:
        """Extra training loss (e.g. a boundless map's size penalty); zero by default."""
        return torch.zeros(())


class Rotation(AlignmentMap):
    """Linear DAS with a k-dimensional subspace: orthonormal rows W [k, width]."""

    def __init__(self, width: int, k: int = 1, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        linear = nn.Linear(width, k, bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.linalg.qr(torch.randn(width, k, generator=g))[0].T)
        self.rows = orthogonal(linear)
        self.k = k

    def basis(self) -> Tensor:
        return self.rows.weight  # [k, width]

    def interchange(self, base: Tensor, source: Tensor) -> Tensor:
        w = self.rows.weight.to(base.dtype)  # [k, width]
        return base + ((source - base) @ w.T) @ w

    def size(self) -> int:
        return self.k


class BoundlessRotation(AlignmentMap):
    """Boundless DAS: full rotation R [width, width] and a learned boundary `b` (see module docstring)."""

    def __init__(self, width: int, init_size: float | None = None, seed: int = 0, size_penalty: float = 0.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        linear = nn.Linear(width, width, bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.linalg.qr(torch.randn(width, width, generator=g))[0])
        self.rotation = orthogonal(linear)
        self.boundary = nn.Parameter(torch.tensor(float(init_size if init_size is not None else width / 4)))
        self.register_buffer("index", torch.arange(width, dtype=torch.float32) + 0.5)
        self.temperature = 1.0
        self.hard = False
        self.size_penalty = size_penalty
        self.width = width

    def mask(self) -> Tensor:
        """[width] weights of each rotated coordinate on the source (hard 0/1 when `self.hard`)."""
        soft = torch.sigmoid((self.boundary - self.index) / max(self.temperature, 1e-6))
        return (soft > 0.5).float() if self.hard else soft

    def interchange(self, base: Tensor, source: Tensor) -> Tensor:
        r = self.rotation.weight.to(base.dtype)  # [width, width], rows = rotated axes
        return base + (((source - base) @ r.T) * self.mask().to(base.dtype)) @ r

    def basis(self) -> Tensor:
        k = self.size()
        return self.rotation.weight[:k]

    def size(self) -> int:
        return int(min(self.width, max(0, round(self.boundary.item()))))

    def penalty(self) -> Tensor:
        return self.size_penalty * self.boundary.clamp(min=0) / self.width


class _Coupling(nn.Module):
    def __init__(self, half: int, other: int, hidden: int):
        super().__init__()
        self.f = nn.Sequential(nn.Linear(other, hidden), nn.Tanh(), nn.Linear(hidden, half))
        self.g = nn.Sequential(nn.Linear(half, hidden), nn.Tanh(), nn.Linear(hidden, other))
        for net in (self.f, self.g):
            nn.init.zeros_(net[2].weight)
            nn.init.zeros_(net[2].bias)
        self.half = half

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = x[:, : self.half], x[:, self.half :]
        y1 = x1 + self.f(x2)
        return torch.cat([y1, x2 + self.g(y1)], dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        y1, y2 = y[:, : self.half], y[:, self.half :]
        x2 = y2 - self.g(y1)
        return torch.cat([y1 - self.f(x2), x2], dim=1)


class CouplingFlow(AlignmentMap):
    """Non-linear invertible map: standardise, rotate, `blocks` RevNet couplings; first k coordinates swap."""

    def __init__(
        self,
        width: int,
        k: int = 1,
        hidden: int = 64,
        blocks: int = 2,
        seed: int = 0,
        mean: Tensor | None = None,
        scale: Tensor | None = None,
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        linear = nn.Linear(width, width, bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.linalg.qr(torch.randn(width, width, generator=g))[0])
        self.rotation = orthogonal(linear)
        half = max(1, width // 2)
        self.couplings = nn.ModuleList(_Coupling(half, width - half, hidden) for _ in range(blocks))
        self.register_buffer("mean", torch.zeros(width) if mean is None else mean.detach().clone().float())
        self.register_buffer("scale", torch.ones(()) if scale is None else scale.detach().clone().float())
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        """x [batch, width] -> f(x) [batch, width]."""
        z = ((x.float() - self.mean) / self.scale) @ self.rotation.weight.T
        for i, block in enumerate(self.couplings):
            z = block(z.flip(-1) if i % 2 else z)
        return z

    def inverse(self, z: Tensor) -> Tensor:
        for i in reversed(range(len(self.couplings))):
            z = self.couplings[i].inverse(z)
            z = z.flip(-1) if i % 2 else z
        return (z @ self.rotation.weight) * self.scale + self.mean

    def interchange(self, base: Tensor, source: Tensor) -> Tensor:
        zb, zs = self.forward(base), self.forward(source)
        z = torch.cat([zs[:, : self.k], zb[:, self.k :]], dim=1)
        return self.inverse(z).to(base.dtype)

    def size(self) -> int:
        return self.k


def n_parameters(m: nn.Module) -> int:
    """Trainable parameter count (a rough measure of an alignment map's power)."""
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def anneal(start: float, end: float, step: int, steps: int) -> float:
    """Geometric interpolation from `start` to `end` over `steps` steps."""
    t = min(1.0, step / max(1, steps - 1))
    return math.exp(math.log(start) + t * (math.log(end) - math.log(start)))
