"""SHIFT-style feature ablation edits (Marks et al. 2024): switch chosen SAE latents off and watch
the behaviour change.

At each SAE site the activation x becomes `x + decode(f') - decode(f)`, where f = encode(x) and
f' is f with the chosen latents set to zero (or to their mean over a reference batch): only
those latents' contributions change, the SAE's reconstruction error is kept.

    >>> spurious = [Node.parse("L1.resid.F12"), Node.parse("L1.resid.F40")]
    >>> with ablate_features(model, saes, spurious):
    ...     edited = model(tokens)
    >>> shift_effect(model, data, saes, spurious)            # {'before': 4.1, 'after': 0.3, ...}
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from circuits.discovery.data import as_data
from circuits.discovery.features import Site, encode_sites, sites_of
from circuits.graph import Node
from interp import HookedModel
from interp.errors import InterpError


def _by_hook(sites: Sequence[Site], features: Iterable[Node | str]) -> dict[str, list[int]]:
    by_site = {(s.layer, s.kind): s.hook for s in sites}
    out: dict[str, list[int]] = {}
    for feature in features:
        node = Node.parse(feature)
        if node.kind != "feature":
            raise InterpError(f"{node} is not an SAE feature node (L<l>.<site>.F<i>)")
        hook = by_site.get((node.layer, node.site))
        if hook is None:
            raise InterpError(f"no SAE at {node.site} of block {node.layer} for {node}")
        out.setdefault(hook, []).append(int(node.index))
    return out


@contextlib.contextmanager
def ablate_features(
    model: HookedModel,
    saes: Sequence[Any] | Mapping[str, Any],
    features: Iterable[Node | str],
    kind: str = "zero",
    reference: Tensor | None = None,
) -> Iterator[HookedModel]:
    """Inside the block, `features` are ablated to zero (`kind="zero"`) or to their mean latent value
    on `reference` tokens [batch, pos] (`kind="mean"`). Hooks are removed on exit."""
    if kind not in ("zero", "mean"):
        raise InterpError(f"feature ablation is 'zero' or 'mean', not {kind!r}")
    sites = sites_of(saes)
    chosen = _by_hook(sites, features)
    means: dict[str, Tensor] = {}
    if kind == "mean":
        if reference is None:
            raise InterpError("mean feature ablation needs reference= tokens")
        means = {
            h: f.mean((0, 1)) for h, (f, _) in encode_sites(model, reference.to(model.device), sites).items()
        }
    sae_of = {s.hook: s.sae for s in sites}

    def hook_for(hook: str):
        index = torch.tensor(chosen[hook])

        def edit(x: Tensor, name: str) -> Tensor:
            sae = sae_of[hook]
            f = sae.encode(x)
            g = f.clone()
            g[..., index] = means[hook][index].to(g.dtype) if kind == "mean" else 0.0
            return x + (sae.decode(g) - sae.decode(f)).to(x.dtype)

        return edit

    with model.hooks({hook: hook_for(hook) for hook in chosen}):
        yield model


@torch.no_grad()
def shift_effect(
    model: HookedModel,
    data: Any,
    saes: Sequence[Any] | Mapping[str, Any],
    features: Iterable[Node | str],
    kind: str = "zero",
) -> dict[str, float]:
    """The metric on the clean inputs before and after ablating `features` (mean: over the clean batch)."""
    data = as_data(data)
    tokens = data.clean.to(model.device)
    features = list(features)
    before = float(data.metric(model(tokens)))
    with ablate_features(model, saes, features, kind, reference=tokens if kind == "mean" else None):
        after = float(data.metric(model(tokens)))
    return {"before": before, "after": after, "change": after - before, "n_features": len(features)}
