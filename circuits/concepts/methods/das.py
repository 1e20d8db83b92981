"""A concept subspace found by distributed alignment search (DAS; Geiger et al., 2024), used to edit it.

Algorithm, per concept C, on the site activation x (last block's residual at `END` by default):
  1. Train the DAS map, an orthonormal basis W [k, d_model] (`circuits.abstraction.maps.Rotation`),
     by interchange interventions on the training sample, with the model frozen: for a base x with
     C = c and a target c' != c, replace the site's component in span(W) by that of mu_c', the class
     mean of c' (a mean source: no single source's other concepts or wording come along),
     x -> x + ((mu_c' - x) W^T) W, and fit the output (KL) to the model's output on the true
     counterfactual x_{C=c'}. The concepts task has no high-level causal model, so the target is the
     model's own counterfactual output (as for `cpm`) where `circuits.abstraction.das.train_map` uses
     a `TaskModel`'s; only training texts' counterfactuals are read, never those of the explained texts.
  2. Estimate the edit c -> c' inside span(W), P = W^T W:
     * `shift` (default): N(x + (mu_c' - mu_c) P) - N(x); x keeps its own deviation inside the
       subspace (e.g. how intense its adjective was), `common.shift_estimate`;
     * `set`: N(x - (x - mu_c') P) - N(x - (x - mu_c) P), as INLP and LEACE do, `common.subspace_estimate`.
Both are exact when the model reads C linearly from span(W) and C's value alone sets x's component
there (as on the hand-set model, `circuits.concepts.handset`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.abstraction.maps import Rotation
from circuits.concepts.data import Edits, output_dist
from circuits.concepts.methods.common import (
    class_means,
    concept_labels,
    per_concept,
    require_train,
    shift_estimate,
    site_acts,
    site_hook,
    subspace_estimate,
)
from circuits.concepts.methods.spec import Method
from interp import HookedModel
from interp.errors import InterpError
from interp.tasks.concepts import ConceptSample

log = logging.getLogger(__name__)
INTERVENTIONS = ("shift", "set")


@dataclass(frozen=True)
class Config:
    """Options of the DAS estimator.

    Example:
        >>> Config(subspace=2, intervention="set")
    """

    hook: str | None = None
    """Hook whose activation at `END` is aligned (None: the last block's `hook_resid_post`)."""
    subspace: int = 1
    """Dimension k of each concept's subspace."""
    steps: int = 300
    """Training steps of each concept's map."""
    batch_size: int = 64
    """Bases per step."""
    lr: float = 3e-3
    """Adam learning rate of the map."""
    intervention: str = "shift"
    """How an edit is applied inside the subspace: `shift` or `set` (see the module docstring)."""
    seed: int = 0
    """Seed of the map's initialisation, the targets and the batches."""

    def __post_init__(self) -> None:
        if self.intervention not in INTERVENTIONS:
            raise InterpError(
                f"das intervention must be one of {', '.join(INTERVENTIONS)}, got {self.intervention!r}"
            )
        if self.subspace < 1 or self.steps < 1 or self.batch_size < 1:
            raise InterpError("das subspace, steps and batch_size must be >= 1")


def fit_subspace(
    model: HookedModel, train: ConceptSample, concept: str, hook: str, cfg: Config, x: Tensor | None = None
) -> tuple[Tensor, float]:
    """Step 1: (W [k, d_model] orthonormal, final training KL) of `concept` at `hook`.

    `x` [n, d_model] are the training texts' site activations (computed when None).

    Example:
        >>> w, kl = fit_subspace(model, train, "food", "blocks.1.hook_resid_post", Config())
    """
    if cfg.subspace > model.cfg.d_model:
        raise InterpError(f"das: a {cfg.subspace}-dim subspace does not fit in d_model {model.cfg.d_model}")
    generator = torch.Generator().manual_seed(cfg.seed)
    label_ids = list(train.task.label_ids)
    x = site_acts(model, train.tokens, hook) if x is None else x
    y = concept_labels(train, concept)
    k = len(train.task.values[concept])
    means = class_means(x, y, k).to(model.device)  # [value, d_model]
    n = len(train)
    target = (y + torch.randint(1, k, (n,), generator=generator)) % k
    teacher = output_dist(model, train.counterfactual(concept, target).tokens, label_ids)  # [n, label]
    rotation = Rotation(x.shape[1], cfg.subspace, cfg.seed).to(model.device)
    opt = torch.optim.Adam(rotation.parameters(), lr=cfg.lr)
    pos = train.tokens.shape[1] - 1
    frozen = [p for p in model.hf_model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        for _ in range(cfg.steps):
            idx = torch.randint(n, (cfg.batch_size,), generator=generator)
            sources = means[target[idx]]  # [batch, d_model]

            def interchange(act: Tensor, name: str, sources: Tensor = sources) -> Tensor:
                new = act.clone()
                new[:, pos] = rotation.interchange(act[:, pos], sources.to(act.dtype))
                return new

            with model.hooks({hook: interchange}):
                logits = model(train.tokens[idx].to(model.device), logits_to_keep=1)
            logp = logits[:, -1, label_ids].float().log_softmax(-1)
            t = teacher[idx].to(logp.device)
            loss = (t * (t.clamp_min(1e-12).log() - logp)).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return rotation.basis().detach().float().cpu(), loss.item()


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: estimates of the ICaCE of each edit inside each concept's DAS subspace."""
    train = require_train(train, "das")
    hook = site_hook(model, cfg.hook, "das")
    x = site_acts(model, train.tokens, hook)  # [n, d_model]
    out = torch.zeros(len(edits), len(train.task.labels))
    for concept, mask in per_concept(edits):
        w, kl = fit_subspace(model, train, concept, hook, cfg, x)
        log.info("das %s: %d-dim subspace, final training KL %.4f", concept, w.shape[0], kl)
        means = class_means(x, concept_labels(train, concept), len(train.task.values[concept]))
        projector = w.T @ w  # [d_model, d_model]
        sub = edits.subset(mask)
        if cfg.intervention == "shift":
            out[mask] = shift_estimate(model, sub, hook, means @ projector)
        else:
            out[mask] = subspace_estimate(model, sub, hook, projector, means)
    return out


METHOD = Method(
    name="das",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="DAS subspace trained by interchange on training counterfactuals; shift it by the value means' difference",
)
