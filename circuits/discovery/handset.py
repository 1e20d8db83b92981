"""A transformer whose weights are set by hand to do induction, and its true circuit.

A `transformers.GPT2LMHeadModel` (2 blocks, 2 heads each, GELU MLPs, LayerNorms) on the task
vocabulary (`interp.tasks`), solving the `induction` task ("... A B ... A" -> "B") through a known
circuit. A token is a 2-hot *code* over C = 18 dimensions (each induction word its own pair of
dimensions, `<bos>` one, every other token one shared pair), so a dot product of codes is 2 for
the same token and at most 1 otherwise. The residual stream is a set of subspaces:

| subspace | written by | read by |
|---|---|---|
| TOK (current token code), POS (one-hot position) | `embed` | L0.H0, L0.H1, L1.H0 (q, v: TOK), L1.H1 (q, k: POS) |
| PREV (previous token code) | L0.H0, the previous-token head | L1.H0 (k: K-composition), L1.H1 (v) |
| J0, J1 (junk) | L0.H1 and L1.H1, distractors copying a code where nobody reads | -- |
| OUT | L1.H0, the induction head: attends where PREV == current token, copies that TOK | MLP1 |
| OUT2 | MLP1, a relay: one GELU unit per token fires when OUT holds its code and writes it back | logits |

Every write also subtracts its sum from a SINK dimension, so each position's vector has mean 0, and
two ANCHOR dimensions (+100, -100) dominate its norm, so every LayerNorm is the identity to within
0.2% (its gain undoes the anchor's scaling). MLP0 is all zeros. So the true circuit is

    embed -> L0.H0 -> L1.H0 -> MLP1 -> logits,  embed -> L1.H0

(`TRUE_CIRCUIT`); `L1.H0 -> logits`, `L0.H0 -> L1.H1` and the junk heads carry information
nowhere. The induction head's attention logit is `beta` per shared code dimension (a match scores
2 beta): the default 4 keeps softmax gradients alive; `build(beta=15)` saturates the attention,
where first-order methods (EAP) lose the key path and integrated gradients recover it.
Use the `resample` ablation (`ABLATION`): the task's own corruption changes only the token B (so
only the induction head's value path would show), another example's activations change every path.

    >>> model = load()                         # HookedModel with the task tokenizer
    >>> data = induction_data(32, seed=0)
    >>> scores = discover(model, data, "eap", ablation="resample")
    >>> edge_auroc(scores, TRUE_CIRCUIT)       # 1.0
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from circuits.discovery.data import CircuitData
from circuits.graph import Circuit, Edge
from interp import HookedModel
from interp.io import atomic_write_text
from interp.tasks import get as get_task
from interp.tasks import tokenizer as task_tokenizer
from interp.tasks.vocab import BOS_ID, EOS_ID, INDUCTION_POOL, PAD_ID, TOKEN_ID, VOCAB

NAME = "handset-induction"
ABLATION = "resample"
N_CTX = 32
ANCHOR = 100.0  # the +/- anchor that makes LayerNorm a fixed scaling
BETA = 4.0  # induction head: attention logit per shared code dimension (a match scores 2 * BETA)
BETA_POS = 30.0  # positional heads: attention logit of the attended position
GAIN = 20.0  # MLP1 relay unit of token s: GELU(GAIN * (code_s . OUT) - 1.5 * GAIN)
ALPHA = 5.0  # logit per shared code dimension with OUT2 (the answer gets 2 * ALPHA)
LENGTH = 20  # words per induction prompt

_WORDS = tuple(dict.fromkeys(INDUCTION_POOL))
N_SLOTS = 2 + len(_WORDS)  # other, <bos>, words
C = 18  # code width: C choose 2 = 153 >= N_SLOTS distinct pairs
CODES = torch.zeros(N_SLOTS, C)
"""[slot, C] the 2-hot code of each slot."""
for _s, (_a, _b) in enumerate(itertools.islice(itertools.combinations(range(C), 2), N_SLOTS)):
    CODES[_s, _a] = CODES[_s, _b] = 1.0
TOK, POS = 0, C  # start of each subspace in the residual stream
PREV, J0, OUT, J1, OUT2 = (C + N_CTX + i * C for i in range(5))
SINK = 6 * C + N_CTX
D_MODEL = (SINK + 3 + 1) // 2 * 2  # + two anchor dims, rounded up to split into 2 heads
D_HEAD = D_MODEL // 2

TRUE_EDGES = (
    ("embed", "L0.H0"),
    ("embed", "L1.H0"),
    ("L0.H0", "L1.H0"),
    ("L1.H0", "MLP1"),
    ("MLP1", "logits"),
)
TRUE_CIRCUIT = Circuit.from_edges(TRUE_EDGES, metadata={"model": NAME, "kind": "ground truth"})
TRUE_QKV_EDGES = tuple(
    Edge.of(*e)
    for e in (
        ("embed", "L0.H0", "v"),
        ("embed", "L1.H0", "q"),
        ("embed", "L1.H0", "v"),
        ("L0.H0", "L1.H0", "k"),
        ("L1.H0", "MLP1"),
        ("MLP1", "logits"),
    )
)
"""The true edges with separate q/k/v inputs, those that carry token information (L0.H0 also reads
positions through q and k, which no token-level corruption can change)."""


def slot(token_id: int) -> int:
    """The code slot of a token id: 1 for `<bos>`, 2.. for induction words, 0 for anything else."""
    if token_id == BOS_ID:
        return 1
    return _SLOT.get(token_id, 0)


_SLOT = {TOKEN_ID[w]: 2 + i for i, w in enumerate(_WORDS)}


def build(beta: float = BETA) -> GPT2LMHeadModel:
    """The hand-set `GPT2LMHeadModel` (eval mode, float32); `beta` sets the induction head's sharpness."""
    config = GPT2Config(
        vocab_size=len(VOCAB),
        n_positions=N_CTX,
        n_embd=D_MODEL,
        n_layer=2,
        n_head=2,
        n_inner=N_SLOTS,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        scale_attn_weights=False,
        tie_word_embeddings=False,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
    )
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        _set(model, beta)
    return model.eval()


