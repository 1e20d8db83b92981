"""Prefix reuse: a position sweep that recomputes only what each patch can change.

In a causal decoder, patching the activation at (layer l, position p) leaves every position before p
unchanged at every layer, and every layer before l unchanged at every position: there the patched run
*is* the target run. So a patched run only needs layers l.. at positions p..:

  1. One target run (the corrupted input when denoising) keeps its key-value cache, its
     `resid_pre` at every layer, the swept activations and its logits. Sites whose source activation
     equals the target's (every position before the first token where the inputs differ) and sites
     after the last position the metric reads cannot change the metric: they need no pass.
  2. Sites are grouped into passes. A pass with smallest layer l0 and smallest position p0 feeds only
     positions p0.. with the target's keys and values for positions < p0 as the model's own KV cache
     (so positions and rotary phases stay right), replaces the blocks before l0 by pass-throughs and
     feeds block l0 the target's `resid_pre` (positions p0..). Each row then gets its own patch at its
     own (layer, position) through the ordinary hooks.
  3. The logits of positions < p0 are the target's; the metric sees full-length logits as usual.

How sites are grouped trades passes against work: `plan` tries rectangles of layers x positions and
keeps the cheapest under a cost model of a fixed per-pass overhead plus work proportional to
rows x suffix positions x (blocks run + the unembedding, in block units). Results equal the plain
batched sweep up to float rounding (tested on GPT-2, GPT-NeoX and Llama-style models).
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.patching import hf_compat
from circuits.patching.sites import Grid
from interp.batched import bytes_per_example
from interp.hooked import HookedModel

REUSABLE_KINDS = frozenset(
    {"resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "mlp_pre", "mlp_post"}
)
"""Per-position hook kinds whose patch changes nothing before its position or below its layer."""

PASS_OVERHEAD = {"cpu": 600, "cuda": 65536}
"""Fixed cost of one forward pass in token-block units (one token through one block). Measured on the
4-layer d_model 256 benchmark GPT-2: on CPU a 1 x 16 forward costs about as much as 1,000 extra tokens
through all four blocks; GPU kernel launches make small passes relatively dearer still."""


def supported(model: HookedModel, grids: Sequence[Grid], mask: Tensor | None = None) -> bool:
    """Whether `grids` can be swept with prefix reuse on `model` (causal decoder, per-position kinds,
    and the transformers internals it needs work on this model class: `hf_compat.usable`)."""
    return (
        mask is None
        and not model.cfg.is_encoder
        and all(g.per == "position" and g.kind.short in REUSABLE_KINDS for g in grids)
        and hf_compat.usable(model)
    )


@dataclass(frozen=True)
class Cell:
    """One site of a sweep: its index in the flat list of sites, hook, layer and per-example positions."""

    index: int
    hook: str
    layer: int
    positions: Tensor  # [batch] absolute positions patched in each example
    start: int  # the first of them


def cells(grids: Sequence[Grid], batch: int) -> list[Cell]:
    """The sites of `grids`, flattened in grid order, with per-example positions."""
    out: list[Cell] = []
    for g in grids:
        for site in g.sites:
            if isinstance(site.position, str):
                assert g.named is not None
                pos = g.named[site.position].long()
            else:
                pos = torch.full((batch,), int(site.position), dtype=torch.long)
            out.append(Cell(len(out), g.kind.hook(site.layer), site.layer, pos, int(pos.min())))
    return out


def read_positions(metric: Callable[[Tensor], Tensor], logits: Tensor) -> Tensor | None:
    """The positions of `logits` [batch, pos, vocab] that `metric` reads, or None (all, or cannot tell).

    Probe: NaN at a set of positions leaves the metric bitwise unchanged iff the metric ignores them
    (NaN propagates through arithmetic); sets that change it are split until single positions remain.
    The answer is then confirmed with random values at every unread position. Most metrics read one
    or two positions, and the unembedding is then computed only there.
    """
    try:
        base = metric(logits)
        if not bool(torch.isfinite(base).all()):
            return None

        def unchanged(positions: list[int], fill: Callable[[Tensor], Tensor]) -> bool:
            probe = logits.clone()
            probe[:, positions] = fill(probe[:, positions])
            return torch.equal(metric(probe), base)

        def nan(x: Tensor) -> Tensor:
            return torch.full_like(x, float("nan"))

        def reads(positions: list[int]) -> list[int]:
            if not positions or unchanged(positions, nan):
                return []
            if len(positions) == 1:
                return positions
            half = len(positions) // 2
            return reads(positions[:half]) + reads(positions[half:])

        n_pos = logits.shape[1]
        read = reads(list(range(n_pos)))
        unread = [p for p in range(n_pos) if p not in set(read)]
        if not unread:
            return None
        generator = torch.Generator(device=logits.device).manual_seed(0)
        noise = lambda x: torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)  # noqa: E731
        return torch.tensor(read, dtype=torch.long) if unchanged(unread, noise) else None
    except Exception:  # a metric that cannot take the probe: compute every position
        return None


@dataclass(frozen=True)
class Costs:
    """The cost model of one pass, in token-block units (one token through one block)."""

    n_pos: int
    n_layers: int
    head: float  # the unembedding's cost per position, in blocks
    overhead: float  # the fixed cost of a forward pass
    kept: Tensor | None  # positions whose logits the metric reads (None: all)
    skip_layers: bool  # whether blocks below a pass's first layer can be skipped

    def kept_from(self, p0: int) -> Tensor:
        """The kept positions a pass that starts at `p0` must compute."""
        if self.kept is None:
            return torch.arange(p0, self.n_pos)
        return self.kept[self.kept >= p0]

    @functools.cached_property
    def _kept_counts(self) -> list[int]:
        return [len(self.kept_from(p0)) for p0 in range(self.n_pos)]

    def of(self, group: Sequence[Cell], batch: int) -> float:
        p0 = min(c.start for c in group)
        l0 = min(c.layer for c in group) if self.skip_layers else 0
        per_row = (self.n_pos - p0) * (self.n_layers - l0) + self.head * self._kept_counts[p0]
        return self.overhead + len(group) * batch * per_row


def plan(sweep: Sequence[Cell], batch: int, costs: Costs, max_rows: Callable[[int], int]) -> list[list[Cell]]:
    """Group `sweep` into passes: the cheapest of the layer-block x position-block tilings.

    `max_rows(p0)`: the rows one pass starting at `p0` may hold (the memory budget).
    """
    sizes = {1 << i for i in range(max(costs.n_layers, costs.n_pos).bit_length())}
    layer_blocks = sorted({s for s in sizes if s < costs.n_layers} | {costs.n_layers})
    pos_blocks = sorted({s for s in sizes if s < costs.n_pos} | {costs.n_pos})
    best: tuple[float, list[list[Cell]]] | None = None
    for layer_block, pos_block in itertools.product(layer_blocks, pos_blocks):
        tiles: dict[tuple[int, int], list[Cell]] = {}
        for cell in sweep:
            tiles.setdefault((cell.layer // layer_block, cell.start // pos_block), []).append(cell)
        passes: list[list[Cell]] = []
        for key in sorted(tiles):
            group = tiles[key]
            rows = max(1, max_rows(min(c.start for c in group)) // batch)
            passes += [group[i : i + rows] for i in range(0, len(group), rows)]
        cost = sum(costs.of(p, batch) for p in passes)
        if best is None or cost < best[0]:
            best = (cost, passes)
    assert best is not None
    return best[1]


@dataclass(frozen=True)
class Target:
    """What one run of the target input keeps for prefix reuse."""

    logits: Tensor  # [batch, pos, vocab]
    keys_values: list[tuple[Tensor, Tensor]]  # per layer: keys, values [batch, kv_heads, pos, d_head]
    acts: dict[str, Tensor]  # hook name -> activation [batch, pos, ...]: resid_pre and the swept hooks
    blocks_return_tensors: bool  # whether a block's output is the bare hidden state (blocks can be skipped)


def _outputs(out: object) -> Tensor:
    logits = getattr(out, "logits", None)
    return logits if logits is not None else out.last_hidden_state


def run_target(model: HookedModel, ids: Tensor, names: Sequence[str]) -> Target:
    """Run `ids` once, keeping the key-value cache and the activations at hooks `names`."""
    store: dict[str, Tensor] = {}
    outputs: list[object] = []
    block0 = model.module(model.adapter.layers)[0]
    probe = block0.register_forward_hook(lambda module, args, out: outputs.append(out))
    try:
        with torch.no_grad(), model.hooks({name: _keep(store) for name in names}):
            out = model.hf_model(input_ids=ids, use_cache=True)
    finally:
        probe.remove()
    return Target(
        _outputs(out),
        hf_compat.keys_values(hf_compat.returned_cache(out)),
        {name: store[name] for name in names},
        isinstance(outputs[0], Tensor),
    )


def _keep(store: dict[str, Tensor]) -> Callable[[Tensor, str], None]:
    def keep(act: Tensor, name: str) -> None:
        store[name] = act.detach()

    return keep


def _editor(
    inject: Tensor | None, rows: Tensor | None, positions: Tensor | None, values: Tensor | None
) -> Callable[[Tensor, str], Tensor]:
    """A hook that replaces the activation by `inject` (when given), then writes `values` [n, ...] at
    (`rows`, `positions`)."""

    def edit(act: Tensor, name: str) -> Tensor:
        out = inject.to(act.dtype) if inject is not None else act.clone()
        if rows is not None:
            out[rows, positions] = values.to(out.dtype)
        return out

    return edit


def run_pass(
    model: HookedModel,
    ids: Tensor,  # [batch, pos] target tokens
    target: Target,
    source: dict[str, Tensor],  # hook name -> source activation [batch, pos, ...]
    group: Sequence[Cell],
    costs: Costs,
) -> tuple[Tensor, Tensor]:
    """The group's patched runs: logits [len(group) * batch, n, vocab] at the n kept positions >= the
    group's first position, and those positions [n]."""
    batch, n_pos = ids.shape
    p0 = min(c.start for c in group)
    l0 = min(c.layer for c in group) if costs.skip_layers else 0
    kept = costs.kept_from(p0)
    example = torch.arange(batch).repeat(len(group))  # row -> example
    past = None
    if p0 > 0:
        prefix_kv = [(k[example, :, :p0], v[example, :, :p0]) for k, v in target.keys_values]
        past = hf_compat.build_cache(prefix_kv, model.hf_model.config)
    by_hook: dict[str, list[tuple[int, Cell]]] = {}
    for slot, cell in enumerate(group):
        by_hook.setdefault(cell.hook, []).append((slot, cell))
    inject_hook = f"blocks.{l0}.hook_resid_pre"
    hooks: dict[str, Callable[[Tensor, str], Tensor]] = {}
    # blocks below l0 are skipped: block l0 gets the target's residual stream (indexing copies it)
    inject = target.acts[inject_hook][example, p0:] if l0 > 0 else None
    if inject is not None and inject_hook not in by_hook:
        hooks[inject_hook] = _editor(inject, None, None, None)
    for hook, members in by_hook.items():
        slots = torch.tensor([slot for slot, _ in members])
        rows = (slots[:, None] * batch + torch.arange(batch)).reshape(-1)  # [n * batch]
        pos = torch.cat([cell.positions for _, cell in members])
        values = source[hook][example[rows], pos]
        hooks[hook] = _editor(inject if hook == inject_hook else None, rows, pos - p0, values)
    extra = {"logits_to_keep": kept - p0} if _takes_logits_to_keep(type(model.hf_model)) else {}
    device = model.device
    blocks = model.module(model.adapter.layers)
    kv = hf_compat.cache_kwargs(type(model.hf_model), past)
    with torch.no_grad(), hf_compat.skipped(blocks, l0), model.hooks(hooks):
        out = model.hf_model(input_ids=ids[example, p0:].to(device), **kv, **extra)
    logits = _outputs(out)
    return (logits if extra else logits[:, kept - p0]), kept


