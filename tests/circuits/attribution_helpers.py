"""Shared by the attribution tests: transcoder sets on shakespeare-tiny, and a hand-set model whose
feature paths are known."""

from __future__ import annotations

import torch
import transformers as T

import interp
from saes import SAEConfig, TrainConfig, build
from saes.transcoder_set import HOOK_IN, HOOK_OUT, TranscoderSet, train_transcoder_set

PROMPT = "To be, or not to be, that is the question"


def trained_set(
    model: interp.HookedModel, arch: str, cross_layer: bool, tokens: int = 15_000
) -> TranscoderSet:
    tc = TrainConfig(lr=3e-3, batch_size=256, total_tokens=tokens, progress=False)
    return train_transcoder_set(
        model,
        interp.data.shakespeare(),
        arch=arch,
        cross_layer=cross_layer,
        k=8,
        expansion=2,
        tokens=tokens,
        train_cfg=tc,
        model_name="shakespeare-tiny",
    )


# ---- a hand-set model with known feature paths ---------------------------------------------------
VOCAB, D_MODEL, N_TOKEN_FEATURES, N_LAYER1_FEATURES = 8, 24, 8, 4


def known_map(j: int) -> int:
    """Layer-0 feature j (fires on token j) writes the direction layer-1 feature known_map(j) reads."""
    return j // 2


def handset_model() -> interp.HookedModel:
    """A 2-layer GPT-2 whose residual dims 0..7 hold the token (one-hot), 8..11 the layer-0 features'
    outputs, and 16..23 whatever attention writes (attention is live but writes only there)."""
    torch.manual_seed(0)
    cfg = T.GPT2Config(
        n_layer=2, n_embd=D_MODEL, n_head=2, vocab_size=VOCAB, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    hf = T.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        hf.transformer.wte.weight.zero_()
        hf.transformer.wte.weight[:, :VOCAB] = torch.eye(VOCAB)
        hf.transformer.wpe.weight.zero_()
        for block in hf.transformer.h:
            block.attn.c_proj.weight[:, :16] = 0  # attention writes only to dims 16..23
            block.attn.c_proj.bias[:16] = 0
    return interp.HookedModel(hf)


def handset_transcoders() -> TranscoderSet:
    """Layer 0: feature j reads token j and writes dim 8 + known_map(j) (one active per token);
    layer 1: feature m reads dim 8 + m, with a large bias so every one is active everywhere (the real
    MLPs are random: what they add is the error nodes' business, not the features')."""
    layers = []
    for lyr, n in ((0, N_TOKEN_FEATURES), (1, N_LAYER1_FEATURES)):
        cfg = SAEConfig(
            "topk",
            d_in=D_MODEL,
            d_sae=n,
            k=1 if lyr == 0 else n,
            hook_in=HOOK_IN.format(l=lyr),
            hook_out=HOOK_OUT.format(l=lyr),
            normalize="none",
        )
        sae = build(cfg)
        with torch.no_grad():
            sae.W_enc.zero_()
            sae.W_dec.zero_()
            sae.b_dec.zero_()
            sae.b_enc.zero_()
            for f in range(n):
                if lyr == 0:
                    sae.W_enc[f, f] = 1.0
                    sae.W_dec[f, 8 + known_map(f)] = 1.0
                else:
                    sae.b_enc[f] = 10.0
                    sae.W_enc[8 + f, f] = 1.0
                    sae.W_dec[f, 16 + f] = 1.0
        layers.append(sae.eval())
    return TranscoderSet(layers=layers)
