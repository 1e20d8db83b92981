"""Rank-one model editing (Meng et al. 2022, ROME) of one MLP's output projection.

Treat the MLP output projection W [d_mlp, d_model] of block `layer` as a linear associative memory:
keys k (the MLP hidden state, `mlp.hook_post`) map to values k @ W. To make the subject recall a new
attribute:
  1. Key k*: the hidden state at the subject's last token (averaged over the edit prompts).
  2. Value: find delta [d_model] that makes the new attribute likely at the prompt's end (Adam on
     -log p(new attribute), plus a KL term keeping the predictions of `keep` prompts about the same
     subject, plus a small penalty on |delta|), stopping once the new attribute is the argmax with
     probability >= `target_prob` on every edit prompt. One difference from ROME: delta is optimised
     through the edit itself. The update below adds (k . u) delta to the MLP output at *every*
     position (k being that position's key; exactly delta at the subject's last token), and keys sit
     before the edited weights, so the search sees exactly what the edited model will compute,
     instead of adding delta at the subject only and hoping k . u ~ 0 elsewhere.
  3. Insert (k*, k* @ W + delta) with the least change to the other keys, weighted by their second
     moment C = E[k k^T] (estimated from `key_covariance` over many prompts):
         W' = W + u delta^T,   u = C^-1 k* / (k* . C^-1 k*),   so that k* @ W' = k* @ W + delta.
The edit is a `WeightEdit` (rank one, stored as u and delta), applied for a `with` block.

    >>> cov = key_covariance(model, layer=0, tokens=facts.generate(512, seed=1).clean)
    >>> edit = rome_edit(model, request, cov, RomeConfig(layer=0))
    >>> with edit.applied(model):
    ...     model(request.prompts)  # now predicts the new attribute
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.editing.weights import WeightEdit
from interp.errors import InterpError
from interp.hooked import HookedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RomeConfig:
    """Settings of one ROME edit."""

    layer: int = 0
    """Block whose MLP output projection is edited (pick it by causal tracing)."""
    steps: int = 200
    """Most Adam steps spent finding the value delta (most edits of the zoo facts model need 5-30)."""
    lr: float = 1.0
    """Adam learning rate of the value delta, in units of the RMS of the MLP output at the key (so the
    search behaves alike whatever the scale of the residual stream)."""
    kl_weight: float = 0.1
    """Weight of KL(original || edited) on the request's `keep` prompts."""
    weight_decay: float = 1e-3
    """Penalty on |delta|^2 / |original MLP output|^2."""
    target_prob: float = 0.6
    """Stop once the new attribute has at least this probability (> 0.5: the argmax) on every edit prompt."""
    ridge: float = 3e-2
    """Covariance regulariser, as a fraction of its mean eigenvalue."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0 or not 0 < self.target_prob < 1 or self.ridge < 0:
            raise InterpError("RomeConfig: steps >= 1, lr > 0, 0 < target_prob < 1 and ridge >= 0 required")


@dataclass(frozen=True, eq=False)
class EditRequest:
    """What to make the model say: prompts stating the fact, where the subject ends and where the
    attribute is predicted, the new attribute's token id, and prompts whose outputs should not move."""

    prompts: Tensor  # [n, pos] token ids
    subject_last: Tensor  # [n] position of the subject's last token
    end: Tensor  # [n] position whose next-token prediction is the attribute
    target: int  # token id of the new attribute
    keep: Tensor | None = None  # [m, pos] prompts about the same subject (other relations)
    keep_subject_last: Tensor | None = None  # [m]
    keep_end: Tensor | None = None  # [m]


@dataclass(frozen=True, eq=False)
class RankOneEdit(WeightEdit):
    """W' = W + outer(left, right) on block `layer`'s MLP output projection."""

    layer: int
    left: Tensor  # [d_mlp]
    right: Tensor  # [d_model]

    def new_parameters(self, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return weight + torch.outer(self.left.to(weight), self.right.to(weight)), bias


def _rows(n: int, device: torch.device) -> Tensor:
    return torch.arange(n, device=device)


def key_covariance(model: HookedModel, layer: int, tokens: Tensor, chunk: int = 256) -> Tensor:
    """Second moment `E[k k^T]` (`[d_mlp, d_mlp]`) of `mlp.hook_post` keys at every position of `tokens`.

    Example:
        >>> cov = key_covariance(model, 0, interp.tasks.get("facts").generate(512, seed=1).clean)
    """
    hook = f"blocks.{layer}.mlp.hook_post"
    total, count = None, 0
    with torch.no_grad():
        for start in range(0, tokens.shape[0], chunk):
            _, cache = model.run_with_cache(tokens[start : start + chunk], names=[hook])
            keys = cache[hook].flatten(0, -2).double()  # [tokens, d_mlp]
            total = keys.T @ keys if total is None else total + keys.T @ keys
            count += keys.shape[0]
    if total is None:
        raise InterpError("key_covariance needs at least one prompt")
    return (total / count).float()


def subject_key(model: HookedModel, request: EditRequest, layer: int) -> Tensor:
    """k*: the MLP hidden state at the subject's last token, averaged over the edit prompts: [d_mlp]."""
    hook = f"blocks.{layer}.mlp.hook_post"
    with torch.no_grad():
        _, cache = model.run_with_cache(request.prompts, names=[hook])
    post = cache[hook]  # [n, pos, d_mlp]
    return post[_rows(post.shape[0], post.device), request.subject_last.to(post.device)].mean(0)


def _end_logprobs(logits: Tensor, end: Tensor) -> Tensor:
    """[batch, pos, vocab] -> [batch, vocab] log-probabilities at `end`."""
    return logits[_rows(logits.shape[0], logits.device), end.to(logits.device)].float().log_softmax(-1)


def edit_direction(key: Tensor, covariance: Tensor, ridge: float) -> Tensor:
    """u = C^-1 k* / (k* . C^-1 k*) [d_mlp] (step 3), with C regularised by `ridge` x its mean eigenvalue."""
    key, cov = key.double(), covariance.to(key.device).double()
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    solved = torch.linalg.solve(cov + ridge * cov.diagonal().mean() * eye, key)
    return (solved / (solved @ key)).float()


def _coefficients(model: HookedModel, tokens: Tensor, layer: int, left: Tensor) -> Tensor:
    """(k . u) at every position [batch, pos]: how much of delta the edit adds to each MLP output."""
    hook = f"blocks.{layer}.mlp.hook_post"
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names=[hook])
    return cache[hook] @ left.to(cache[hook])