@functools.cache
def _takes_logits_to_keep(model_class: type) -> bool:
    """Whether the model's forward can compute logits at chosen positions only (read once per class)."""
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def rows_budget(model: HookedModel, n_pos: int, budget: int) -> Callable[[int], int]:
    """Rows one pass may hold when it starts at p0, within `budget` bytes."""
    return lambda p0: max(1, budget // bytes_per_example(model, n_pos - p0))


def head_cost(model: HookedModel) -> float:
    """The unembedding's cost per position in blocks (d_vocab * d_model against a block's matmuls)."""
    c = model.cfg
    block = 4 * c.d_model * c.n_heads * c.d_head + 3 * c.d_model * c.d_mlp
    return c.d_vocab * c.d_model / block


@dataclass(frozen=True)
class PrefixSweep:
    """The metric under every site's patch, the baselines, and how many passes it took."""

    values: Tensor  # [n_sites] in grid order
    metric_source: float
    metric_target: float
    passes: int  # patched passes (not counting the two baseline runs)


def sweep(
    model: HookedModel,
    target_ids: Tensor,  # [batch, pos] the run that is patched (corrupted when denoising)
    source_ids: Tensor,  # [batch, pos] the run patched in
    grids: Sequence[Grid],
    metric: Callable[[Tensor], Tensor],
    budget: int,
) -> PrefixSweep:
    """Every site of `grids` patched from the source run into the target run, with prefix reuse."""
    batch, n_pos = target_ids.shape
    sites = cells(grids, batch)
    swept = sorted({c.hook for c in sites})
    with torch.no_grad():
        source_logits, cache = model.run_with_cache(source_ids, names=swept)
    source = cache.to_dict()
    residuals = {f"blocks.{c.layer}.hook_resid_pre" for c in sites}
    target = run_target(model, target_ids, sorted(residuals | set(swept)))
    metric_target = metric(target.logits)
    costs = Costs(
        n_pos,
        model.cfg.n_layers,
        head_cost(model),
        PASS_OVERHEAD.get(model.device.type, PASS_OVERHEAD["cuda"]),
        read_positions(metric, target.logits),
        target.blocks_return_tensors,
    )
    values = torch.full((len(sites),), float(metric_target))
    # No pass is needed for a patch after the last position the metric reads, nor for one that writes
    # what is already there (e.g. every position before the first token where the inputs differ).
    examples = torch.arange(batch)
    live = [
        c
        for c in sites
        if len(costs.kept_from(c.start))
        and not torch.equal(source[c.hook][examples, c.positions], target.acts[c.hook][examples, c.positions])
    ]
    passes = plan(live, batch, costs, rows_budget(model, n_pos, budget))
    for group in passes:
        logits, kept = run_pass(model, target_ids, target, source, group, costs)
        full = target.logits.clone()  # every slot overwrites the same kept positions
        for slot, cell in enumerate(group):
            full[:, kept] = logits[slot * batch : (slot + 1) * batch]
            values[cell.index] = float(metric(full))
    return PrefixSweep(values, float(metric(source_logits)), float(metric_target), len(passes))
