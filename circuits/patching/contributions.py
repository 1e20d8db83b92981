"""Per-head attention contributions, split by source position (forward pass only).

What head h of layer l writes into the residual stream at a query position q is linear in what it
reads: out(l, h, q) = sum_s pattern[l, h, q, s] * W_O^h v[l, s, h]. Each term is the contribution
of source token s through head h (as in the attention-contribution analyses of the RAG mediation
paper and Ferrando et al. 2022). Algorithm:
  1. One forward pass caching `attn.hook_v` and `attn.hook_pattern` (and the final residual stream
     when projecting onto an output direction).
  2. For each layer, weight every source's value vector by its attention probability and pass each
     head's slice alone through the model's own output projection (the module that reads
     `attn.hook_z`), minus that projection's bias: a vector in d_model per (head, source).
  3. Score each vector by its L2 norm, or by its direct effect on an output `direction` (e.g. the
     unembedding of answer minus wrong answer) through the linearised final norm: the final norm's
     centring (LayerNorm) and weight, divided by its scale on the actual residual stream at q.

    >>> res = attention_contributions(model, batch.clean, query=batch.positions["END"])
    >>> res.values.shape  # [layer, head, source position], averaged over the batch
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from circuits.patching.runner import token_ids, token_labels
from circuits.patching.sites import check_layers
from circuits.results import LabelledArray
from interp.adapters.spec import Direct
from interp.errors import InterpError
from interp.hooked import HookedModel, Inputs


def output_projection(model: HookedModel, layer: int) -> nn.Module:
    """The module that maps concatenated head outputs (`attn.hook_z`) to d_model in block `layer`."""
    point = model.adapter.block_points.get("attn.hook_z")
    if not isinstance(point, Direct) or point.site.io != "in":
        raise InterpError(f"{model.cfg.family}: no per-head output projection to split contributions by head")
    return model.base_model.get_submodule(point.site.path.format(l=layer))


def _at(t: Tensor, query: int | Tensor, dim: int) -> Tensor:
    """Select the query position along `dim` (an int for all rows, or [batch] per example)."""
    if isinstance(query, int):
        return t.select(dim, query)
    index = query.to(t.device).long()
    moved = t.movedim(dim, 1)  # [batch, pos, ...]
    return moved[torch.arange(t.shape[0], device=t.device), index]


def head_source_vectors(
    model: HookedModel, v: Tensor, pattern: Tensor, layer: int, query: int | Tensor
) -> Tensor:
    """Contribution vectors [batch, head, source, d_model] of one layer at `query`.

    `v` [batch, pos, kv_head, d_head] and `pattern` [batch, head, q_pos, k_pos] from that layer.
    They sum over (head, source) to the layer's attention output at `query` minus the projection bias.
    """
    n_heads, d_head = model.cfg.n_heads, model.cfg.d_head
    v = v.repeat_interleave(n_heads // v.shape[2], dim=2)  # [batch, pos, head, d_head] (grouped-query)
    weights = _at(pattern, query, 2)  # [batch, head, k_pos]
    weighted = weights[..., None] * v.permute(0, 2, 1, 3)  # [batch, head, source, d_head]
    batch, _, n_src, _ = weighted.shape
    spread = weighted.new_zeros(batch, n_heads, n_src, n_heads, d_head)
    for h in range(n_heads):
        spread[:, h, :, h] = weighted[:, h]
    project = output_projection(model, layer)
    flat = spread.flatten(-2)  # [batch, head, source, head * d_head]
    return project(flat) - project(torch.zeros_like(flat[:1, :1, :1]))


def _final_norm_linear(model: HookedModel, resid: Tensor, direction: Tensor) -> tuple[Tensor, bool]:
    """The direction pulled back through the final norm, linearised at `resid` [batch, d_model]:
    (weight * direction) / scale, and whether to centre contributions first (LayerNorm)."""
    path = model.adapter.final_norm
    if path is None:
        raise InterpError(
            f"{model.cfg.family} has no final norm; score contributions by norm (direction=None)"
        )
    norm = model.base_model.get_submodule(path)
    weight = getattr(norm, "weight", None)
    eps = getattr(norm, "eps", getattr(norm, "variance_epsilon", 1e-5))
    centred = isinstance(norm, nn.LayerNorm)
    x = resid - resid.mean(-1, keepdim=True) if centred else resid
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()  # [batch, 1]
    pulled = direction * (weight if weight is not None else 1.0)
    return pulled / scale, centred


def attention_contributions(
    model: HookedModel,
    inputs: Inputs,
    query: int | Tensor = -1,
    *,
    direction: Tensor | None = None,
    layers: Sequence[int] | None = None,
    position_labels: Sequence[str] | None = None,
) -> LabelledArray:
    """How much each (layer, head, source position) contributes at `query`, averaged over the batch.

    `direction` None: the L2 norm of each contribution vector. A [d_model] or [batch, d_model]
    direction in the output space (e.g. `W_U[answer] - W_U[wrong]`): its direct effect along it.

    Example:
        >>> W_U = model.hf_model.get_output_embeddings().weight
        >>> dla = attention_contributions(model, batch.clean, batch.positions["END"],
        ...                               direction=W_U[batch.answer] - W_U[batch.wrong])
    """
    ids = token_ids(model, inputs)
    chosen = check_layers(model, layers)
    n_layers = model.cfg.n_layers
    names = [f"blocks.{x}.attn.{k}" for x in chosen for k in ("hook_v", "hook_pattern")]
    final = f"blocks.{n_layers - 1}.hook_resid_post"
    with torch.no_grad():
        _, cache = model.run_with_cache(ids, names=names + ([final] if direction is not None else []))
        pulled, centred = None, False
        if direction is not None:
            direction = direction.to(model.device, model.dtype)
            pulled, centred = _final_norm_linear(
                model, _at(cache[final], query, 1), direction
            )  # [batch, d_model]
        scores = []
        for x in chosen:
            vectors = head_source_vectors(
                model, cache[f"blocks.{x}.attn.hook_v"], cache[f"blocks.{x}.attn.hook_pattern"], x, query
            )
            if pulled is None:
                scores.append(vectors.norm(dim=-1).mean(0))  # [head, source]
            else:
                if centred:
                    vectors = vectors - vectors.mean(-1, keepdim=True)
                scores.append(
                    torch.einsum("bhsd,bd->hs", vectors, pulled.expand(vectors.shape[0], -1))
                    / vectors.shape[0]
                )
    labels = position_labels if position_labels is not None else token_labels(model, ids)
    meta = {
        "method": "attention_contributions",
        "scored_by": "norm" if direction is None else "direction",
        "query": query if isinstance(query, int) else query.tolist(),
    }
    name = "contribution norm" if direction is None else "direct effect along direction"
    return LabelledArray(
        torch.stack(scores),
        ("layer", "head", "source"),
        {"layer": tuple(str(x) for x in chosen), "source": tuple(labels)},
        name,
        meta,
    )
