"""Checking a graph by intervening on the real model.

For each of the most influential features, scale its activation by `factor` (0 ablates it; 2 doubles
it; -1 flips it) in the real model -- no frozen attention or norms, the real MLPs -- by adding
`(factor - 1) * a * decoder` to the MLP output(s) it writes, through the hook layer. Then compare:

- measured: the change of each downstream feature's pre-activation (the transcoder encoder applied to
  the real model's new MLP input) and of each chosen logit;
- predicted by the graph: propagate the change along the graph's edges, treating every active feature
  as locally linear (a change of its input changes its activation one for one) and errors and
  embeddings as fixed: `delta = (I - M)^-1 e`, with `M[t, s]` the edge weight per unit of source
  activation and the intervened feature's own row cleared.

The report gives every (feature, target) pair and the Pearson correlation of predicted and measured
changes over logits, over features, and over both.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from circuits.attribution.graph import AttributionGraph
from circuits.attribution.pruning import Pruned
from circuits.attribution.replacement import HookFn, ReplacementModel, Snapshot
from saes.transcoder_set import HOOK_IN, HOOK_OUT

Freeze = Literal["none", "norms", "all"]
FREEZES: tuple[Freeze, ...] = ("none", "norms", "all")


def per_unit(graph: AttributionGraph) -> Tensor:
    """Edge weights per unit of source activation [n_nodes, n_features]: `A[:, f] / a_f`."""
    cols = graph.adjacency[:, graph.slices()["features"]]
    return cols / graph.activations.clamp_min(1e-12)[None, :]


def predicted_effects(graph: AttributionGraph, feature: int, factor: float) -> Tensor:
    """Predicted change of every node's input [n_nodes] when feature `feature` is scaled by `factor`."""
    m = per_unit(graph)  # [n_nodes, n_features]
    nf = graph.n_features
    m_ff = m[:nf].clone()
    m_ff[feature] = 0  # the intervened feature is set, not computed
    e = torch.zeros(nf, dtype=m.dtype)
    e[feature] = (factor - 1) * graph.activations[feature]
    delta_f = torch.linalg.solve(torch.eye(nf, dtype=m.dtype) - m_ff, e)  # [n_features]
    return m @ delta_f


def measured_effects(
    rm: ReplacementModel,
    snap: Snapshot,
    graph: AttributionGraph,
    feature: int,
    factor: float,
    freeze: Freeze = "none",
) -> Tensor:
    """Measured change of every feature's pre-activation and of the chosen logits [n_nodes] (0 elsewhere)
    when feature `feature` is scaled by `factor` in the real model (`freeze`: "none"; "norms": norm
    denominators held at their traced values; "all": attention patterns too -- the MLPs stay real)."""
    layer, pos, idx = graph.features[feature].tolist()
    amount = (factor - 1) * float(graph.activations[feature])
    mids: dict[int, Tensor] = {}
    hooks: dict[str, HookFn] = {}
    for lyr in range(rm.n_layers):
        hooks[HOOK_IN.format(l=lyr)] = lambda x, name, lyr=lyr: mids.__setitem__(lyr, x[0].detach())
        dec = rm.tc.decoder(layer, lyr)
        if dec is not None:

            def add(y: Tensor, name: str, vec: Tensor = dec[idx] * amount) -> Tensor:
                y = y.clone()
                y[:, pos] += vec.to(y.dtype)
                return y

            hooks[HOOK_OUT.format(l=lyr)] = add
    if freeze == "none":
        ctx = rm.model.hooks(hooks)
    else:
        ctx = rm.frozen(snap, hooks, attention=freeze == "all", norms_=True)
    with torch.no_grad(), ctx:
        logits = rm.model(snap.tokens)
    out = torch.zeros(graph.n_nodes)
    for f, (lyr, p, i) in enumerate(graph.features.tolist()):
        enc = rm.tc.encoder_directions(lyr)[:, i]
        out[f] = float((mids[lyr][p] - snap.resid_mid[lyr][p]) @ enc)
    s = graph.slices()["logits"]
    delta_logits = (logits[0, -1] - snap.logits[0, -1]).float().cpu()
    delta_logits = delta_logits - delta_logits.mean()  # logit nodes are demeaned logits
    out[s] = delta_logits[graph.logit_tokens]
    return out


