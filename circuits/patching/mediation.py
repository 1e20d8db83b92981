"""Causal mediation analysis (Vig et al. 2020; Stolfo et al. 2023): total, natural direct and natural
indirect effects of changing the input, through one component (the mediator) at a time.

With x the clean (base) input, x' the corrupted (intervened) input, y the metric and z a component:
  total effect     TE  = y(x') - y(x)
  direct effect    NDE = y(x', z(x)) - y(x)    input changed, the mediator held at its clean value
  indirect effect  NIE = y(x, z(x')) - y(x)    input kept, only the mediator takes its corrupted value
Algorithm: NDE is a denoising activation-patching sweep on x', NIE a noising sweep on x (each one
`run_batched` call over all mediators, see `activation.patching_sweep`); TE comes from the baselines.
If the effects of input and mediator on y add up (no interaction: a linear structural model),
TE = NDE + NIE exactly; the gap TE - NDE - NIE measures their interaction.

    >>> res = mediation(model, batch.clean, batch.corrupted, batch.prob, hook="mlp_out", per="layer")
    >>> res.sel(effect="indirect").values  # [layer]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from circuits.patching.activation import patching_sweep
from circuits.patching.metrics import Metric
from circuits.patching.sites import Positions
from circuits.results import LabelledArray
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs

EFFECTS = ("total", "direct", "indirect")


def mediation(
    model: HookedModel,
    clean: Inputs,
    corrupted: Inputs,
    metric: Metric,
    hook: str = "mlp_out",
    per: str = "layer",
    *,
    layers: Sequence[int] | None = None,
    positions: Positions = None,
    relative: bool = False,
    memory_budget: int | None = None,
) -> LabelledArray:
    """Total, direct and indirect effects per mediator: values [effect, layer, ...] (effect: total,
    direct, indirect). `relative` divides every effect by y(x), as Vig et al. report them.

    Example:
        >>> res = mediation(model, batch.clean, batch.corrupted, batch.logit_diff, "attn_out", per="layer")
        >>> res.sel(effect="indirect").argmax()
    """
    common = dict(layers=layers, positions=positions, normalise_metric=False, memory_budget=memory_budget)
    direct = patching_sweep(
        model, clean, corrupted, metric, {hook: per}, mode="denoise", **common
    )  # y(x', z(x))
    indirect = patching_sweep(
        model, clean, corrupted, metric, {hook: per}, mode="noise", **common
    )  # y(x, z(x'))
    (nde,), (nie,) = direct.values(), indirect.values()
    y_clean, y_corrupted = nde.meta["metric_clean"], nde.meta["metric_corrupted"]
    scale = 1.0
    if relative:
        if abs(y_clean) < 1e-12:
            raise InterpError(
                "relative effects divide by the clean metric, which is 0 here; use relative=False"
            )
        scale = y_clean
    te = torch.full_like(nde.values, y_corrupted - y_clean)
    values = torch.stack([te, nde.values - y_clean, nie.values - y_clean]) / scale
    meta = {
        "method": "mediation",
        "hook": nde.meta["hook"],
        "per": per,
        "relative": relative,
        "metric_clean": y_clean,
        "metric_corrupted": y_corrupted,
        "forward_passes": nde.meta["forward_passes"] + nie.meta["forward_passes"],
    }
    labels = {"effect": EFFECTS, **nde.labels}
    name = "effect / y(clean)" if relative else "effect on the metric"
    return LabelledArray(values, ("effect", *nde.dims), labels, name, meta)
