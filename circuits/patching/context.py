"""Context-length probing (Vasicek et al. 2023): how each prediction changes as its context is cut.

Black-box: forward passes only, no hooks. For a sequence x_0 .. x_{n-1} whose first token (usually
`<bos>`) always stays, the prediction of x_t from only the c tokens before it is
p(x_t | x_0, x_{t-c}, ..., x_{t-1}). Algorithm:
  1. For every start s = 1 .. n-1 build the truncated sequence x_0, x_s, ..., x_{n-1} (right-padded;
     causal attention makes the padding irrelevant). Its position i >= 1 predicts x_{s+i} from
     c = i tokens of context. The n-1 rows run as one batch (chunked); the empty context (c = 0) is
     the prediction after x_0 alone, shared by every row.
  2. `logprob[t, c]`: log-probability of the actual next token x_t with c tokens of context.
  3. `kl[t, c]`: KL(full-context distribution || c-token distribution) at target t.
  4. `importance[t, s]`: how much adding token x_s to the context raised log p(x_t): the
     differential importance of the paper, logprob[t, t-s] - logprob[t, t-s-1].
Entries that do not exist (c > t - 1, s >= t) are NaN. Batches are averaged.

    >>> probe = context_length_probing(model, "When Mary and John went to the store, John gave a drink to")
    >>> probe.importance.plot("importance.png")
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from circuits.patching.runner import token_ids, token_labels
from circuits.results import LabelledArray
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs


@dataclass(frozen=True)
class ContextProbing:
    """The three tables of context-length probing (see the module docstring)."""

    logprob: LabelledArray  # [target, context]
    kl: LabelledArray  # [target, context]
    importance: LabelledArray  # [target, source]


def _truncated(ids: Tensor) -> Tensor:
    """[n-1, batch, pos]: row s-1 holds x_0, x_s, ..., x_{n-1} then padding (x_0)."""
    batch, n = ids.shape
    rows = ids[:, :1].expand(batch, n)[None].repeat(n - 1, 1, 1)
    for s in range(1, n):
        rows[s - 1, :, 1 : n - s + 1] = ids[:, s:]
    return rows


def context_length_probing(model: HookedModel, inputs: Inputs, *, chunk: int = 64) -> ContextProbing:
    """Log-probabilities, KL to the full context and differential importance for every context length.

    Example:
        >>> probe = context_length_probing(model, batch.clean[:1])
        >>> probe.logprob.values.shape  # [target, context]: n-1 targets, context 0 .. n-2
    """
    ids = token_ids(model, inputs)
    batch, n = ids.shape
    if n < 3:
        raise InterpError(f"context-length probing needs at least 3 tokens, got {n}")
    rows = _truncated(ids).flatten(0, 1)  # [(n-1) * batch, pos]
    with torch.no_grad():
        logits = torch.cat([model(rows[i : i + chunk]).float() for i in range(0, rows.shape[0], chunk)])
    logp = logits.log_softmax(-1).unflatten(0, (n - 1, batch))  # [start - 1, batch, pos, vocab]
    vocab = logp.shape[-1]
    # dist[t, c]: [batch, vocab] log-distribution for target t with c tokens of context
    dist = torch.full((n, n - 1, batch, vocab), float("nan"))
    for t in range(1, n):
        dist[t, 0] = logp[0, :, 0]  # after x_0 alone
        for c in range(1, t):
            s = t - c
            dist[t, c] = logp[s - 1, :, c]
    targets = torch.arange(1, n)
    actual = ids.cpu()  # [batch, pos]
    logprob = torch.full((n - 1, n - 1), float("nan"))
    kl = torch.full((n - 1, n - 1), float("nan"))
    for t in targets.tolist():
        full = dist[t, t - 1]  # [batch, vocab]
        for c in range(t):
            logprob[t - 1, c] = dist[t, c].gather(1, actual[:, t : t + 1]).mean()
            kl[t - 1, c] = (full.exp() * (full - dist[t, c])).sum(-1).mean()
    importance = torch.full((n - 1, n), float("nan"))
    for t in targets.tolist():
        for s in range(1, t):
            importance[t - 1, s] = logprob[t - 1, t - s] - logprob[t - 1, t - s - 1]
    ticks = token_labels(model, ids)
    target_labels = ticks[1:]
    contexts = tuple(str(c) for c in range(n - 1))
    meta = {"method": "context_length_probing", "forward_passes": -(-rows.shape[0] // chunk), "batch": batch}
    by_context = {"target": target_labels, "context": contexts}
    return ContextProbing(
        logprob=LabelledArray(logprob, ("target", "context"), by_context, "log p(next token)", meta),
        kl=LabelledArray(kl, ("target", "context"), by_context, "KL(full context || cut context)", meta),
        importance=LabelledArray(
            importance,
            ("target", "source"),
            {"target": target_labels, "source": ticks},
            "differential importance (nats)",
            meta,
        ),
    )
