"""A hand-set GPT-2 that computes hierarchical equality exactly, with its variables at known places.

Ground truth for testing interchange interventions and alignment search without any training.
Prompts are the task's `<bos> W X Y Z ?`. The weights implement, at the final position:

  1. layer 0, head 0 attends equally to positions 1 and 2 and copies the symbols: z = (e_W + e_X) / 2;
     head 1 does the same for positions 3 and 4 (so `left` lives in L0.H0's output, `right` in L0.H1's);
  2. MLP0 computes L = [W == X] and R = [Y == Z] (relu(4 z_i - 3) is 1 only when both halves agree)
     and writes them to two residual directions;
  3. layer 1's attention is switched off; MLP1 computes s = L + R and writes
     score = 2 relu(s - 1) + 2 relu(1 - s) - 1 (+1 when L == R, -1 otherwise);
  4. the unembedding reads logit(true) = 5 score, logit(false) = -5 score.

LayerNorm is made linear by a huge epsilon (1e8, weight 1e4), and every residual write sums to zero
(a "sink" dimension absorbs the mean), so each norm is exactly `x - mean(x) = x`. With
`rotate=True` the whole residual basis is turned by a random orthogonal map that fixes the all-ones
vector: the same function, but no variable sits on a coordinate axis any more (DAS must find it).

    >>> net = hierarchical_equality_network()
    >>> net.locations["left"]
    Location(hook='blocks.0.attn.hook_z', position='END', head=0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import GPT2Config, GPT2LMHeadModel

from circuits.abstraction.sites import Location
from interp.hooked import HookedModel
from interp.tasks import tokenizer as task_tokenizer
from interp.tasks.vocab import SYMBOLS, TOKEN_ID, VOCAB

D, HEADS, D_MLP, N_POS = 64, 2, 32, 16
SYM, POS, Z0, Z1, L, R, SCORE, SINK = 0, 10, 26, 36, 46, 47, 48, 63  # residual layout (first dims)
SHARP = 40.0  # attention score on the attended positions (others: 0)


@dataclass(frozen=True, eq=False)
class HandBuilt:
    """The network, where its variables are, and (for the residual stream) their directions."""

    model: HookedModel
    locations: dict[str, Location]
    directions: dict[str, Tensor]
    """Residual-stream direction [d_model] of `L` and `R` after MLP0 (`blocks.0.hook_resid_post`)."""


def _unit(i: int) -> Tensor:
    v = torch.zeros(D)
    v[i], v[SINK] = 1.0, -1.0
    return v


def _weights() -> dict[str, Tensor]:
    """Every parameter of the network in the unrotated basis (Conv1D layout: [in, out])."""
    w: dict[str, Tensor] = {}
    wte = torch.zeros(len(VOCAB), D)
    for j, s in enumerate(SYMBOLS):
        wte[TOKEN_ID[s]] = _unit(SYM + j)
    w["wte"] = wte
    w["wpe"] = torch.stack([_unit(POS + p) for p in range(N_POS)])
    d_head = D // HEADS
    attn, attn_b = torch.zeros(D, 3 * D), torch.zeros(3 * D)
    proj = torch.zeros(D, D)
    key_scale = SHARP * d_head**0.5
    for head, (p1, p2), out in ((0, (1, 2), Z0), (1, (3, 4), Z1)):
        q, k, v = head * d_head, D + head * d_head, 2 * D + head * d_head
        attn_b[q] = 1.0  # constant query: every position attends by key alone
        attn[POS + p1, k] = attn[POS + p2, k] = key_scale
        for j in range(len(SYMBOLS)):
            attn[SYM + j, v + j] = 1.0
            proj[head * d_head + j] = _unit(out + j)
    w["h.0.attn.c_attn.weight"], w["h.0.attn.c_attn.bias"], w["h.0.attn.c_proj.weight"] = attn, attn_b, proj
    fc, fc_b, out = torch.zeros(D, D_MLP), torch.zeros(D_MLP), torch.zeros(D_MLP, D)
    for j in range(len(SYMBOLS)):
        for unit, src, dst in ((j, Z0 + j, L), (10 + j, Z1 + j, R)):
            fc[src, unit], fc_b[unit] = 4.0, -3.0
            out[unit] = _unit(dst)
    w["h.0.mlp.c_fc.weight"], w["h.0.mlp.c_fc.bias"], w["h.0.mlp.c_proj.weight"] = fc, fc_b, out
    fc, fc_b, out, out_b = torch.zeros(D, D_MLP), torch.zeros(D_MLP), torch.zeros(D_MLP, D), torch.zeros(D)
    fc[L, 0] = fc[R, 0] = 1.0
    fc_b[0] = -1.0  # relu(s - 1)
    fc[L, 1] = fc[R, 1] = -1.0
    fc_b[1] = 1.0  # relu(1 - s)
    out[0] = out[1] = 2.0 * _unit(SCORE)
    out_b[:] = -_unit(SCORE)
    w["h.1.mlp.c_fc.weight"], w["h.1.mlp.c_fc.bias"] = fc, fc_b
    w["h.1.mlp.c_proj.weight"], w["h.1.mlp.c_proj.bias"] = out, out_b
    head = torch.zeros(len(VOCAB), D)
    head[TOKEN_ID["true"], SCORE], head[TOKEN_ID["false"], SCORE] = 5.0, -5.0
    w["lm_head"] = head
    return w


def _rotation(seed: int) -> Tensor:
    """A random orthogonal [D, D] map that sends the all-ones vector to itself (so means stay zero)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.cat([torch.ones(D, 1), torch.randn(D, D - 1, generator=g)], dim=1))
    inner, _ = torch.linalg.qr(torch.randn(D - 1, D - 1, generator=g))
    block = torch.eye(D)
    block[1:, 1:] = inner
    return basis @ block @ basis.T


