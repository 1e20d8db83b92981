"""An eager attention function with a hook point on the attention probabilities.

SDPA and flash kernels never materialise the attention pattern, so `attn.hook_pattern` needs eager
attention. While a pattern hook is installed, the model's attention implementation is switched to
`PATTERN_IMPL` (this function, registered with transformers' AttentionInterface) and restored after.
It performs the same operations in the same order as transformers' own eager functions, so in
float32 its outputs are bitwise equal to `attn_implementation="eager"` (tested); in half precision
the softmax runs in float32 for every family (GPT-2 and BERT's eager code runs it in the input dtype).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

PATTERN_IMPL = "interp_eager"
# Attribute set on an attention module while pattern hooks are installed on it.
PATTERN_HOOKS_ATTR = "_interp_pattern_hooks"


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[batch, kv_head, pos, d_head] -> [batch, kv_head * n_rep, pos, d_head] (grouped-query attention)."""
    if n_rep == 1:
        return x
    batch, kv_heads, pos, d_head = x.shape
    return (
        x[:, :, None]
        .expand(batch, kv_heads, n_rep, pos, d_head)
        .reshape(batch, kv_heads * n_rep, pos, d_head)
    )


def pattern_attention(
    module: nn.Module,
    query: torch.Tensor,  # [batch, head, q_pos, d_head]
    key: torch.Tensor,  # [batch, kv_head, k_pos, d_head]
    value: torch.Tensor,  # [batch, kv_head, k_pos, d_head]
    attention_mask: torch.Tensor | None,  # additive, broadcastable to [batch, head, q_pos, k_pos]
    scaling: float | None = None,
    dropout: float = 0.0,
    softcap: float | None = None,
    **kwargs: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    n_rep = getattr(module, "num_key_value_groups", 1)
    key, value = _repeat_kv(key, n_rep), _repeat_kv(value, n_rep)

    # in place where the values are the same: each [batch, head, q_pos, k_pos] temporary costs a fresh
    # allocation (page faults) when the caller keeps the patterns alive
    scores = torch.matmul(query, key.transpose(2, 3)).mul_(scaling)  # [batch, head, q_pos, k_pos]
    if softcap is not None:
        scores = torch.tanh(scores.div_(softcap)) * softcap  # tanh's output is saved for backward
    if attention_mask is not None:
        scores = scores.add_(attention_mask)
    pattern = nn.functional.softmax(scores, dim=-1, dtype=torch.float32)
    if pattern.dtype != query.dtype:
        pattern = pattern.to(query.dtype)

    for hook in getattr(module, PATTERN_HOOKS_ATTR, ()):
        pattern = hook(pattern)

    # dropout and `.to` of the same dtype return their input unchanged; skipping the calls saves
    # their Python dispatch on every layer of every hooked forward
    if dropout and module.training:
        pattern = nn.functional.dropout(pattern, p=dropout, training=True)
    out = torch.matmul(pattern, value).transpose(1, 2).contiguous()  # [batch, q_pos, head, d_head]
    return out, pattern


def register() -> None:
    """Make `PATTERN_IMPL` a valid `attn_implementation` (idempotent; called when a pattern hook is installed)."""
    if PATTERN_IMPL not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionInterface.register(PATTERN_IMPL, pattern_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(PATTERN_IMPL, eager_mask)