def _set(model: GPT2LMHeadModel, beta: float) -> None:
    t = model.transformer
    codes = CODES[torch.tensor([slot(i) for i in range(len(VOCAB))])]  # [vocab, C]
    t.wte.weight[:, TOK : TOK + C] = codes
    t.wte.weight[:, SINK] = -2.0
    t.wpe.weight[:, POS : POS + N_CTX] = torch.eye(N_CTX)
    t.wpe.weight[:, SINK] = -1.0
    t.wpe.weight[:, SINK + 1], t.wpe.weight[:, SINK + 2] = ANCHOR, -ANCHOR
    gain = (2 * ANCHOR**2 / D_MODEL) ** 0.5  # LayerNorm divides by ~ this; multiply it back
    for norm in (t.ln_f, *(n for b in t.h for n in (b.ln_1, b.ln_2))):
        norm.weight.fill_(gain)
    eye_c, p = torch.eye(C), torch.arange(N_CTX)
    shift = torch.zeros(N_CTX, N_CTX)
    shift[p[1:], p[:-1]] = 1.0  # position i queries key i - 1
    # block 0: head 0 = previous token (value TOK -> PREV); head 1 = self (TOK -> J0)
    _head(t.h[0], 0, q=(POS, BETA_POS * shift), k=(POS, torch.eye(N_CTX)), v=(TOK, eye_c), out=PREV)
    _head(t.h[0], 1, q=(POS, BETA_POS * torch.eye(N_CTX)), k=(POS, torch.eye(N_CTX)), v=(TOK, eye_c), out=J0)
    # block 1: head 0 = induction (query TOK, key PREV; value TOK -> OUT); head 1 = self (PREV -> J1)
    _head(t.h[1], 0, q=(TOK, beta * eye_c), k=(PREV, eye_c), v=(TOK, eye_c), out=OUT)
    _head(t.h[1], 1, q=(POS, BETA_POS * torch.eye(N_CTX)), k=(POS, torch.eye(N_CTX)), v=(PREV, eye_c), out=J1)
    mlp = t.h[1].mlp  # relay OUT -> OUT2, one unit per slot
    mlp.c_fc.weight[OUT : OUT + C] = GAIN * CODES.T
    mlp.c_fc.bias[:] = -1.5 * GAIN
    mlp.c_proj.weight[:, OUT2 : OUT2 + C] = CODES / (GAIN / 2)
    mlp.c_proj.weight[:, SINK] = -2 / (GAIN / 2)
    model.lm_head.weight[:, OUT2 : OUT2 + C] = ALPHA * codes


def _head(block, head: int, q, k, v, out: int) -> None:
    """Set one head: q, k, v are (residual start, [rows, d_head cols] block) read from the residual
    stream; the value's columns are written to `out` (minus their sum to SINK)."""
    w = block.attn.c_attn.weight  # Conv1D [d_model, 3 * d_model]: columns [q | k | v], each heads x d_head
    base = head * D_HEAD
    for i, (start, block_w) in enumerate((q, k, v)):
        rows, cols = block_w.shape
        w[start : start + rows, i * D_MODEL + base : i * D_MODEL + base + cols] = block_w
    width = v[1].shape[1]
    proj = block.attn.c_proj.weight  # Conv1D [head * d_head, d_model]
    proj[base : base + width, out : out + width] = torch.eye(width)
    proj[base : base + width, SINK] = -1.0


def load() -> HookedModel:
    """The hand-set model, wrapped, with the task tokenizer."""
    return HookedModel(build(), task_tokenizer())


def card() -> dict:
    """A model card in the zoo's shape, with the true circuit inline under `circuit`."""
    return {
        "name": NAME,
        "description": "2-block GPT-2 with hand-set weights implementing induction (previous-token head -> "
        "induction head by K-composition -> MLP relay); see circuits.discovery.handset",
        "tasks": {"induction": {"length": LENGTH}},
        "circuit": {
            "nodes": sorted({n for e in TRUE_EDGES for n in e}),
            "edges": [list(e) for e in TRUE_EDGES],
        },
        "ablation": ABLATION,
    }


def induction_data(n: int = 32, seed: int = 0) -> CircuitData:
    """`n` induction prompts of `LENGTH` words as `CircuitData` (logit difference of B over the
    task's contrast word)."""
    return CircuitData.from_task(get_task("induction", length=LENGTH).generate(n, seed=seed))


def save(folder: str | Path) -> Path:
    """Write the model, tokenizer and `card.json` to `folder` (loadable by `interp.load(folder)`)."""
    folder = Path(folder)
    build().save_pretrained(folder)
    task_tokenizer().save_pretrained(str(folder))
    atomic_write_text(folder / "card.json", json.dumps(card(), indent=2))
    return folder
