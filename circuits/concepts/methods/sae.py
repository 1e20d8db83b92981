"""The sparse-autoencoder features that track a concept, used to edit it.

Algorithm, on the site activation x (last block's residual at `END` by default):
  1. An SAE on x: loaded from a saved folder (`sae=`, `saes.load`), or a TopK SAE trained here on
     the site activations of the training texts (unsupervised: the concept labels are not used).
  2. Per concept C, the `n_features` features whose activation the concept's value explains best:
     the largest correlation ratio eta^2 = between-value variance / total variance of the feature
     on the training texts (`n_features=1`: the feature most correlated with the concept).
  3. With a_v the chosen features' mean activations on training texts with C = v and D their
     decoder directions (`feature_directions`), estimate the edit c -> c' through them only:
     * `shift` (default): N(x + (a_c' - a_c) D) - N(x);
     * `set`: N(x + (a_c' - f(x)) D) - N(x + (a_c - f(x)) D), f(x) the features' activations on x,
       so each arm sets the features to a value's mean, leaving the SAE's error term untouched.
A feature that tracks a concept need not carry its effect alone: features of overall sentiment
correlate with every concept that moves the label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

import saes
from circuits.concepts.data import Edits, output_dist
from circuits.concepts.methods.common import (
    class_means,
    concept_labels,
    per_concept,
    require_train,
    shift_estimate,
    site_acts,
    site_hook,
)
from circuits.concepts.methods.spec import Method
from interp import HookedModel
from interp.errors import InterpError
from interp.tasks.concepts import ConceptSample

log = logging.getLogger(__name__)
INTERVENTIONS = ("shift", "set")


@dataclass(frozen=True)
class Config:
    """Options of the SAE-feature estimator.

    Example:
        >>> Config(n_features=3)                     # train a TopK SAE, edit its top 3 features per concept
        >>> Config(sae="out/my_sae", intervention="set")   # a saved SAE on the site hook
    """

    hook: str | None = None
    """Hook whose activation at `END` is encoded (None: the loaded SAE's `hook_in`, else the last
    block's `hook_resid_post`)."""
    sae: str | None = None
    """Folder of a saved SAE to use (None: train a TopK SAE on the training texts)."""
    n_features: int = 1
    """Features per concept."""
    intervention: str = "shift"
    """How an edit is applied through the features: `shift` or `set` (see the module docstring)."""
    expansion: int = 4
    """Trained SAE: latents per site dimension."""
    k: int = 8
    """Trained SAE: active latents per activation (TopK)."""
    steps: int = 400
    """Trained SAE: optimiser steps."""
    batch_size: int = 256
    """Trained SAE: activations per step (drawn with replacement from the training texts')."""
    lr: float = 3e-3
    """Trained SAE: peak Adam learning rate."""
    seed: int = 0
    """Seed of the trained SAE and of its batches."""

    def __post_init__(self) -> None:
        if self.intervention not in INTERVENTIONS:
            raise InterpError(
                f"sae intervention must be one of {', '.join(INTERVENTIONS)}, got {self.intervention!r}"
            )
        if min(self.n_features, self.expansion, self.k, self.steps, self.batch_size) < 1:
            raise InterpError("sae n_features, expansion, k, steps and batch_size must be >= 1")


def fit_sae(x: Tensor, hook: str, cfg: Config) -> saes.SparseAutoencoder:
    """Step 1 (trained case): a TopK SAE on the site activations `x` [n, d_model].

    Example:
        >>> sae = fit_sae(site_acts(model, train.tokens, hook), hook, Config())
    """
    d = x.shape[1]
    generator = torch.Generator().manual_seed(cfg.seed)
    sae_cfg = saes.SAEConfig(
        "topk", d_in=d, d_sae=cfg.expansion * d, k=min(cfg.k, cfg.expansion * d), hook_in=hook
    )
    tc = saes.TrainConfig(
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        total_steps=cfg.steps,
        lr_warmup_steps=max(1, cfg.steps // 20),
        lr_decay_steps=cfg.steps // 5,
        dead_window_tokens=20 * cfg.batch_size,
        progress=False,
        seed=cfg.seed,
    )
    batches = (x[torch.randint(x.shape[0], (cfg.batch_size,), generator=generator)] for _ in range(cfg.steps))
    return saes.Trainer(sae_cfg, tc).fit(batches)


def load_or_fit(
    model: HookedModel, train: ConceptSample, cfg: Config
) -> tuple[saes.SparseAutoencoder, str, Tensor]:
    """(SAE, site hook, training site activations [n, d_model]) of step 1."""
    if cfg.sae is None:
        hook = site_hook(model, cfg.hook, "sae")
        x = site_acts(model, train.tokens, hook)
        return fit_sae(x, hook, cfg), hook, x
    sae = saes.load(cfg.sae)
    hook = site_hook(model, cfg.hook or sae.cfg.hook_in or None, "sae")
    if sae.cfg.d_in != model.cfg.d_model:
        raise InterpError(
            f"sae: the SAE reads {sae.cfg.d_in} dims, the site {hook!r} has {model.cfg.d_model}"
        )
    return sae, hook, site_acts(model, train.tokens, hook)


@torch.no_grad()
def correlation_ratio(z: Tensor, y: Tensor, n_classes: int) -> Tensor:
    """[feature]: eta^2 of each column of `z` [n, feature] with the labels `y` [n] (0 for constant columns)."""
    z = z.double()
    total = (z - z.mean(0)).pow(2).sum(0)  # [feature]
    counts = torch.bincount(y, minlength=n_classes).double()  # [class]
    between = (counts[:, None] * (class_means(z, y, n_classes) - z.mean(0)).pow(2)).sum(0)
    return torch.where(total > 0, between / total.clamp_min(1e-30), 0.0).float()


def concept_features(z: Tensor, y: Tensor, n_classes: int, n_features: int) -> tuple[Tensor, Tensor]:
    """Step 2: (indices [n_features], their eta^2) of the features the concept explains best."""
    eta2 = correlation_ratio(z, y, n_classes)
    top = eta2.topk(min(n_features, eta2.numel()))
    return top.indices, top.values


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: estimates of the ICaCE of each edit through the SAE features that track its concept."""
    train = require_train(train, "sae")
    sae, hook, x = load_or_fit(model, train, cfg)
    with torch.no_grad():
        z = sae.encode(x.to(sae.W_enc.device)).float().cpu()  # [n, d_sae]
    directions = sae.feature_directions().float().cpu()  # [d_sae, d_model]
    out = torch.zeros(len(edits), len(train.task.labels))
    for concept, mask in per_concept(edits):
        y = concept_labels(train, concept)
        k = len(train.task.values[concept])
        top, eta2 = concept_features(z, y, k, cfg.n_features)
        log.info(
            "sae %s: features %s, eta^2 %s",
            concept,
            top.tolist()[:8],
            [round(v, 3) for v in eta2.tolist()[:8]],
        )
        means = class_means(z[:, top], y, k)  # [value, n_features]
        d = directions[top]  # [n_features, d_model]
        sub = edits.subset(mask)
        if cfg.intervention == "shift":
            out[mask] = shift_estimate(model, sub, hook, means @ d)
        else:
            out[mask] = _set_arm(model, sub, hook, sae, top, means, d, sub.target) - _set_arm(
                model, sub, hook, sae, top, means, d, sub.source
            )
    return out


def _set_arm(
    model: HookedModel,
    edits: Edits,
    hook: str,
    sae: saes.SparseAutoencoder,
    top: Tensor,
    means: Tensor,
    d: Tensor,
    value: Tensor,
) -> Tensor:
    """[edit, label]: output with the chosen features set to `means[value]` at the site."""
    pos = edits.tokens.shape[1] - 1
    targets = means[value]  # [edit, n_features]

    def edit(act: Tensor, rows: Tensor) -> Tensor:
        h = act[:, pos]  # [chunk, d_model]
        now = sae.encode(h.to(sae.W_enc.device)).float()[:, top.to(sae.W_enc.device)].to(act.device)
        new = act.clone()
        new[:, pos] = h + ((targets[rows].to(act.device) - now) @ d.to(act.device)).to(act.dtype)
        return new

    return output_dist(model, edits.tokens, edits.sample.task.label_ids, edit=edit, hook=hook)


METHOD = Method(
    name="sae",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="TopK SAE on the last residual; shift the feature most correlated with the concept by its value means' difference",
)
