"""Causal interventions on a hooked model: activation and path patching, attention knockout,
per-head attention contributions, attribution patching, causal tracing, causal mediation and
context-length probing. Every sweep runs through `HookedModel.run_batched` and returns a
`circuits.results.LabelledArray` (`.values`, `.dims`, `.labels`, `.meta`, `.plot()`, `.to_json()`).

    >>> from circuits import patching
    >>> res = patching.activation_patching(model, batch.clean, batch.corrupted, batch.logit_diff)
    >>> res.values.shape  # [layer, position]
    >>> res.plot("resid_pre.png")
"""

from circuits.patching.activation import activation_patching, patching_sweep
from circuits.patching.attribution import attribution_patching, attribution_sweep
from circuits.patching.batches import same_layout
from circuits.patching.context import ContextProbing, context_length_probing
from circuits.patching.contributions import attention_contributions
from circuits.patching.knockout import Knockout, attention_knockout, blocked_mask, knockout_interventions
from circuits.patching.mediation import mediation
from circuits.patching.metrics import Metric, kl_div, logit_diff, normalise, prob
from circuits.patching.path import Receiver, path_patching
from circuits.patching.sites import KINDS, Grid, HookKind, PatchWhere, Site, grid, hook_kind
from circuits.patching.tracing import TraceConfig, causal_tracing

__all__ = [
    "KINDS",
    "ContextProbing",
    "Grid",
    "HookKind",
    "Knockout",
    "Metric",
    "PatchWhere",
    "Receiver",
    "Site",
    "TraceConfig",
    "activation_patching",
    "attention_contributions",
    "attention_knockout",
    "attribution_patching",
    "attribution_sweep",
    "blocked_mask",
    "causal_tracing",
    "context_length_probing",
    "grid",
    "hook_kind",
    "kl_div",
    "knockout_interventions",
    "logit_diff",
    "mediation",
    "normalise",
    "patching_sweep",
    "path_patching",
    "prob",
    "same_layout",
]
