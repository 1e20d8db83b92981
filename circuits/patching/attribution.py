"""Attribution patching (Nanda 2023; Syed et al. 2023): every patch of a sweep estimated to first order
from one forward and one backward pass.

Patching activation a from a_target to a_source changes the metric by about
(a_source - a_target) . d metric / d a, the gradient taken on the target run. Algorithm:
  1. Cache the hook kinds on the source run (no gradients).
  2. Run the target input with hooks that pass each cached activation on as a fresh node of the
     autograd graph (a clone, so every downstream path still runs through it), evaluate the metric,
     and take the gradient with respect to all those activations in one backward pass.
  3. For each site of the grid (`sites.grid`, the same sites activation patching uses), sum
     (a_source - a_target) * gradient over the site's selection (its layer, position, head) and over
     the batch and feature axes.
  4. Report it on activation patching's scale: the estimated patched metric (m_target + estimate), or
     normalised, (estimate - m_corrupted) / (m_clean - m_corrupted).
Exact when the metric is linear in the patched activation; elsewhere compare against
`activation_patching` (tests do, on a trained IOI model).

    >>> est = attribution_patching(model, batch.clean, batch.corrupted, batch.logit_diff, "z", per="head")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from circuits.patching.activation import NORMALISED, sweep_grids
from circuits.patching.metrics import Metric, normalise, scalar
from circuits.patching.runner import check_mode, pair
from circuits.patching.sites import Positions, site_interventions
from circuits.results import LabelledArray
from interp.hooked import HookedModel, Inputs


def attribution_products(
    model: HookedModel, source: Tensor, target: Tensor, metric: Metric, names: Sequence[str]
) -> tuple[float, float, dict[str, Tensor]]:
    """(metric on source, metric on target, {name: (a_source - a_target) * grad [batch, ...]}).

    Any hook names (block or global, e.g. `ln_final.hook_normalized`); one forward on each input and
    one backward on the target.
    """
    with torch.no_grad():
        source_logits, source_cache = model.run_with_cache(source, names=list(names))
        m_source = scalar(metric, source_logits).item()
    nodes: dict[str, Tensor] = {}

    def keep(act: Tensor, name: str) -> Tensor:
        node = act.clone() if act.requires_grad else act.detach().clone().requires_grad_(True)
        nodes[name] = node
        return node

    with torch.enable_grad(), model.hooks({name: keep for name in names}):
        m_target = scalar(metric, model(target))
    wanted = [n for n in names if n in nodes]
    grads = torch.autograd.grad(m_target, [nodes[n] for n in wanted], allow_unused=True)
    products = {}
    for name, grad in zip(wanted, grads, strict=True):
        delta = source_cache[name] - nodes[name].detach()
        products[name] = torch.zeros_like(delta) if grad is None else delta * grad
    return m_source, float(m_target.detach()), products


def attribution_sweep(
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
) -> dict[str, LabelledArray]:
    """Attribution estimates for several hook kinds from one forward + backward: {kind: result}.

    Same arguments and result layout as `patching_sweep`, so the two can be compared cell by cell.

    Example:
        >>> est = attribution_sweep(model, batch.clean, batch.corrupted, batch.logit_diff)
    """
    check_mode(mode)
    clean_ids, corrupted_ids = pair(model, clean, corrupted)
    grids, names = sweep_grids(model, clean_ids, hooks, layers, positions, position_labels)
    source, target = (clean_ids, corrupted_ids) if mode == "denoise" else (corrupted_ids, clean_ids)
    m_source, m_target, products = attribution_products(model, source, target, metric, names)
    m_clean, m_corrupted = (m_source, m_target) if mode == "denoise" else (m_target, m_source)
    results = {}
    for name, g in grids.items():
        estimates = []
        for site in g.sites:
            product = products[g.kind.hook(site.layer)]
            (patch,) = site_interventions(g, site, product)
            estimates.append(patch.apply(torch.zeros_like(product)).sum())  # sum over the site's selection
        values = m_target + torch.stack(estimates).reshape(g.shape).detach().float().cpu()
        if normalise_metric:
            values = normalise(values, m_clean, m_corrupted)
        meta = {
            "method": "attribution_patching",
            "hook": g.kind.short,
            "per": g.per,
            "mode": mode,
            "normalised": normalise_metric,
            "metric_clean": m_clean,
            "metric_corrupted": m_corrupted,
            "forward_passes": 2,
            "backward_passes": 1,
        }
        results[name] = LabelledArray(
            values, g.dims, g.labels, NORMALISED if normalise_metric else "metric", meta
        )
    return results


def attribution_patching(
    model: HookedModel,
    clean: Inputs,
    corrupted: Inputs,
    metric: Metric,
    hook: str = "resid_pre",
    per: str = "position",
    **kwargs: object,
) -> LabelledArray:
    """The first-order estimate of `activation_patching(model, clean, corrupted, metric, hook, per)`.

    Example:
        >>> est = attribution_patching(model, batch.clean, batch.corrupted, batch.logit_diff, "resid_pre")
        >>> real = activation_patching(model, batch.clean, batch.corrupted, batch.logit_diff, "resid_pre")
        >>> torch.corrcoef(torch.stack([est.values.flatten(), real.values.flatten()]))[0, 1]
    """
    return next(iter(attribution_sweep(model, clean, corrupted, metric, {hook: per}, **kwargs).values()))
