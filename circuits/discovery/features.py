"""Sparse feature circuits: circuits over SAE latents plus one error node per SAE (Marks et al. 2024,
"Sparse Feature Circuits").

Each SAE reads and rewrites one hook (`blocks.{l}.hook_resid_post`, `hook_attn_out` or
`hook_mlp_out`): the activation is written as `decode(f) + err`, so the model computes the same
thing while `f` (latents [batch, pos, d_sae]) and `err` ([batch, pos, d_model]) become nodes.

Algorithm:
  1. Encode the clean and the ablation activations at every SAE site: (f, err) and (f', err')
     (`corrupted` input, batch `mean`, or `zero`).
  2. Node effects by integrated gradients, one site at a time: for k = 0..m-1 set the site to
     `decode(f + (k/m)(f' - f)) + err + (k/m)(err' - err)`, backpropagate the metric, average the
     gradients; IE(latent i) = sum over batch, pos of (f'_i - f_i) * grad_i (the error node likewise).
  3. Keep the `nodes_per_site` latents with the largest |IE| at each site (and every error node).
  4. Edges between consecutive sites u -> d, linearly: for each kept downstream node j, backpropagate
     sum(grad_m(d_j) * d_j) (grad at the clean input) to site u's nodes and multiply by (f'_u - f_u):
     edge(u_i -> d_j) = sum over batch, pos of (f'_{u,i} - f_{u,i}) * d/df_{u,i} [grad_m(d_j) . d_j].
  5. The last site's nodes connect to `logits` with their IE.

Edges connect each site only to the next one in forward order; with SAEs on every block's residual
stream that covers every path. `circuits.discovery.shift` ablates chosen features (SHIFT-style edits).

    >>> config = FeatureCircuitConfig(saes=(sae0, sae1), steps=5, nodes_per_site=10)
    >>> scores = feature_circuit(model, data, config)          # EdgeScores over feature nodes
    >>> scores.to_circuit(top_n=30).export("out", ["svg"])
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from circuits.discovery.data import CircuitData, as_data, check_metric
from circuits.discovery.scores import EdgeScores
from circuits.graph import Edge, Node
from interp import HookedModel
from interp.errors import InterpError
from interp.names import HookPoint

_ORDER = {"attn": 0, "mlp": 1, "resid": 2}


@dataclass(frozen=True)
class Site:
    """One SAE and where it sits."""

    hook: str
    layer: int
    kind: str  # resid | attn | mlp
    sae: Any = field(compare=False, repr=False)

    def feature(self, index: int) -> Node:
        return Node.feature(self.layer, self.kind, index)

    @property
    def error(self) -> Node:
        return Node.error(self.layer, self.kind)


def sites_of(saes: Sequence[Any] | Mapping[str, Any]) -> tuple[Site, ...]:
    """SAEs (each reading `sae.cfg.hook_in`, or keyed by hook) as `Site`s in forward order."""
    pairs = saes.items() if isinstance(saes, Mapping) else [(getattr(s.cfg, "hook_in", ""), s) for s in saes]
    out = []
    for hook, sae in pairs:
        point = HookPoint.try_parse(hook)
        if point is None or point.feature_site is None:
            raise InterpError(
                f"feature circuits need SAEs on blocks.<l>.hook_resid_post, hook_attn_out or hook_mlp_out; got {hook!r}"
            )
        if not all(hasattr(sae, a) for a in ("encode", "decode")):
            raise InterpError(f"the SAE for {hook} has no encode/decode")
        if getattr(getattr(sae, "cfg", None), "is_transcoder", False):
            raise InterpError(
                f"the SAE for {hook} is a transcoder; feature circuits need SAEs that rewrite their hook"
            )
        out.append(Site(hook, point.layer, point.feature_site, sae))  # type: ignore[arg-type]
    if not out:
        raise InterpError("feature circuits need at least one SAE: FeatureCircuitConfig(saes=...)")
    return tuple(sorted(out, key=lambda s: (s.layer, _ORDER[s.kind])))


@dataclass(frozen=True)
class FeatureCircuitConfig:
    """Sparse feature circuits over the given SAEs."""

    saes: Any = field(default=(), compare=False)
    """SAEs (a sequence, each placed at `sae.cfg.hook_in`, or a mapping hook -> SAE)."""
    steps: int = 5
    """Integrated-gradient points for node effects (1 = attribution patching)."""
    ablation: str = "corrupted"
    """What a latent is ablated to: its value on the `corrupted` input, its batch `mean`, or `zero`."""
    nodes_per_site: int = 10
    """Latents kept per site (largest |IE|) for the edge computation."""

    def __post_init__(self) -> None:
        if self.ablation not in ("corrupted", "mean", "zero"):
            raise InterpError(f"feature circuits ablate to corrupted, mean or zero, not {self.ablation!r}")
        if self.steps < 1 or self.nodes_per_site < 1:
            raise InterpError("steps and nodes_per_site must be >= 1")


@dataclass(frozen=True, eq=False)
class FeatureGraph:
    """The nodes and edges a feature circuit scored (the `graph` of its `EdgeScores`)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


@torch.no_grad()
def encode_sites(
    model: HookedModel, tokens: Tensor, sites: Sequence[Site]
) -> dict[str, tuple[Tensor, Tensor]]:
    """hook -> (latents [batch, pos, d_sae], error [batch, pos, d_model]) on `tokens`."""
    _, cache = model.run_with_cache(tokens, names=[s.hook for s in sites])
    out = {}
    for s in sites:
        x = cache[s.hook]
        f = s.sae.encode(x)
        out[s.hook] = (f, x - s.sae.decode(f).to(x.dtype))
    return out


