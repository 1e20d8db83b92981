"""Attribution graphs (Ameisen et al. 2025, "Circuit Tracing: Revealing Computational Graphs in Language Models").

1. Trace the prompt once through the real model; record attention patterns, norm denominators, the
   transcoder features active at each position, and the error (what the transcoders miss) per layer
   and position (`ReplacementModel.trace`).
2. In the frozen model every feature is a source held at its activation, so each target -- a feature's
   pre-activation or an output logit -- is an affine function of the sources: token embeddings,
   feature activations and errors. The edge weight source -> target is the source's direct linear
   effect on the target through the frozen attention and norms: `a_s * <d target / d mlp_out, decoder_s>`.
3. Targets are processed in batches: the prompt is repeated along the batch axis, each row seeds the
   backward pass from one target, and one backward pass yields a full row of the adjacency matrix for
   every target in the batch (`batch_size` targets per forward+backward, never one pass per node).

`AttributionGraph.adjacency[target, source]` holds the weights. Nodes are ordered: active features
(by layer, position, index), error nodes (by layer, then position), token embeddings (by position),
then the chosen output logits. A logit node's value is the logit minus the mean logit over the
vocabulary (a shift shared by every token says nothing about which one is predicted).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from circuits.attribution.replacement import HookFn, ReplacementModel, Snapshot
from interp.errors import InterpError
from saes.transcoder_set import HOOK_IN, HOOK_OUT


@dataclass
class AttributionGraph:
    """Nodes and the dense adjacency matrix of one prompt's attribution graph."""

    tokens: list[int]
    str_tokens: list[str]
    n_layers: int
    features: Tensor  # [n_features, 3] long: (layer, pos, feature index)
    activations: Tensor  # [n_features] feature activations
    logit_tokens: list[int]
    logit_probs: Tensor  # [n_logits] model probabilities of the logit tokens (last position)
    logit_strs: list[str]
    adjacency: Tensor  # [n_nodes, n_nodes]: rows targets, columns sources
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_pos(self) -> int:
        return len(self.tokens)

    @property
    def n_features(self) -> int:
        return self.features.shape[0]

    @property
    def n_errors(self) -> int:
        return self.n_layers * self.n_pos

    @property
    def n_nodes(self) -> int:
        return self.n_features + self.n_errors + self.n_pos + len(self.logit_tokens)

    def slices(self) -> dict[str, slice]:
        """Index ranges of each node kind: features, errors, embeddings, logits."""
        f, e, t = self.n_features, self.n_errors, self.n_pos
        return {
            "features": slice(0, f),
            "errors": slice(f, f + e),
            "embeddings": slice(f + e, f + e + t),
            "logits": slice(f + e + t, self.n_nodes),
        }

    def error_index(self, layer: int, pos: int) -> int:
        return self.n_features + layer * self.n_pos + pos

    def embedding_index(self, pos: int) -> int:
        return self.n_features + self.n_errors + pos

    def feature_index(self, layer: int, pos: int, index: int) -> int:
        hit = ((self.features == torch.tensor([layer, pos, index])).all(-1)).nonzero()
        if len(hit) == 0:
            raise InterpError(f"feature {index} of layer {layer} is not active at position {pos}")
        return int(hit[0, 0])

    def node_kind(self, i: int) -> str:
        for kind, s in self.slices().items():
            if s.start <= i < s.stop:
                return kind
        raise IndexError(i)


def choose_logits(
    rm: ReplacementModel, snap: Snapshot, logits: list[int] | None, max_logits: int, logit_prob: float
) -> tuple[list[int], Tensor]:
    """The logit tokens to explain at the last position: `logits`, or the most likely ones until their
    cumulative probability reaches `logit_prob` (at most `max_logits`)."""
    probs = snap.logits[0, -1].float().softmax(-1)  # [vocab]
    vocab = probs.shape[0]
    if logits is not None:
        bad = [t for t in logits if not 0 <= int(t) < vocab]
        if bad or not logits:
            raise InterpError(
                f"logit token {bad[0] if bad else '(none)'} is not in the vocabulary (ids 0..{vocab - 1})"
            )
        chosen = [int(t) for t in logits]
    else:
        order = probs.argsort(descending=True)[:max_logits]
        cum = probs[order].cumsum(0)
        n = int((cum < logit_prob).sum()) + 1
        chosen = order[: min(n, max_logits)].tolist()
    return chosen, probs[chosen]


