"""Path patching (Wang et al. 2023, "Interpretability in the Wild"; Goldowsky-Dill et al. 2023).

Measures the effect of each sender head that flows *directly* (through the residual stream, not
through other heads) into chosen receivers, e.g. the queries of suspected name-mover heads, or the
final residual stream (the direct path to the logits). Noising by default, as in the IOI paper.

Algorithm (base input = clean when noising, corrupted when denoising; source = the other one):
  1. Cache every head's output (`attn.hook_z`) on the base and on the source input (and `mlp_out`
     on the base when MLPs are frozen too).
  2. For each sender head (l, h): run the base input with head (l, h)'s output taken from the source
     run and every head in the layers after l frozen at its base value (optionally MLPs too); record
     the receivers' activations. All senders run as intervention sets of one `run_batched` call.
  3. For each sender: run the base input again with only the receivers replaced by what step 2
     recorded, and measure the metric (again one `run_batched` call).
  4. Normalise as every sweep: (m - m_corrupted) / (m_clean - m_corrupted). Noising, values far
     below 1 mark senders whose direct path to the receivers matters.

    >>> res = path_patching(model, batch.clean, batch.corrupted, batch.logit_diff)  # senders -> logits
    >>> res.values.shape  # [layer, head]; NaN where a head cannot send to the receivers
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.patching.metrics import Metric, normalise
from circuits.patching.runner import baselines, check_mode, count_forwards, pair, run_sets, sweep_budget
from circuits.results import LabelledArray
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs
from interp.interventions import Intervention, Patch
from interp.names import HookPoint


@dataclass(frozen=True)
class Receiver:
    """A receiving component: a hook, optionally some heads and positions (e.g. queries at END).

    Example:
        >>> Receiver("blocks.2.attn.hook_q", heads=(0, 3), positions=(-1,))
    """

    hook: str
    heads: tuple[int, ...] | None = None
    positions: tuple[int, ...] | None = None

    @property
    def point(self) -> HookPoint:
        """The hook as a block `HookPoint` (an `InterpError` for any other name)."""
        point = HookPoint.try_parse(self.hook)
        if point is None or point.layer is None:
            raise InterpError(f"receiver {self.hook!r} is not a block hook (blocks.{{l}}.<kind>)")
        return point

    @property
    def layer(self) -> int:
        return self.point.layer  # type: ignore[return-value]  # a block point has one

    @property
    def last_sender_layer(self) -> int:
        """The last layer whose heads can write into this receiver: the one before for receivers up
        to the block's attention output (they read before its heads write), else its own."""
        point = self.point
        before = point.order <= HookPoint.block(self.layer, "hook_attn_out").order
        return self.layer - 1 if before else self.layer


def _receivers(model: HookedModel, receivers: Sequence[Receiver | str] | None) -> list[Receiver]:
    if receivers is None:
        return [Receiver(f"blocks.{model.cfg.n_layers - 1}.hook_resid_post")]
    out = [r if isinstance(r, Receiver) else Receiver(r) for r in receivers]
    if not out:
        raise InterpError("path_patching needs at least one receiver")
    for r in out:
        model.select(r.hook)  # a clear error for unknown hooks
        _ = r.layer
    return out


@contextlib.contextmanager
def _recording(model: HookedModel, hooks: Sequence[str]) -> Iterator[dict[str, list[Tensor]]]:
    """Record what passes through `hooks` (every forward, in order) without changing it."""
    store: dict[str, list[Tensor]] = {h: [] for h in hooks}

    def record(tensor: Tensor, name: str) -> None:
        store[name].append(tensor.detach().clone())

    with model.hooks({h: record for h in hooks}):
        yield store