def _ablated(model: HookedModel, data: CircuitData, sites: Sequence[Site], clean: dict, kind: str) -> dict:
    if kind == "corrupted":
        return encode_sites(model, data.corrupted.to(model.device), sites)
    if kind == "mean":
        return {h: (f.mean(0, keepdim=True), e.mean(0, keepdim=True)) for h, (f, e) in clean.items()}
    return {h: (torch.zeros_like(f[:1]), torch.zeros_like(e[:1])) for h, (f, e) in clean.items()}


def _node_effects(model, data, site, clean, alt, steps) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(IE per latent [d_sae], IE of the error [], clean grads wrt f and err, clean metric) at one site."""
    (f_c, e_c), (f_a, e_a) = clean, alt
    tokens = data.clean.to(model.device)
    grad_f = grad_e = clean_f = clean_e = clean_value = None
    for k in range(steps):
        alpha = k / steps
        f = torch.lerp(f_c, f_a.expand_as(f_c), alpha).requires_grad_(True)
        e = torch.lerp(e_c, e_a.expand_as(e_c), alpha).requires_grad_(True)
        with model.hooks({site.hook: lambda x, name, f=f, e=e: site.sae.decode(f).to(x.dtype) + e}):
            value = data.metric(model(tokens))
        if not value.requires_grad:
            check_metric(value, value, needs_grad=True)
        gf, ge = torch.autograd.grad(value, [f, e], allow_unused=True)
        gf = torch.zeros_like(f) if gf is None else gf
        ge = torch.zeros_like(e) if ge is None else ge
        if k == 0:
            clean_f, clean_e, clean_value = gf, ge, value.detach()
        grad_f = gf if grad_f is None else grad_f + gf
        grad_e = ge if grad_e is None else grad_e + ge
    ie_f = ((f_a - f_c) * grad_f / steps).sum((0, 1))  # [d_sae]
    ie_e = ((e_a - e_c) * grad_e / steps).sum()
    return ie_f, ie_e, clean_f, clean_e, clean_value


def _edges(model, data, up: Site, down: Site, clean, alt, grads, keep_up, keep_down) -> dict[Edge, float]:
    """Linear edge effects from site `up`'s kept nodes to site `down`'s kept nodes."""
    tokens = data.clean.to(model.device)
    (f_c, e_c), (f_a, e_a) = clean[up.hook], alt[up.hook]
    f_u, e_u = f_c.clone().requires_grad_(True), e_c.clone().requires_grad_(True)
    seen: dict[str, Tensor] = {}

    def write_up(x: Tensor, name: str) -> Tensor:
        return up.sae.decode(f_u).to(x.dtype) + e_u

    def read_down(x: Tensor, name: str) -> None:
        seen["x"] = x

    with torch.enable_grad(), model.hooks({up.hook: write_up, down.hook: read_down}):
        model(tokens)
        x_d = seen["x"]
        f_d = down.sae.encode(x_d)
        e_d = x_d - down.sae.decode(f_d).to(x_d.dtype)
        g_f, g_e = grads[down.hook]
        targets = [(down.feature(j), (g_f[..., j] * f_d[..., j]).sum()) for j in keep_down]
        targets.append((down.error, (g_e * e_d).sum()))
        out: dict[Edge, float] = {}
        for node, scalar in targets:
            if not scalar.requires_grad:
                continue
            du_f, du_e = torch.autograd.grad(scalar, [f_u, e_u], retain_graph=True, allow_unused=True)
            if du_f is not None:
                per_latent = ((f_a - f_c) * du_f).sum((0, 1))  # [d_sae]
                for i in keep_up:
                    out[Edge(up.feature(i), node)] = float(per_latent[i])
            if du_e is not None:
                out[Edge(up.error, node)] = float(((e_a - e_c) * du_e).sum())
    return out


def feature_circuit(
    model: HookedModel, data: object, config: FeatureCircuitConfig = FeatureCircuitConfig()
) -> EdgeScores:
    """Node and edge effects of SAE latents and error nodes (see the module docstring)."""
    start = time.perf_counter()
    data = as_data(data)
    sites = sites_of(config.saes)
    clean = encode_sites(model, data.clean.to(model.device), sites)
    alt = _ablated(model, data, sites, clean, config.ablation)
    node_scores: dict[Node, float] = {}
    grads, kept = {}, {}
    clean_metric = None
    for site in sites:
        ie_f, ie_e, g_f, g_e, clean_metric = _node_effects(
            model, data, site, clean[site.hook], alt[site.hook], config.steps
        )
        grads[site.hook] = (g_f, g_e)
        top = ie_f.abs().topk(min(config.nodes_per_site, ie_f.numel())).indices.tolist()
        kept[site.hook] = [i for i in top if ie_f[i] != 0] or top[:1]
        node_scores.update({site.feature(i): float(ie_f[i]) for i in kept[site.hook]})
        node_scores[site.error] = float(ie_e)
    edges: dict[Edge, float] = {}
    for up, down in zip(sites, sites[1:], strict=False):
        edges.update(_edges(model, data, up, down, clean, alt, grads, kept[up.hook], kept[down.hook]))
    last = sites[-1]
    for node in [*(last.feature(i) for i in kept[last.hook]), last.error]:
        edges[Edge(node, Node.logits())] = node_scores[node]
    graph = FeatureGraph(tuple(dict.fromkeys([*node_scores, Node.logits()])), tuple(edges))
    meta = {
        "clean_metric": float(clean_metric),
        "seconds": time.perf_counter() - start,
        "task": data.name,
        "config": {
            "steps": config.steps,
            "ablation": config.ablation,
            "nodes_per_site": config.nodes_per_site,
            "hooks": [s.hook for s in sites],
        },
    }
    return EdgeScores(
        graph, torch.tensor(list(edges.values())), "features", node_scores=node_scores, metadata=meta
    )