def attribute(
    rm: ReplacementModel,
    prompt: str | Tensor,
    *,
    logits: list[int] | None = None,
    max_logits: int = 10,
    logit_prob: float = 0.95,
    batch_size: int = 64,
    progress: bool = False,
) -> AttributionGraph:
    """The attribution graph of `prompt` over `rm`'s transcoders (see the module docstring).

    >>> graph = attribute(ReplacementModel(model, tset), "To be, or not to be")  # doctest: +SKIP
    >>> graph.adjacency.shape  # doctest: +SKIP
    """
    tokens = rm.tokens(prompt)
    snap = rm.trace(tokens)
    logit_tokens, logit_probs = choose_logits(rm, snap, logits, max_logits, logit_prob)
    feats = [
        torch.cat([torch.full((len(nz), 1), lyr), nz], 1)
        for lyr in range(rm.n_layers)
        for nz in [(snap.acts[lyr] != 0).nonzero().cpu()]
    ]
    features = torch.cat(feats).long()  # [n_features, 3]
    activations = (
        torch.stack([snap.acts[int(lyr)][p, i] for lyr, p, i in features.tolist()])
        if len(features)
        else torch.zeros(0)
    )
    tok = rm.model.tokenizer
    graph = AttributionGraph(
        tokens=tokens[0].tolist(),
        str_tokens=[tok.decode([t]) for t in tokens[0].tolist()]
        if tok
        else [str(t) for t in tokens[0].tolist()],
        n_layers=rm.n_layers,
        features=features,
        activations=activations.detach().float().cpu(),
        logit_tokens=logit_tokens,
        logit_probs=logit_probs.detach().float().cpu(),
        logit_strs=[tok.decode([t]) for t in logit_tokens] if tok else [str(t) for t in logit_tokens],
        adjacency=torch.zeros(0, 0),
    )
    graph.adjacency = _adjacency(rm, snap, graph, batch_size, progress)
    return graph


def _adjacency(
    rm: ReplacementModel, snap: Snapshot, graph: AttributionGraph, batch_size: int, progress: bool
) -> Tensor:
    n = graph.n_nodes
    adjacency = torch.zeros(n, n)
    targets = list(range(graph.n_features)) + list(range(graph.slices()["logits"].start, n))
    mlp_const = rm.mlp_sources(snap)  # layer -> [pos, d_model]
    decoders = {
        (src, dst): rm.tc.decoder(src, dst)
        for src in range(rm.n_layers)
        for dst in range(src, rm.n_layers)
        if rm.tc.decoder(src, dst) is not None
    }
    for start in tqdm(range(0, len(targets), batch_size), disable=not progress, desc="attribution"):
        rows = targets[start : start + batch_size]
        grads = _backward_rows(rm, snap, graph, rows, mlp_const)
        adjacency[rows] = _row_weights(snap, graph, grads, decoders).cpu()
    return adjacency


