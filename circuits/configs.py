"""The configs of `circuits`' command-line reports and of the alignment search, as frozen dataclasses
with a docstring under every field. Each field is a command-line option of its command (the docstring
its help, the default its default; see `interp.options`), so this module imports no torch: the CLI reads
it at start-up. The algorithms import these from here (`circuits.abstraction.das.SearchConfig`,
`circuits.discovery.report.CircuitOptions`, `circuits.abstraction.report.AlignOptions` are the same).

    >>> CircuitOptions(task="ioi", method="eap").formats
    ('json', 'dot', 'svg')
"""

from __future__ import annotations

from dataclasses import dataclass

from circuits.graph.export import check_format
from interp.errors import InterpError

METHODS = ("das", "boundless", "nonlinear")
"""Alignment-search methods (`SearchConfig.method`)."""

DEFAULT_TOP_N = 20
"""Edges `interp circuit` exports for a scoring method given neither `top_n` nor `threshold`."""


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one alignment search (the same for the model and its random control)."""

    method: str = "das"
    """`das` (rotation, fixed subspace), `boundless` (learned boundary) or `nonlinear` (coupling flow)."""
    subspace: int = 1
    """Subspace size k (das, nonlinear); the initial boundary for boundless."""
    steps: int = 200
    """Optimiser steps per location."""
    batch_size: int = 64
    """Counterfactual examples per step."""
    lr: float = 1e-2
    """Adam learning rate (the non-linear map's coupling MLPs use a tenth of it)."""
    n_train: int = 1024
    """Training counterfactuals (sampled once, shared by all locations)."""
    n_test: int = 512
    """Held-out counterfactuals for IIA."""
    control: bool = True
    """Also run the search on a randomly initialised copy of the model."""
    seed: int = 0
    """Seed of the data, the map's initialisation and the control model."""
    hidden: int = 64
    """Non-linear map: hidden width of each coupling MLP."""
    blocks: int = 2
    """Non-linear map: number of coupling blocks."""
    warm_start_steps: int = 200
    """Non-linear map: steps of linear DAS whose basis the flow starts from (0: a random one);
    `steps` then trains the couplings."""
    temperature: tuple[float, float] = (1.0, 0.05)
    """Boundless: temperature annealed from the first to the second value."""
    size_penalty: float = 0.5
    """Boundless: weight of the (boundary / width) penalty that keeps the subspace small."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InterpError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("subspace", "steps", "batch_size", "n_train", "n_test", "hidden", "blocks"):
            if getattr(self, name) < 1:
                raise InterpError(f"SearchConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.warm_start_steps < 0:
            raise InterpError(f"SearchConfig.warm_start_steps must be >= 0, got {self.warm_start_steps}")


@dataclass(frozen=True)
class AlignOptions:
    """What `interp align` searches over: the locations (the search's own settings are `search`).

    Example:
        >>> AlignOptions(hook="attn.hook_z", heads=True, positions=("END",), search=SearchConfig(subspace=8))
    """

    variable: str | None = None
    """High-level variable to align (default: the task model's first intermediate variable)."""
    hook: str = "hook_resid_post"
    """Hook kind swept over every layer (`blocks.{l}.{hook}`), e.g. hook_resid_mid."""
    positions: tuple[str, ...] | None = None
    """Named positions to sweep (default: every named position of the task)."""
    heads: bool = False
    """Sweep every head too (for per-head hooks such as `attn.hook_z`)."""
    locations: tuple[str, ...] = ()
    """Explicit location labels (`HOOK[Hh]@POS`) searched instead of the grid."""
    search: SearchConfig = SearchConfig()
    """The search at each location (method, subspace, steps, data, control, seed)."""


@dataclass(frozen=True)
class CircuitOptions:
    """What `interp circuit` runs (each field is a CLI option)."""

    task: str
    """Task (ioi, induction, greater_than, hierarchical_equality, facts)."""
    method: str = "eap-ig"
    """acdc, eap, eap-ig, node or features (default eap-ig: the most faithful exported circuits on the
    zoo, `experiments/discovery_benchmark.py`)."""
    formats: tuple[str, ...] = ("json", "dot", "svg")
    """Export formats of the circuit, comma-separated: json, dot, svg, pdf, png, graphml, tikz."""
    n: int = 32
    """Task examples."""
    seed: int = 0
    """Seed of the task examples."""
    ablation: str | None = None
    """corrupted, resample, mean or zero (default: the model card's `ablation`, else corrupted)."""
    steps: int = 5
    """Integrated-gradient steps (eap-ig, features)."""
    threshold: float | None = None
    """ACDC: its threshold, a fraction of the clean-minus-ablated metric (default 0.05). Other methods:
    keep edges with |score| >= this. An explicit threshold is never widened: `interp circuit` exits
    non-zero if it keeps no edge."""
    top_n: int | None = None
    """Edges to export (scoring methods; default `DEFAULT_TOP_N` = 20 without a threshold, every edge
    passing it with one); ACDC exports the edges it kept."""
    separate_qkv: bool = False
    """Separate q/k/v inputs per head."""
    saes: tuple[str, ...] = ()
    """SAE folders for `features`, comma-separated (each `saes.load`-able, or holding one in `sae/`)."""
    metric: str = "logit_diff"
    """logit_diff or prob."""

    def __post_init__(self) -> None:
        from circuits.discovery.data import check_ablation  # (torch: only when a config is built)
        from circuits.discovery.registry import get
        from interp.validation import check_finite_number

        get(self.method)
        object.__setattr__(self, "formats", tuple(check_format(f) for f in self.formats))
        if self.ablation is not None:
            check_ablation(self.ablation)
        if self.threshold is not None:
            check_finite_number(self.threshold, "--threshold")
        if self.n < 2:
            raise InterpError(f"--n must be at least 2, got {self.n}")
        if self.top_n is not None and self.top_n < 0:
            raise InterpError(f"--top-n must be >= 0, got {self.top_n}")
