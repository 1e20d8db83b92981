"""Evaluate an SAE on a model: reconstruction, sparsity, and what splicing it in does to the model.

Over the given token windows, in one sweep of forward passes:
1. record the SAE's input hook (and output hook, for transcoders); encode and decode;
   accumulate MSE, FVU (squared error / variance of the target), L0, and each latent's firing count;
2. splice the SAE in (`model.hooks` replaces the output hook's activation with the reconstruction) and
   zero-ablate the same hook, to get CE losses clean / spliced / ablated, the fraction of CE loss
   recovered, (CE_zero - CE_sae) / (CE_zero - CE_clean), and KL(clean || spliced) per token;
3. keep each latent's top-activating (window, position) pairs, and for the browsed latents the
   tokens their decoder direction promotes through the unembedding (direct effect, final norm ignored).

`report.write_report` turns the result into `eval.json`, a density histogram and an HTML browser.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.errors import InterpError
from interp.view.tokens import tokenizer_display
from saes.architectures import SparseAutoencoder

logger = logging.getLogger(__name__)


@dataclass
class FeatureCard:
    """What the browser shows for one latent."""

    index: int
    density: float
    max_activation: float
    contexts: list[dict[str, Any]] = field(default_factory=list)
    """Each: {"tokens": [str], "acts": [float], "position": int (index of the max token in `tokens`)}."""
    top_logits: list[tuple[str, float]] = field(default_factory=list)
    bottom_logits: list[tuple[str, float]] = field(default_factory=list)
    """The tokens the decoder direction suppresses most (most negative direct effect)."""
    mean_activation: float = 0.0
    """Mean activation over the tokens where the latent fires."""
    histogram: dict[str, list] | None = None
    """{"edges": [bins + 1 floats], "counts": [bins ints]} of the activations where it fires."""


@dataclass
class EvalResult:
    """Metrics (JSON-ready floats), per-latent density [d_sae], and cards of the browsed latents."""

    metrics: dict[str, float | None]
    density: Tensor
    features: list[FeatureCard]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the density histogram lives in the figure, not here)."""
        return {
            "metrics": self.metrics,
            "features": [
                {
                    "index": f.index,
                    "density": f.density,
                    "max_activation": f.max_activation,
                    "mean_activation": f.mean_activation,
                    "top_logits": f.top_logits,
                    "bottom_logits": f.bottom_logits,
                    "histogram": f.histogram,
                    "contexts": f.contexts,
                }
                for f in self.features
            ],
        }


class _Accumulator:
    """Running sums for the activation-level metrics."""

    def __init__(self, d_sae: int, n_contexts: int) -> None:
        self.sq_err = self.t_sum_sq = 0.0
        self.t_sum: Tensor | None = None
        self.n = self.active = 0
        self.fired = torch.zeros(d_sae, dtype=torch.float64)
        self.top_vals = torch.full((d_sae, n_contexts), -1.0)
        self.top_idx = torch.full((d_sae, n_contexts), -1, dtype=torch.long)

    def add(self, z: Tensor, recon: Tensor, target: Tensor, offset: int) -> None:
        """z [tokens, d_sae], recon/target [tokens, d_out]; `offset` is the flat index of row 0."""
        self.sq_err += float((recon - target).double().pow(2).sum())
        self.t_sum_sq += float(target.double().pow(2).sum())
        t_sum = target.double().sum(0)
        self.t_sum = t_sum if self.t_sum is None else self.t_sum + t_sum
        self.n += target.shape[0]
        self.active += int((z != 0).sum())
        self.fired += (z != 0).sum(0).double()
        k = min(self.top_vals.shape[1], z.shape[0])
        vals, idx = z.T.topk(k, dim=-1)  # [d_sae, k]
        all_vals = torch.cat([self.top_vals, vals.float()], 1)
        all_idx = torch.cat([self.top_idx, idx + offset], 1)
        best = all_vals.topk(self.top_vals.shape[1], dim=-1).indices
        self.top_vals, self.top_idx = all_vals.gather(1, best), all_idx.gather(1, best)

    def metrics(self, d_out: int, dense_threshold: float) -> dict[str, float]:
        variance = self.t_sum_sq - float(self.t_sum.pow(2).sum()) / self.n
        density = self.fired / self.n
        return {
            "mse": self.sq_err / (self.n * d_out),
            "fvu": self.sq_err / max(variance, 1e-30),
            "l0": self.active / self.n,
            "dead_fraction": float((density == 0).double().mean()),
            "dense_fraction": float((density > dense_threshold).double().mean()),
            "n_tokens": self.n,
        }