def hierarchical_equality_network(rotate: bool = False, seed: int = 0) -> HandBuilt:
    """Build the network (see the module docstring); `rotate` turns the residual basis by a random map.

    Example:
        >>> net = hierarchical_equality_network(rotate=True)
        >>> iia(net.model, data, Alignment("left", net.locations["left"]))
        1.0
    """
    config = GPT2Config(
        vocab_size=len(VOCAB), n_positions=N_POS, n_embd=D, n_layer=2, n_head=HEADS, n_inner=D_MLP,
        activation_function="relu", layer_norm_epsilon=1e8, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        tie_word_embeddings=False, bos_token_id=TOKEN_ID["<bos>"], eos_token_id=TOKEN_ID["<eos>"],
        pad_token_id=TOKEN_ID["<pad>"],
    )  # fmt: skip
    hf = GPT2LMHeadModel(config)
    w = _weights()
    q = _rotation(seed) if rotate else torch.eye(D)
    with torch.no_grad():
        for p in hf.parameters():
            p.zero_()
        for _name, module in hf.named_modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1e4)
        t = hf.transformer
        t.wte.weight.copy_(w["wte"] @ q)
        t.wpe.weight.copy_(w["wpe"] @ q)
        for key, value in w.items():
            if not key.startswith("h."):
                continue
            param = t.get_parameter(key)
            reads_resid = key.endswith("c_attn.weight") or key.endswith("c_fc.weight")
            writes_resid = key.endswith("c_proj.weight") or key.endswith("c_proj.bias")
            param.copy_(q.T @ value if reads_resid else value @ q if writes_resid else value)
        hf.lm_head.weight.copy_(w["lm_head"] @ q)
    hf.eval()
    model = HookedModel(hf, task_tokenizer())
    locations = {
        "left": Location("blocks.0.attn.hook_z", "END", head=0),
        "right": Location("blocks.0.attn.hook_z", "END", head=1),
        "L": Location("blocks.0.hook_resid_post", "END"),
    }
    unit = torch.eye(D)
    return HandBuilt(model, locations, {"L": unit[L] @ q, "R": unit[R] @ q})