def value_delta(
    model: HookedModel, request: EditRequest, left: Tensor, config: RomeConfig
) -> tuple[Tensor, dict[str, float]]:
    """The value change delta [d_model] of the edit W' = W + outer(left, delta) (step 2), and stats.

    The edit adds (k . left) delta to the MLP output at every position, k being that position's key
    (exactly 1 x delta at the subject's last token, where k = k*). Keys sit before the edited weights,
    so those coefficients are fixed, and delta is optimised through exactly what the edit will do.
    """
    hook = f"blocks.{config.layer}.hook_mlp_out"
    prompts = request.prompts
    coeff = _coefficients(model, prompts, config.layer, left)  # [n, pos]
    with torch.no_grad():
        _, cache = model.run_with_cache(prompts, names=[hook])
        orig = cache[hook][_rows(prompts.shape[0], prompts.device), request.subject_last.to(prompts.device)]
        scale = orig.pow(2).sum(-1).mean().clamp_min(1e-8)
        keep_ref = keep_coeff = None
        if request.keep is not None:
            keep_ref = _end_logprobs(model(request.keep), request.keep_end)
            keep_coeff = _coefficients(model, request.keep, config.layer, left)
    unit = orig.norm(dim=-1).mean() / model.cfg.d_model**0.5  # RMS of the MLP output at the key
    raw = torch.zeros(model.cfg.d_model, device=model.device, requires_grad=True)  # delta / unit
    optimiser = torch.optim.Adam([raw], lr=config.lr)
    target = torch.full((prompts.shape[0],), request.target, device=model.device)

    def add_delta(c: Tensor):  # act: [batch, pos, d_model]; c: [batch, pos]
        return lambda act, name: act + c[..., None].to(act.dtype) * (unit * raw).to(act.dtype)

    stats = {"steps": 0.0, "target_prob": 0.0}
    for step in range(config.steps + 1):
        with torch.enable_grad():
            with model.hooks({hook: add_delta(coeff)}):
                logp = _end_logprobs(model(prompts), request.end)  # [n, vocab]
            target_logp = logp.gather(1, target[:, None])[:, 0]
            p_min = float(target_logp.detach().exp().min())
            stats.update(steps=float(step), target_prob=p_min)
            if p_min >= config.target_prob or step == config.steps:
                break
            loss = -target_logp.mean() + config.weight_decay * (unit * raw).pow(2).sum() / scale
            if keep_ref is not None:
                with model.hooks({hook: add_delta(keep_coeff)}):
                    keep_logp = _end_logprobs(model(request.keep), request.keep_end)
                loss = loss + config.kl_weight * (keep_ref.exp() * (keep_ref - keep_logp)).sum(-1).mean()
            (grad,) = torch.autograd.grad(loss, [raw])
        optimiser.zero_grad()
        raw.grad = grad
        optimiser.step()
    logger.debug("ROME value: %d steps, p(target) %.3f", stats["steps"], stats["target_prob"])
    delta = (unit * raw).detach()
    return delta, stats


def rome_edit(
    model: HookedModel, request: EditRequest, covariance: Tensor, config: RomeConfig = RomeConfig()
) -> RankOneEdit:
    """The rank-one edit that writes `request` into block `config.layer`'s MLP (see the module docstring).

    Example:
        >>> edit = rome_edit(model, request, cov, RomeConfig(layer=0))
        >>> efficacy = (edit_logits_argmax == request.target)  # see circuits.editing.evaluate
    """
    left = edit_direction(subject_key(model, request, config.layer), covariance, config.ridge)  # [d_mlp]
    delta, _ = value_delta(model, request, left, config)
    return RankOneEdit(layer=config.layer, left=left, right=delta.float())
