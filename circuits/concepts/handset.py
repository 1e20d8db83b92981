"""A hand-set GPT-2 whose output depends on one concept through one known direction (a ground truth).

Construction (1 block, d_model 16, weights set by hand, no training):
  * Every token embedding is zero-mean across dims and orthogonal to the unit direction w, except
    the adjectives of `concept`: value v embeds as polarity(v) * scale * w + r (r shared, orthogonal to w).
    Position embeddings are zero.
  * Attention has zero query/key weights (uniform attention over the prefix) and value-output map
    w w^T: at `END` it adds (mean over positions of the LayerNormed w-component) * w, which only
    the concept's adjective contributes. The MLP is zero.
  * The label tokens unembed as -gain * w (negative), 0 (neutral), +gain * w (positive).
So `blocks.0.hook_resid_post` at `END` is e_END + alpha(v) w: every other concept, the wording and
the clause order leave the output untouched, and erasing span(w) and putting back a value's mean gives
the exact counterfactual output.

    >>> model, w = handset_model("food")
    >>> model(Concepts().sample(2).tokens)[:, -1, list(LABEL_IDS)].softmax(-1)
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import GPT2Config, GPT2LMHeadModel

from interp import HookedModel
from interp.tasks.concepts import ADJECTIVES, LABELS, POLARITY, TASK_VOCAB, TOKEN_ID, concept_index, tokenizer

D_MODEL = 16


def _zero_mean_orthogonal(x: Tensor, w: Tensor) -> Tensor:
    x = x - x.mean(-1, keepdim=True)
    return x - (x @ w)[..., None] * w


def handset_model(
    concept: str = "food", scale: float = 3.0, gain: float = 4.0, seed: int = 0
) -> tuple[HookedModel, Tensor]:
    """(model, w): a 1-block GPT-2 that reads only `concept`, linearly along the unit vector w [d_model].

    Example:
        >>> model, w = handset_model("food")
        >>> model.hook_names()[:2]
    """
    concept_index(concept)
    generator = torch.Generator().manual_seed(seed)
    d = D_MODEL
    config = GPT2Config(
        vocab_size=len(TASK_VOCAB), n_positions=32, n_embd=d, n_layer=1, n_head=1, n_inner=d,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
        bos_token_id=TOKEN_ID["<bos>"], eos_token_id=TOKEN_ID["<eos>"], pad_token_id=TOKEN_ID["<pad>"],
    )  # fmt: skip
    hf = GPT2LMHeadModel(config).eval()
    w = torch.zeros(d)
    w[0], w[1] = 2**-0.5, -(2**-0.5)  # unit, zero-mean
    emb = _zero_mean_orthogonal(torch.randn(len(TASK_VOCAB), d, generator=generator), w)
    shared = _zero_mean_orthogonal(torch.randn(d, generator=generator), w)
    for value, synonyms in enumerate(ADJECTIVES[concept]):
        for word in synonyms:
            emb[TOKEN_ID[word]] = POLARITY[concept][value] * scale * w + shared
    for label, sign in zip(LABELS, (-1.0, 0.0, 1.0), strict=True):
        emb[TOKEN_ID[label]] = sign * gain * w
    block = hf.transformer.h[0]
    with torch.no_grad():
        hf.transformer.wte.weight.copy_(emb)
        hf.transformer.wpe.weight.zero_()
        for p in block.parameters():
            p.zero_()
        for norm in (block.ln_1, block.ln_2, hf.transformer.ln_f):
            norm.weight.fill_(1.0)
        block.attn.c_attn.weight[:, 2 * d :] = torch.outer(w, w)  # value map w w^T (Conv1D: x @ W)
        block.attn.c_proj.weight.copy_(torch.eye(d))
    return HookedModel(hf, tokenizer()), w