@torch.no_grad()
def evaluate(
    sae: SparseAutoencoder,
    model: Any,
    tokens: Tensor,
    *,
    batch_size: int = 8,
    n_browse: int = 16,
    n_contexts: int = 8,
    n_logits: int = 8,
    dense_threshold: float = 0.1,
) -> EvalResult:
    """Metrics of `sae` on `model` over token windows `tokens` [n, pos]; see the module docstring.

    Example:
        >>> result = saes.evaluate(sae, model, tokens)  # doctest: +SKIP
        >>> result.metrics["ce_loss_recovered"], result.metrics["l0"]  # doctest: +SKIP
    """
    cfg = sae.cfg
    if tokens.ndim != 2 or tokens.numel() == 0:
        raise InterpError(f"evaluate needs token windows [n, pos], got shape {tuple(tokens.shape)}")
    hooks = model.select([cfg.hook_in, cfg.out_hook]) if cfg.hook_in else []
    if not hooks:
        raise InterpError("the SAE config names no hook_in; set SAEConfig.hook_in to evaluate on a model")
    sae.eval()
    lm = not getattr(model.cfg, "is_encoder", False)
    acc = _Accumulator(cfg.d_sae, n_contexts)
    ce = {"clean": 0.0, "sae": 0.0, "zero": 0.0, "kl": 0.0}
    n_pred = 0
    for start in range(0, tokens.shape[0], batch_size):
        batch = tokens[start : start + batch_size]
        logits, cache = model.run_with_cache(batch, names=hooks)
        x, target = cache[cfg.hook_in], cache[cfg.out_hook]
        _check_width(x, cfg.d_in, cfg.hook_in)
        _check_width(target, cfg.out_dim, cfg.out_hook)
        z = sae.encode(x.reshape(-1, cfg.d_in).float())
        recon = sae.decode(z)
        acc.add(z.cpu(), recon.cpu(), target.reshape(-1, cfg.out_dim).float().cpu(), start * tokens.shape[1])
        if lm:
            spliced = _run_spliced(model, sae, batch, replace_with_zero=False)
            zeroed = _run_spliced(model, sae, batch, replace_with_zero=True)
            labels = batch[:, 1:].to(logits.device)
            for key, out in (("clean", logits), ("sae", spliced), ("zero", zeroed)):
                ce[key] += float(_ce(out, labels)) * labels.numel()
            ce["kl"] += float(_kl(logits, spliced)) * labels.numel()
            n_pred += labels.numel()
    metrics: dict[str, float | None] = acc.metrics(cfg.out_dim, dense_threshold)
    metrics.update(_ce_metrics(ce, n_pred))
    density = (acc.fired / acc.n).float()
    cards = _feature_cards(sae, model, tokens, acc, density, n_browse, n_logits)
    return EvalResult(metrics=metrics, density=density, features=cards)


def _run_spliced(model: Any, sae: SparseAutoencoder, batch: Tensor, replace_with_zero: bool) -> Tensor:
    cfg = sae.cfg
    captured: dict[str, Tensor] = {}

    def capture(act: Tensor, name: str) -> None:
        captured["x"] = act

    def replace(act: Tensor, name: str) -> Tensor:
        if replace_with_zero:
            return torch.zeros_like(act)
        x = captured.get("x", act) if cfg.is_transcoder else act
        return sae(x.reshape(-1, cfg.d_in).float()).reshape(act.shape).to(act.dtype)

    hooks = [(cfg.hook_in, capture)] if cfg.is_transcoder and not replace_with_zero else []
    with model.hooks([*hooks, (cfg.out_hook, replace)]):
        return model(batch)


def _ce(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten())


def _kl(clean: Tensor, other: Tensor) -> Tensor:
    p = clean[:, :-1].float().log_softmax(-1)
    q = other[:, :-1].float().log_softmax(-1)
    return (p.exp() * (p - q)).sum(-1).mean()


def _ce_metrics(ce: dict[str, float], n: int) -> dict[str, float | None]:
    if n == 0:
        return {
            k: None for k in ("ce_loss_clean", "ce_loss_sae", "ce_loss_zero", "ce_loss_recovered", "kl_div")
        }
    clean, with_sae, zero = ce["clean"] / n, ce["sae"] / n, ce["zero"] / n
    gap = zero - clean
    return {
        "ce_loss_clean": clean,
        "ce_loss_sae": with_sae,
        "ce_loss_zero": zero,
        "ce_loss_recovered": (zero - with_sae) / gap if abs(gap) > 1e-9 else None,
        "kl_div": ce["kl"] / n,
    }