def path_patching(
    model: HookedModel,
    clean: Inputs,
    corrupted: Inputs,
    metric: Metric,
    receivers: Sequence[Receiver | str] | None = None,
    *,
    senders: Sequence[tuple[int, int]] | None = None,
    mode: str = "noise",
    freeze_mlps: bool = False,
    normalise_metric: bool = True,
    memory_budget: int | None = None,
) -> LabelledArray:
    """The direct effect of each sender head on `receivers` (default: the final residual stream).

    Values [layer, head] (NaN for heads that are not senders). `senders` lists (layer, head) pairs
    (default: every head before the receivers). See the module docstring for the algorithm.

    Example:
        >>> movers = path_patching(model, batch.clean, batch.corrupted, batch.logit_diff)
        >>> to_q = path_patching(model, batch.clean, batch.corrupted, batch.logit_diff,
        ...                      [Receiver("blocks.2.attn.hook_q", heads=(1,), positions=(-1,))])
    """
    check_mode(mode)
    recv = _receivers(model, receivers)
    clean_ids, corrupted_ids = pair(model, clean, corrupted)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    last = max(r.last_sender_layer for r in recv)
    top = max(r.layer for r in recv)
    if senders is None:
        senders = [(layer, head) for layer in range(last + 1) for head in range(n_heads)]
    senders = [(int(a), int(b)) for a, b in senders]
    for layer, head in senders:
        if not (0 <= layer <= last and 0 <= head < n_heads):
            raise InterpError(
                f"sender L{layer}H{head} cannot send to these receivers (heads in layers 0..{last})"
            )
    base_name, source_name = ("clean", "corrupted") if mode == "noise" else ("corrupted", "clean")
    base_ids = clean_ids if mode == "noise" else corrupted_ids
    z = [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
    mlp = [f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)]
    base = baselines(
        model, clean_ids, corrupted_ids, metric, z + (mlp if freeze_mlps else []), source=base_name
    )
    with torch.no_grad():
        _, source_cache = model.run_with_cache(
            clean_ids if source_name == "clean" else corrupted_ids, names=z
        )

    # step 2: senders from the source, later heads (and MLPs) frozen at base; record receivers
    step2: list[list[Intervention]] = []
    for layer, head in senders:
        frozen = [Patch(z[x], value=base.cache[z[x]]) for x in range(layer + 1, top + 1)]
        if freeze_mlps:
            frozen += [Patch(mlp[x], value=base.cache[mlp[x]]) for x in range(layer, top + 1)]
        step2.append([*frozen, Patch(z[layer], value=source_cache[z[layer]], heads=(head,))])
    hooks = sorted({r.hook for r in recv})
    batch = base_ids.shape[0]
    with _recording(model, hooks) as store, torch.no_grad(), count_forwards(model) as passes:
        budget = memory_budget or sweep_budget(model, base_ids.shape[1])
        model.run_batched(base_ids, step2, reduce=lambda logits: logits[:0].sum(), memory_budget=budget)
    recorded = {
        h: torch.cat(store[h]).unflatten(0, (len(senders), batch)) for h in hooks
    }  # [sender, batch, ...]

    # step 3: only the receivers patched, metric measured
    step3 = [
        [Patch(r.hook, value=recorded[r.hook][i], heads=r.heads, positions=r.positions) for r in recv]
        for i in range(len(senders))
    ]
    values, passes3 = run_sets(model, base_ids, step3, metric, memory_budget)
    grid = torch.full((last + 1, n_heads), float("nan"))
    for (layer, head), value in zip(senders, values.tolist(), strict=True):
        grid[layer, head] = value
    if normalise_metric:
        grid = normalise(grid, base.clean, base.corrupted)
    meta = {
        "method": "path_patching",
        "mode": mode,
        "receivers": [{"hook": r.hook, "heads": r.heads, "positions": r.positions} for r in recv],
        "freeze_mlps": freeze_mlps,
        "normalised": normalise_metric,
        "metric_clean": base.clean,
        "metric_corrupted": base.corrupted,
        "forward_passes": 3 + passes[0] + passes3,
    }
    name = "normalised metric (0 = corrupted, 1 = clean)" if normalise_metric else "metric"
    return LabelledArray(grid, ("layer", "head"), {}, name, meta)
