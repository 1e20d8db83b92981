"""The text LM recipe: a byte-level BPE tokenizer and a tiny GPT-2 trained on the shipped corpus.

1. Train a byte-level BPE tokenizer (`recipe.vocab_size` tokens, `<|endoftext|>` the only special
   token, prepended to every encoded text as BOS) on the training split.
2. Encode each split into one token stream, every passage preceded by `<|endoftext|>`.
3. Train on random windows `[<|endoftext|>] + stream[i : i + n_ctx - 1]` (every position supervised).
4. Validation loss: mean next-token cross-entropy (nats) over consecutive windows of the
   validation stream, built the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from torch import Tensor
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from interp.data import shakespeare
from interp.zoo.recipes import Recipe
from interp.zoo.train import build_model, fit, lm_loss

EOT = "<|endoftext|>"


def train_bpe(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `texts` (deterministic for the same texts).

    Example:
        >>> tok = train_bpe(list(shakespeare()["text"]), 2048)
        >>> tok.decode(tok("To be, or not to be").input_ids, skip_special_tokens=True)
        'To be, or not to be'
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    eot = tok.token_to_id(EOT)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{EOT} $A", pair=f"{EOT} $A $B", special_tokens=[(EOT, eot)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        model_max_length=1024,
    )


def token_stream(tok: PreTrainedTokenizerFast, texts: list[str]) -> Tensor:
    """[tokens] long: every text encoded with its leading `<|endoftext|>`, concatenated."""
    ids = tok(texts).input_ids
    return torch.tensor([t for row in ids for t in row], dtype=torch.long)


def windows(stream: Tensor, n_ctx: int, starts: np.ndarray, bos: int) -> Tensor:
    """[len(starts), n_ctx]: `bos` followed by `n_ctx - 1` stream tokens from each start."""
    idx = torch.from_numpy(starts)[:, None] + torch.arange(n_ctx - 1)  # [batch, n_ctx - 1]
    return torch.cat([torch.full((len(starts), 1), bos), stream[idx]], dim=1)


def validation_loss(
    model: GPT2LMHeadModel, tok: PreTrainedTokenizerFast, n_ctx: int, batch: int = 32
) -> dict[str, float]:
    """Mean next-token loss (nats/token) of `model` on the validation split, and the tokens scored."""
    stream = token_stream(tok, list(shakespeare("validation")["text"]))
    starts = np.arange(0, len(stream) - n_ctx, n_ctx - 1)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            ids = windows(stream, n_ctx, starts[i : i + batch], tok.bos_token_id)  # [batch, n_ctx]
            labels = torch.cat([ids[:, 1:], torch.full((ids.shape[0], 1), -100)], dim=1)
            total += lm_loss(model, ids, labels).item() * ids.shape[0] * (n_ctx - 1)
            count += ids.shape[0] * (n_ctx - 1)
    return {"val_loss": total / count, "val_tokens": count}


def train_text_lm(
    r: Recipe, seed: int, progress: bool = True
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast, dict[str, float]]:
    """Tokenizer, model and stats (`train_seconds`, `final_loss`, `val_loss`, ...) for recipe `r`."""
    train_texts = list(shakespeare("train")["text"])
    tok = train_bpe(train_texts, r.vocab_size)
    stream = token_stream(tok, train_texts)
    bos = tok.bos_token_id

    def batches(rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        starts = rng.integers(0, len(stream) - r.n_ctx, size=r.batch_size)
        ids = windows(stream, r.n_ctx, starts, bos)  # [batch, n_ctx]
        labels = torch.cat([ids[:, 1:], torch.full((ids.shape[0], 1), -100)], dim=1)
        return ids, labels

    torch.manual_seed(seed)
    model = build_model(r, len(tok), bos=bos, eos=bos, pad=None)
    stats = fit(model, batches, r, seed, progress)
    stats |= validation_loss(model, tok, r.n_ctx)
    stats["train_tokens"] = r.steps * r.batch_size * (r.n_ctx - 1)
    stats["corpus_tokens"] = len(stream)
    return model, tok, stats
