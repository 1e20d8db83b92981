"""Alignment maps: how a variable's value is carried from a source vector into a base vector.

Each map `f` is invertible, and an interchange keeps the base's coordinates except the first k of
`f`, which come from the source: `x' = f^-1(m * f(x_source) + (1 - m) * f(x_base))`.

  * `Rotation` (DAS, Geiger et al. 2024): f is orthogonal; only its first k rows matter, kept
    orthonormal by `torch.nn.utils.parametrizations.orthogonal`:
    `x' = x_base + ((x_source - x_base) @ W.T) @ W`, W [k, width].
  * `BoundlessRotation` (Boundless DAS, Wu et al. 2023): a full rotation and a learned soft boundary
    `m_i = sigmoid((b - i) / T)`; the temperature T is annealed during training and the mask is
    made hard (`m_i > 0.5`) for evaluation, so the subspace size itself is learned.
  * `CouplingFlow` (non-linear, after "The Non-Linear Representation Dilemma"): standardise, rotate
    (a fixed rotation whose first k rows are a linear DAS basis when one is given), then additive
    coupling blocks over three groups of coordinates: the k swapped ones `a`, a `context` that is
    never modified, and a few `moved` ones:
        a     <- a + bound * s_a * tanh(F(c))          c = the context, whitened
        moved <- moved + G(a / s_a, c)
    Each block is exactly invertible, and because the context is never modified the inverse reads
    the base's own context: after an interchange, G sees the source's `a` beside the base's context,
    so the map can move the base by any learned function of both (what makes unconstrained maps
    powerful enough to align even a random network). Whitening the MLP inputs matters: in a randomly
    initialised network inputs differ by tiny amounts along few directions. `hidden` (two hidden
    layers of that width per MLP) and `blocks` set its power.

    >>> rot = Rotation(width=64, k=1)
    >>> rot.interchange(base, source).shape  # [batch, 64]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal

from interp.errors import InterpError


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


def _mlp(n_in: int, n_out: int, hidden: int, init_std: float) -> nn.Sequential:
    """Two tanh hidden layers; the last layer's weights start at N(0, init_std^2)."""
    net = nn.Sequential(
        nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out)
    )
    nn.init.normal_(net[-1].weight, std=init_std)
    nn.init.zeros_(net[-1].bias)
    return net


class _Coupling(nn.Module):
    """One block: `a += bound * s_a * tanh(phi(c))`, then `moved += psi([a / s_a, c])`.

    `phi` starts at zero, so the swapped coordinates start as given (e.g. DAS's); `psi` starts small
    but not at zero: with both at zero the interchange is linear and neither gradient carries an
    interaction between source and base, a saddle the search never leaves on a random network."""

    def __init__(self, k: int, n_context: int, n_moved: int, hidden: int, init_std: float):
        super().__init__()
        self.phi = _mlp(n_context, k, hidden, 0.0)
        self.psi = _mlp(k + n_context, n_moved, hidden, init_std)


def _whitening(x: Tensor, floor: float) -> tuple[Tensor, Tensor]:
    """(mean [d], W [d, d]) with `(x - mean) @ W` white; directions whose spread is under `floor`
    times the largest are scaled as if they had that spread."""
    mean = x.mean(0)
    _, s, v = torch.linalg.svd(x - mean, full_matrices=False)
    sd = s / math.sqrt(max(1, x.shape[0] - 1))
    sd = sd.clamp(min=max(floor * float(sd[0]), 1e-12))
    w = torch.zeros(x.shape[1], x.shape[1])
    w[:, : sd.numel()] = v.T / sd
    return mean, w


class CouplingFlow(AlignmentMap):
    """Non-linear invertible map (see the module docstring): standardise, fixed rotation, `blocks`
    couplings; the first k coordinates are the ones an interchange swaps.

    `sources` [n, width] (the vectors the map will see) set the standardisation and the whitening of
    the coupling inputs; without them both are the identity. `basis` [k, width] (orthonormal rows,
    e.g. a trained `Rotation`'s) becomes the swapped coordinates, so the flow starts near that DAS
    alignment; otherwise they are random. `moved` coordinates (default width / 8) are what the
    couplings move; the rest is context. `bound` caps what the couplings add to `a`, in units of its
    own spread.
    """

    def __init__(
        self,
        width: int,
        k: int = 1,
        hidden: int = 64,
        blocks: int = 2,
        seed: int = 0,
        sources: Tensor | None = None,
        basis: Tensor | None = None,
        moved: int | None = None,
        bound: float = 5.0,
        init_std: float = 0.05,
        floor: float = 1e-3,
    ):
        super().__init__()
        moved = max(1, round((width - k) / 8)) if moved is None else moved
        if k + moved >= width:
            raise InterpError(f"CouplingFlow: k={k} plus moved={moved} leaves no context in width {width}")
        g = torch.Generator().manual_seed(seed)
        rotation = torch.linalg.qr(torch.randn(width, width, generator=g))[0].T  # rows orthonormal
        if basis is not None:  # first k rows = the basis, the rest an orthonormal complement
            b = basis.detach().float().cpu()
            rest = torch.randn(width, width - k, generator=g)
            rest = rest - b.T @ (b @ rest)
            rotation = torch.cat([b, torch.linalg.qr(rest)[0].T], 0)
        self.register_buffer("rotation", rotation)  # [width, width]
        self.k, self.moved, self.bound = k, moved, bound
        n_context = width - k - moved
        self.couplings = nn.ModuleList(
            _Coupling(k, n_context, moved, hidden, init_std) for _ in range(blocks)
        )
        mean, scale = torch.zeros(width), torch.ones(())
        context_mean, context_w, spread = torch.zeros(n_context), torch.eye(n_context), torch.ones(k)
        if sources is not None:
            s = sources.detach().float().cpu()
            mean, scale = s.mean(0), s.std().clamp(min=1e-6)
            z = ((s - mean) / scale) @ rotation.T
            spread = z[:, :k].std(0).clamp(min=1e-6)
            context_mean, context_w = _whitening(z[:, k : width - moved], floor)
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.register_buffer("spread", spread)  # [k] s_a
        self.register_buffer("context_mean", context_mean)
        self.register_buffer("context_w", context_w)

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        k, m = self.k, self.moved
        return z[:, :k], z[:, k:-m], z[:, -m:]

    def forward(self, x: Tensor) -> Tensor:
        """x [batch, width] -> f(x) [batch, width]."""
        z = ((x.float() - self.mean) / self.scale) @ self.rotation.T
        a, context, moved = self._split(z)
        c = (context - self.context_mean) @ self.context_w
        for block in self.couplings:
            a = a + self.bound * self.spread * torch.tanh(block.phi(c))
            moved = moved + block.psi(torch.cat([a / self.spread, c], 1))
        return torch.cat([a, context, moved], 1)

    def inverse(self, z: Tensor) -> Tensor:
        a, context, moved = self._split(z)
        c = (context - self.context_mean) @ self.context_w
        for block in reversed(self.couplings):
            moved = moved - block.psi(torch.cat([a / self.spread, c], 1))
            a = a - self.bound * self.spread * torch.tanh(block.phi(c))
        return (torch.cat([a, context, moved], 1) @ self.rotation) * self.scale + self.mean

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