def _corr(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    t = torch.tensor([x, y], dtype=torch.float64)
    if bool((t.std(1) < 1e-12).any()):
        return None
    return float(torch.corrcoef(t)[0, 1])


def check_interventions(
    rm: ReplacementModel,
    graph: AttributionGraph,
    pruned: Pruned,
    *,
    top: int = 5,
    factors: tuple[float, ...] = (0.0,),
    snap: Snapshot | None = None,
) -> dict[str, Any]:
    """Intervene on the `top` most influential kept features (each factor in `factors`); predicted vs measured.

    Targets are the features downstream of the intervened one (later layer, same or later position)
    and the chosen logits. `measured` is the real model's change; `measured_norms_frozen` and
    `measured_all_frozen` repeat the intervention with norm denominators (and attention patterns)
    held at their traced values, which tells how much of any disagreement each nonlinearity causes.
    Returns {"checks": [...], "correlation": {"logits", "features", "all"} (real model),
    "correlation_by_freeze": {freeze: {...}}, "n_pairs"}.
    """
    snap = snap if snap is not None else rm.trace(torch.tensor([graph.tokens]))
    s = graph.slices()
    infl = pruned.influence[s["features"]].clone()
    infl[~pruned.node_mask[s["features"]]] = -1
    chosen = [int(i) for i in infl.argsort(descending=True)[: min(top, graph.n_features)] if infl[i] >= 0]
    logit_rows = list(range(s["logits"].start, s["logits"].stop))
    last = graph.n_pos - 1
    names = {r: f"{graph.n_layers + 1}_{graph.logit_tokens[k]}_{last}" for k, r in enumerate(logit_rows)}
    for t, (lyr, p, i) in enumerate(graph.features.tolist()):
        names[t] = f"{lyr}_{i}_{p}"
    checks = []
    pairs: dict[str, dict[str, tuple[list[float], list[float]]]] = {
        fr: {"logits": ([], []), "features": ([], [])} for fr in FREEZES
    }
    for f in chosen:
        layer, pos, _ = graph.features[f].tolist()
        downstream = [t for t, (lyr, p, _) in enumerate(graph.features.tolist()) if lyr > layer and p >= pos]
        for factor in factors:
            pred = predicted_effects(graph, f, factor)
            meas = {fr: measured_effects(rm, snap, graph, f, factor, fr) for fr in FREEZES}

            def record(rows: list[int], pred=pred, meas=meas) -> dict[str, dict[str, float]]:
                return {
                    names[r]: {
                        "predicted": float(pred[r]),
                        "measured": float(meas["none"][r]),
                        "measured_norms_frozen": float(meas["norms"][r]),
                        "measured_all_frozen": float(meas["all"][r]),
                    }
                    for r in rows
                }

            checks.append(
                {
                    "node_id": names[f],
                    "factor": factor,
                    "activation": float(graph.activations[f]),
                    "logits": record(logit_rows),
                    "features": record(downstream),
                }
            )
            for fr in FREEZES:
                for kind, rows in (("logits", logit_rows), ("features", downstream)):
                    pairs[fr][kind][0].extend(float(pred[r]) for r in rows)
                    pairs[fr][kind][1].extend(float(meas[fr][r]) for r in rows)

    def correlations(p: dict[str, tuple[list[float], list[float]]]) -> dict[str, float | None]:
        both = (p["logits"][0] + p["features"][0], p["logits"][1] + p["features"][1])
        return {"logits": _corr(*p["logits"]), "features": _corr(*p["features"]), "all": _corr(*both)}

    by_freeze = {fr: correlations(pairs[fr]) for fr in FREEZES}
    return {
        "checks": checks,
        "correlation": by_freeze["none"],
        "correlation_by_freeze": by_freeze,
        "n_pairs": {"logits": len(pairs["none"]["logits"][0]), "features": len(pairs["none"]["features"][0])},
    }
