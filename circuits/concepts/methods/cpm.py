"""Causal Proxy Model, hidden-intervention variant (CPM_HI; Wu et al., 2023), used as the explainer.

Algorithm:
  1. The proxy starts as a copy of the model. Concept C owns a fixed slice of the site activation
     (dims [C k, (C + 1) k) of the middle block's residual at `END`).
  2. Training (interchange intervention training on the training sample): for a base x, a concept C
     and a target value c', take a source s with C = c', run the proxy on x with C's slice replaced by
     s's, and fit the model's output on the *true* counterfactual x_{C=c'} (KL); also fit the model's
     output on x itself (the factual loss). Only training texts' counterfactuals are ever used; the
     source run is not back-propagated (a cheaper variant of IIT).
  3. Estimate the edit c -> c' on a new x: the proxy's output with C's slice taken from sources with
     C = c', minus the same with sources with C = c (each averaged over `n_sources` sources).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.concepts.data import Edits, output_dist
from circuits.concepts.methods.common import model_copy, per_concept, require_train, site_acts, site_hook
from circuits.concepts.methods.spec import Method
from interp import HookedModel
from interp.errors import InterpError
from interp.tasks.concepts import CONCEPTS, ConceptSample, concept_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Options of the causal proxy model.

    Example:
        >>> Config(steps=200, slice_size=4)
    """

    hook: str | None = None
    """Hook whose activation at `END` holds the concept slices (None: `hook_resid_post` of the middle
    block, blocks.{n_layers // 2 - 1}, so the blocks after it can combine the slices non-linearly)."""
    slice_size: int | None = None
    """Dims per concept slice (None: d_model // (2 * number of concepts))."""
    steps: int = 900
    """Interchange-intervention training steps (shared by the concepts; fewer steps underfit markedly)."""
    batch_size: int = 64
    """Bases per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    factual_weight: float = 1.0
    """Weight of the factual (no intervention) loss."""
    n_sources: int = 4
    """Sources averaged per arm when estimating."""
    seed: int = 0
    """Seed of bases, targets and sources."""


def _slice(concept: int, size: int) -> slice:
    return slice(concept * size, (concept + 1) * size)


def interchanged(proxy: HookedModel, tokens: Tensor, source_acts: Tensor, hook: str, dims: slice) -> Tensor:
    """[batch, 1, vocab] last-position logits of `proxy` on `tokens` [batch, pos] with `dims` of the
    site taken from `source_acts` [k, d_model] in the first k rows (the other rows run unchanged)."""
    pos, k = tokens.shape[1] - 1, source_acts.shape[0]

    def swap(act: Tensor, name: str) -> Tensor:
        new = act.clone()
        new[:k, pos, dims] = source_acts[:, dims].to(act.device, act.dtype)
        return new

    with proxy.hooks({hook: swap}):
        return proxy(tokens.to(proxy.device), logits_to_keep=1)


def _kl(target: Tensor, logp: Tensor) -> Tensor:
    return (target * (target.clamp_min(1e-12).log() - logp)).sum(-1).mean()


def train_proxy(
    model: HookedModel, train: ConceptSample, concepts: list[str], hook: str, size: int, cfg: Config
) -> HookedModel:
    """The proxy of steps 1-2, trained for `concepts` (names)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    label_ids = list(train.task.label_ids)
    n = len(train)
    factual = output_dist(model, train.tokens, label_ids)  # [n, label]
    pool = {}  # concept -> (target values [n], teacher output on the true counterfactual [n, label])
    for name in concepts:
        c = concept_index(name)
        k = len(train.task.values[name])
        shift = torch.randint(1, k, (n,), generator=generator)
        target = (train.values[:, c] + shift) % k
        pool[name] = (target, output_dist(model, train.counterfactual(name, target).tokens, label_ids))
    proxy = model_copy(model)
    opt = torch.optim.Adam(proxy.hf_model.parameters(), lr=cfg.lr)
    for _ in range(cfg.steps):
        name = concepts[int(torch.randint(len(concepts), (1,), generator=generator))]
        c = concept_index(name)
        idx = torch.randint(n, (cfg.batch_size,), generator=generator)
        target, teacher = pool[name]
        src = _sources(train.values[:, c], target[idx], generator)  # [batch]
        acts = site_acts(proxy, train.tokens[src], hook)  # [batch, d_model], sources are not back-propagated
        both = torch.cat([train.tokens[idx], train.tokens[idx]])  # first half intervened, second factual
        logp = (
            interchanged(proxy, both, acts, hook, _slice(c, size))[:, -1, label_ids].float().log_softmax(-1)
        )
        b = cfg.batch_size
        loss = _kl(teacher[idx].to(logp.device), logp[:b])
        loss = loss + cfg.factual_weight * _kl(factual[idx].to(logp.device), logp[b:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    log.info("cpm: proxy trained for %s, last loss %.4f", ", ".join(concepts), loss.item())
    proxy.hf_model.eval()
    for p in proxy.hf_model.parameters():
        p.requires_grad_(False)
    return proxy


def _sources(values: Tensor, wanted: Tensor, generator: torch.Generator) -> Tensor:
    """[batch] long: for each wanted value, a random index whose value is it (values [n], wanted [batch])."""
    weights = (values[None, :] == wanted[:, None]).float()  # [batch, n]
    return torch.multinomial(weights, 1, generator=generator)[:, 0]


def _arm(
    proxy: HookedModel, train: ConceptSample, edits: Edits, value: Tensor, hook: str, size: int, cfg: Config
) -> Tensor:
    """[edit, label]: proxy output with each edit's concept slice from sources with `value`, averaged."""
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    label_ids = list(train.task.label_ids)
    out = torch.zeros(len(edits), len(label_ids))
    for c in edits.concept.unique().tolist():
        rows = (edits.concept == c).nonzero()[:, 0]
        for _ in range(cfg.n_sources):
            src = _sources(train.values[:, c], value[rows], generator)
            acts = site_acts(proxy, train.tokens[src], hook)  # [rows, d_model]
            with torch.no_grad():
                logits = interchanged(proxy, edits.tokens[rows], acts, hook, _slice(c, size))
            out[rows] += logits[:, -1, label_ids].float().softmax(-1).cpu() / cfg.n_sources
    return out


def estimate(model: HookedModel, edits: Edits, train: ConceptSample | None, cfg: Config) -> Tensor:
    """[edit, label]: causal-proxy estimates of the ICaCE of each edit (see the module docstring)."""
    train = require_train(train, "cpm")
    middle = (
        f"blocks.{max(0, model.cfg.n_layers // 2 - 1)}.hook_resid_post"  # later blocks combine the slices
    )
    hook = site_hook(model, cfg.hook or middle, "cpm")
    size = cfg.slice_size or max(1, model.cfg.d_model // (2 * len(CONCEPTS)))
    if size * len(CONCEPTS) > model.cfg.d_model:
        raise InterpError(
            f"cpm: {len(CONCEPTS)} slices of {size} dims do not fit in d_model {model.cfg.d_model}"
        )
    concepts = [name for name, _ in per_concept(edits)]
    proxy = train_proxy(model, train, concepts, hook, size, cfg)
    return _arm(proxy, train, edits, edits.target, hook, size, cfg) - _arm(
        proxy, train, edits, edits.source, hook, size, cfg
    )


METHOD = Method(
    name="cpm",
    config=Config,
    estimate=estimate,
    needs_train=True,
    summary="causal proxy model (interchange-trained copy); swap in the concept slice of a target-valued source",
)