def _backward_rows(
    rm: ReplacementModel,
    snap: Snapshot,
    graph: AttributionGraph,
    rows: list[int],
    mlp_const: dict[int, Tensor],
) -> dict[str, Tensor]:
    """One batched forward+backward: d(target of each row)/d(embeddings, each layer's MLP output)."""
    batch = len(rows)
    embed = snap.embed[None].expand(batch, -1, -1).clone().requires_grad_(True)  # [batch, pos, d_model]
    mlp = {lyr: c[None].expand(batch, -1, -1).clone().requires_grad_(True) for lyr, c in mlp_const.items()}
    mids: dict[int, Tensor] = {}
    hooks: dict[str, HookFn] = {"blocks.0.hook_resid_pre": lambda x, name: embed.to(x.dtype)}
    for lyr in range(rm.n_layers):
        hooks[HOOK_IN.format(l=lyr)] = lambda x, name, lyr=lyr: mids.__setitem__(lyr, x)
        hooks[HOOK_OUT.format(l=lyr)] = lambda y, name, lyr=lyr: mlp[lyr].to(y.dtype)
    with torch.enable_grad(), rm.frozen(snap, hooks):
        out = rm.model(
            snap.tokens.expand(batch, -1), **_last_logits_only(rm.model)
        )  # [batch, pos or 1, vocab]
        objective = out.new_zeros(())
        logit_start = graph.slices()["logits"].start
        row_ids = torch.arange(batch, device=out.device)
        is_logit = torch.tensor([r >= logit_start for r in rows], device=out.device)
        if bool(is_logit.any()):
            toks = torch.tensor(
                [graph.logit_tokens[r - logit_start] for r in rows if r >= logit_start], device=out.device
            )
            last = out[row_ids[is_logit], -1]  # [n_logit_rows, vocab]
            objective = objective + (last.gather(1, toks[:, None]) - last.mean(-1, keepdim=True)).sum()
        feat_rows = [(b, r) for b, r in enumerate(rows) if r < logit_start]
        for lyr in range(rm.n_layers):
            sel = [(b, graph.features[r]) for b, r in feat_rows if int(graph.features[r, 0]) == lyr]
            if not sel:
                continue
            b_idx = torch.tensor([b for b, _ in sel], device=out.device)
            pos = torch.stack([f[1] for _, f in sel]).to(out.device)
            idx = torch.stack([f[2] for _, f in sel]).to(out.device)
            enc = rm.tc.encoder_directions(lyr)[:, idx].T  # [n_sel, d_model]
            objective = objective + (mids[lyr][b_idx, pos] * enc.to(mids[lyr].dtype)).sum()
        inputs = [embed] + [mlp[lyr] for lyr in range(rm.n_layers)]
        grads = torch.autograd.grad(objective, inputs, allow_unused=True)
    zero = torch.zeros_like(embed)
    out_grads = {"embed": grads[0] if grads[0] is not None else zero}
    for lyr in range(rm.n_layers):
        g = grads[lyr + 1]
        out_grads[f"mlp{lyr}"] = (g if g is not None else zero).detach()
    return out_grads


def _last_logits_only(model) -> dict[str, int]:
    """`logits_to_keep=1` when the model's forward takes it (only the last position's logits are targets)."""
    forward = type(model.hf_model).forward
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(forward).parameters else {}


def _row_weights(snap: Snapshot, graph: AttributionGraph, grads: dict[str, Tensor], decoders: dict) -> Tensor:
    """Adjacency rows [batch, n_nodes] from the gradients of one batch of targets."""
    batch = grads["embed"].shape[0]
    rows = grads["embed"].new_zeros(batch, graph.n_nodes)
    s = graph.slices()
    rows[:, s["embeddings"]] = (grads["embed"] * snap.embed).sum(-1)  # [batch, pos]
    err = [
        (grads[f"mlp{lyr}"] * snap.errors[lyr]).sum(-1) for lyr in range(graph.n_layers)
    ]  # each [batch, pos]
    rows[:, s["errors"]] = torch.cat(err, dim=1)
    for src in range(graph.n_layers):
        mask = graph.features[:, 0] == src
        if not bool(mask.any()):
            continue
        cols = mask.nonzero()[:, 0]
        pos, idx = graph.features[cols, 1], graph.features[cols, 2]
        total = rows.new_zeros(batch, len(cols))
        for dst in range(src, graph.n_layers):
            dec = decoders.get((src, dst))
            if dec is None:
                continue
            g = grads[f"mlp{dst}"][:, pos.to(rows.device)]  # [batch, n_src, d_model]
            total = total + torch.einsum("bnd,nd->bn", g, dec[idx].to(g.dtype))
        rows[:, cols] = total * graph.activations[cols].to(rows.device, rows.dtype)
    return rows
