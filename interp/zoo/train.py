"""Training loop shared by all zoo recipes: a tiny GPT-2, AdamW, warm-up + cosine, fixed steps.

Everything is seeded (model init via `torch.manual_seed`, data via a numpy generator), runs on CPU
with 2 threads, and has no dropout, so a recipe and a seed give the same model on the same machine.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel

from interp.tasks import get
from interp.tasks.vocab import BOS_ID, EOS_ID, PAD_ID, VOCAB
from interp.zoo.recipes import Recipe

log = logging.getLogger(__name__)

BatchFn = Callable[[np.random.Generator], tuple[Tensor, Tensor]]  # -> (ids, labels) [batch, pos]


@contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with `torch.set_num_threads(n)`, restoring the previous value after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_model(
    r: Recipe, vocab_size: int, bos: int = BOS_ID, eos: int = EOS_ID, pad: int | None = PAD_ID
) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 with the recipe's shape (no dropout, tied embeddings)."""
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=r.n_ctx,
        n_embd=r.d_model,
        n_layer=r.n_layer,
        n_head=r.n_head,
        n_inner=r.d_mlp,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=True,
        initializer_range=r.init_std,
    )
    return GPT2LMHeadModel(config)


def _lr_at(step: int, r: Recipe) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    progress = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(model: GPT2LMHeadModel, r: Recipe) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": r.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=r.lr, betas=(0.9, 0.98))


def lm_loss(model: GPT2LMHeadModel, ids: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of `labels` [batch, pos] (-100 = ignore) given `ids` [batch, pos]."""
    logits = model(ids).logits  # [batch, pos, vocab]
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def fit(
    model: GPT2LMHeadModel, batches: BatchFn, r: Recipe, seed: int, progress: bool = True
) -> dict[str, float]:
    """Train `model` in place for `r.steps` steps; returns `train_seconds` and `final_loss`."""
    rng = np.random.default_rng([seed, 1])
    opt = _optimizer(model, r)
    model.train()
    start, ema = time.perf_counter(), float("nan")
    bar = tqdm(range(r.steps), desc=r.name, disable=not progress, leave=False)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, r)
        ids, labels = batches(rng)
        loss = lm_loss(model, ids, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if math.isnan(ema) else 0.95 * ema + 0.05 * loss.item()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{ema:.4f}")
            log.debug("%s step %d loss %.4f", r.name, step, ema)
    model.eval()
    return {"train_seconds": time.perf_counter() - start, "final_loss": ema}


def train_task_model(r: Recipe, seed: int, progress: bool = True) -> tuple[GPT2LMHeadModel, dict[str, float]]:
    """Initialise and train the task model of recipe `r` (seeded); returns (model, fit stats)."""
    torch.manual_seed(seed)
    model = build_model(r, len(VOCAB))
    task = get(r.task, **dict(r.task_config))
    stats = fit(model, lambda rng: task.training_batch(r.batch_size, rng), r, seed, progress)
    return model, stats