def _check_width(act: Tensor, width: int, hook: str) -> None:
    got = act.reshape(act.shape[0], act.shape[1], -1).shape[-1]
    if got != width:
        raise InterpError(
            f"hook {hook} has width {got} (shape {tuple(act.shape)}), but the SAE expects {width}"
        )


def _token_strings(model: Any, ids: list[int]) -> list[str]:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return [f"<{i}>" for i in ids]
    return [tokenizer.decode([i]) for i in ids]


def _context_strings(model: Any, ids: list[int]) -> list[str]:
    """Tokens of a context as text pieces that join into the text (WordPiece, byte-level, SentencePiece)."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return [f"<{i}>" for i in ids]
    return tokenizer_display(tokenizer, ids)


def _histogram(values: Tensor, bins: int = 24) -> dict[str, list]:
    """Counts of the positive activations `values` [n] in `bins` equal bins from 0 to their max."""
    top = float(values.max()) if values.numel() else 0.0
    counts = torch.histc(values.float(), bins=bins, min=0.0, max=top) if top > 0 else torch.zeros(bins)
    return {"edges": [round(top * i / bins, 5) for i in range(bins + 1)], "counts": counts.int().tolist()}


def _feature_cards(
    sae: SparseAutoencoder,
    model: Any,
    tokens: Tensor,
    acc: _Accumulator,
    density: Tensor,
    n_browse: int,
    n_logits: int,
) -> list[FeatureCard]:
    """Cards for the `n_browse` most frequently firing live latents."""
    alive = (density > 0).nonzero().flatten()
    chosen = alive[density[alive].argsort(descending=True)][:n_browse].tolist()
    logits = _top_logits(sae, model, chosen, n_logits)
    suppressed = _top_logits(sae, model, chosen, n_logits, largest=False)
    pos_len = tokens.shape[1]
    hits = {
        f: [
            (v, *divmod(i, pos_len))
            for v, i in zip(acc.top_vals[f].tolist(), acc.top_idx[f].tolist(), strict=True)
            if v > 0 and i >= 0
        ]
        for f in chosen
    }
    acts = _latents(sae, model, tokens, chosen) if chosen else None  # [n, pos, n_chosen]
    cards = []
    for j, f in enumerate(chosen):
        fired = acts[..., j][acts[..., j] > 0]  # [n_fired]
        card = FeatureCard(
            index=f,
            density=float(density[f]),
            max_activation=float(acc.top_vals[f, 0]),
            top_logits=logits.get(f, []),
            bottom_logits=suppressed.get(f, []),
            mean_activation=float(fired.mean()) if fired.numel() else 0.0,
            histogram=_histogram(fired),
        )
        for _, seq, pos in hits[f]:
            lo = max(0, pos - 12)
            card.contexts.append(
                {
                    "tokens": _context_strings(model, tokens[seq, lo : pos + 4].tolist()),
                    "acts": [round(float(a), 4) for a in acts[seq, lo : pos + 4, j]],
                    "position": pos - lo,
                }
            )
        cards.append(card)
    return cards


def _latents(sae: SparseAutoencoder, model: Any, seqs: Tensor, features: list[int], batch: int = 8) -> Tensor:
    out = []
    for start in range(0, seqs.shape[0], batch):
        _, cache = model.run_with_cache(seqs[start : start + batch], names=[sae.cfg.hook_in])
        act = cache[sae.cfg.hook_in]
        out.append(sae.encode(act.reshape(act.shape[0], act.shape[1], -1).float())[..., features].cpu())
    return torch.cat(out)


def _top_logits(
    sae: SparseAutoencoder, model: Any, features: list[int], n: int, largest: bool = True
) -> dict[int, list]:
    head = getattr(getattr(model, "hf_model", None), "get_output_embeddings", lambda: None)()
    if head is None or not features or head.weight.shape[1] != sae.cfg.out_dim:
        return {}
    directions = sae.feature_directions()[features]  # [n_features, d_model]
    scores = directions.to(head.weight.dtype) @ head.weight.T  # [n_features, vocab]
    vals, idx = scores.topk(min(n, scores.shape[-1]), dim=-1, largest=largest)
    return {
        f: list(zip(_token_strings(model, row_idx), [round(v, 4) for v in row_vals], strict=True))
        for f, row_idx, row_vals in zip(features, idx.tolist(), vals.tolist(), strict=True)
    }
