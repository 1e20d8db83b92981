"""Activation patching (Vig et al. 2020; Meng et al. 2022; Wang et al. 2023), denoising and noising.

Algorithm, for one hook kind and a grid of sites (layer x position x head, see `sites.grid`):
  1. Run the *source* input and cache the hook at every layer: the clean input when denoising
     (patch clean activations into the corrupted run), the corrupted input when noising.
  2. Run the other input plainly: with step 1 this gives the metric's clean and corrupted baselines.
  3. For every site build one intervention set, "replace the activation at this site by the source's",
     and run all sets on the target input with `HookedModel.run_batched`, which stacks them along
     the batch axis: a whole layer x position sweep costs a handful of forward passes.
  4. Optionally normalise: (m - m_corrupted) / (m_clean - m_corrupted), so 0 = corrupted, 1 = clean
     in both modes (denoising: how much a site restores; noising: how much survives corrupting it).

    >>> result = activation_patching(model, batch.clean, batch.corrupted, batch.logit_diff)
    >>> result.values.shape  # [layer, position]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from circuits.patching import prefix
from circuits.patching.metrics import Metric, normalise, reducer
from circuits.patching.runner import baselines, check_mode, pair, run_sets, sweep_budget, token_labels
from circuits.patching.sites import Grid, Positions, grid, hook_kind, site_interventions
from circuits.results import LabelledArray
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs
from interp.interventions import Intervention

DEFAULT_PER = {"z": "head", "q": "head", "k": "head", "v": "head", "pattern": "head"}
NORMALISED = "normalised metric (0 = corrupted, 1 = clean)"


def activation_patching(
    model: HookedModel,
    clean: Inputs,
    corrupted: Inputs,
    metric: Metric,
    hook: str = "resid_pre",
    per: str = "position",
    *,
    mode: str = "denoise",
    layers: Sequence[int] | None = None,
    positions: Positions = None,
    position_labels: Sequence[str] | None = None,
    normalise_metric: bool = True,
    memory_budget: int | None = None,
    prefix_reuse: bool = True,
) -> LabelledArray:
    """Patch `hook` site by site and measure `metric`: values [layer, position] (or [layer, head], ...).

    `hook`: a kind (`resid_pre`, `resid_mid`, `resid_post`, `attn_out`, `mlp_out`, `mlp_pre`,
    `mlp_post`, `q`, `k`, `v`, `z`, `pattern`). `per`: "position", "head", "position_head" or "layer".
    `positions`: absolute indices, or named per-example positions `{name: [batch]}` (e.g.
    `batch.positions`); default every position. `mode`: "denoise" (clean into corrupted; the
    TransformerLens convention) or "noise" (corrupted into clean).

    Example:
        >>> res = activation_patching(model, batch.clean, batch.corrupted, batch.logit_diff, "z", per="head")
        >>> res.argmax()  # {'layer': '2', 'head': '1'}
        >>> res.plot("z.png")
    """
    sweep = patching_sweep(
        model,
        clean,
        corrupted,
        metric,
        {hook: per},
        mode=mode,
        layers=layers,
        positions=positions,
        position_labels=position_labels,
        normalise_metric=normalise_metric,
        memory_budget=memory_budget,
        prefix_reuse=prefix_reuse,
    )
    return next(iter(sweep.values()))


def patching_sweep(
    model: HookedModel,
    clean: Inputs,
    corrupted: Inputs,
    metric: Metric,
    hooks: Sequence[str] | Mapping[str, str] = ("resid_pre", "attn_out", "mlp_out", "z"),
    *,
    mode: str = "denoise",
    layers: Sequence[int] | None = None,
    positions: Positions = None,
    position_labels: Sequence[str] | None = None,
    normalise_metric: bool = True,
    memory_budget: int | None = None,
    prefix_reuse: bool = True,
) -> dict[str, LabelledArray]:
    """Several hook kinds in one batched run: {kind: result}.

    `hooks` lists kinds (per-head kinds are swept per head, others per position) or maps kind -> per.
    `prefix_reuse`: on causal decoders, per-position sweeps of residual, attention-out and MLP hooks
    recompute only the layers and positions a patch can change (`circuits.patching.prefix`); False
    runs every patched copy in full (the reference path).

    Example:
        >>> results = patching_sweep(model, batch.clean, batch.corrupted, batch.logit_diff)
        >>> results["resid_pre"].values.shape, results["z"].values.shape
    """
    check_mode(mode)
    clean_ids, corrupted_ids = pair(model, clean, corrupted)
    if normalise_metric and torch.equal(clean_ids, corrupted_ids):  # decided on tokens, not on float metrics
        raise InterpError(
            "clean and corrupted inputs are the same tokens, so the metric is equal on both clean and corrupted "
            "inputs and cannot be normalised; pick inputs that differ, or pass normalise_metric=False"
        )
    grids, _ = sweep_grids(model, clean_ids, hooks, layers, positions, position_labels)
    source_ids, target_ids = (clean_ids, corrupted_ids) if mode == "denoise" else (corrupted_ids, clean_ids)
    reusable = [n for n, g in grids.items() if prefix_reuse and prefix.supported(model, [g])]
    rest = [n for n in grids if n not in reusable]
    values: dict[str, Tensor] = {}
    passes = 0  # forward passes, baselines included
    if reusable:  # each patched run recomputes only the layers and positions its patch can change
        budget = memory_budget or sweep_budget(model, clean_ids.shape[1])
        chosen = [grids[n] for n in reusable]
        reused = prefix.sweep(model, target_ids, source_ids, chosen, reducer(metric), budget)
        values.update(zip(reusable, reused.values.split([len(g.sites) for g in chosen]), strict=True))
        passes += reused.passes + 2
        m_source, m_target = reused.metric_source, reused.metric_target
        m_clean, m_corrupted = (m_source, m_target) if mode == "denoise" else (m_target, m_source)
    if rest:  # every patched copy runs in full, many copies per pass
        chosen = [grids[n] for n in rest]
        hooks_needed = sorted({g.kind.hook(site.layer) for g in chosen for site in g.sites})
        source = "clean" if mode == "denoise" else "corrupted"
        base = baselines(model, clean_ids, corrupted_ids, metric, hooks_needed, source=source)
        sets: list[list[Intervention]] = []
        for g in chosen:
            sets += [site_interventions(g, site, base.cache[g.kind.hook(site.layer)]) for site in g.sites]
        flat, full_passes = run_sets(model, target_ids, sets, metric, memory_budget)
        values.update(zip(rest, flat.split([len(g.sites) for g in chosen]), strict=True))
        passes += full_passes + 2
        m_clean, m_corrupted = base.clean, base.corrupted
    n_sites = sum(len(g.sites) for g in grids.values())
    results = {}
    for name, g in grids.items():
        chunk = values[name].reshape(g.shape)
        results[name] = _result(g, chunk, m_clean, m_corrupted, mode, normalise_metric, passes, n_sites)
    return results


def _result(
    g: Grid,
    values: Tensor,
    m_clean: float,
    m_corrupted: float,
    mode: str,
    normalised: bool,
    passes: int,
    n_sets: int,
) -> LabelledArray:
    meta = {
        "method": "activation_patching",
        "hook": g.kind.short,
        "per": g.per,
        "mode": mode,
        "normalised": normalised,
        "metric_clean": m_clean,
        "metric_corrupted": m_corrupted,
        "forward_passes": passes,  # baseline runs included
        "intervention_sets": n_sets,
    }
    if normalised:
        values = normalise(values, m_clean, m_corrupted)
    return LabelledArray(values, g.dims, g.labels, NORMALISED if normalised else "metric", meta)


def patched_metric(
    model: HookedModel, target: Tensor, interventions: Sequence[Intervention], metric: Metric
) -> float:
    """The metric of one run of `target` under `interventions` (the slow, one-at-a-time reference)."""
    with torch.no_grad():
        return float(metric(model.run_with_interventions(target, list(interventions))))


def sweep_grids(
    model: HookedModel,
    clean_ids: Tensor,  # [batch, pos]
    hooks: Sequence[str] | Mapping[str, str],
    layers: Sequence[int] | None,
    positions: Positions,
    position_labels: Sequence[str] | None,
) -> tuple[dict[str, Grid], list[str]]:
    """The site grid of each swept hook kind, and the concrete hook names the grids touch.

    Shared by `patching_sweep` and `attribution_sweep`, so both lay their results out identically.
    """
    batch, n_pos = clean_ids.shape
    pers = (
        dict(hooks)
        if isinstance(hooks, Mapping)
        else {h: DEFAULT_PER.get(hook_kind(h).short, "position") for h in hooks}
    )
    labels = position_labels if position_labels is not None else token_labels(model, clean_ids)
    grids = {
        name: grid(model, name, per, n_pos, batch, layers=layers, positions=positions, position_labels=labels)
        for name, per in pers.items()
    }
    names = sorted({g.kind.hook(site.layer) for g in grids.values() for site in g.sites})
    return grids, names
