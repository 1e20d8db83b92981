"""The load-time check of a structurally matched model: one tiny probe forward.

A model matched to a family by its module tree (not by an exact table) might compute something the
table does not describe: a norm or multiplier on a sublayer's output, a residual added elsewhere. The
probe verifies, on a few token ids, that (1) caching every hook point leaves the logits bitwise
unchanged, (2) `hook_resid_pre + hook_attn_out + hook_mlp_out == hook_resid_post` in every block, and
(3) each block's `hook_resid_post` is the next block's `hook_resid_pre`. On failure the model is
refused, naming the family and how to add a table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from interp.errors import InterpError

if TYPE_CHECKING:
    from interp.hooked import HookedModel

PROBE_LENGTH = 6


def probe_tokens(model: HookedModel) -> torch.Tensor:
    """A fixed [1, PROBE_LENGTH] row of valid, distinct-ish token ids."""
    vocab = model.cfg.d_vocab
    ids = [(7 + 13 * i) % vocab for i in range(PROBE_LENGTH)]
    return torch.tensor([ids], device=model.device)


def _failure(model: HookedModel) -> str | None:
    """None when the probe passes, else what failed."""
    tokens = probe_tokens(model)
    plain = model(tokens)
    names = [n for n in model.hook_names() if not n.endswith("hook_pattern")]  # patterns switch kernels
    logits, cache = model.run_with_cache(tokens, names=names)
    if not torch.equal(plain, logits):
        return "caching its hook points changed the logits"
    eps = torch.finfo(plain.dtype).eps if plain.dtype.is_floating_point else 1e-6
    for layer in range(model.cfg.n_layers):
        parts = [cache[f"blocks.{layer}.{k}"] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out")]
        post = cache[f"blocks.{layer}.hook_resid_post"]
        if parts[0].shape != post.shape or any(p.shape != post.shape for p in parts):
            return f"block {layer}: hook_attn_out/hook_mlp_out are not residual-stream shaped"
        scale = sum(p.abs() for p in parts).max().item() + 1.0
        error = (sum(parts) - post).abs().max().item()
        if not error <= 64 * eps * scale:
            return f"block {layer}: hook_resid_pre + hook_attn_out + hook_mlp_out != hook_resid_post (off by {error:.3g})"
        if layer + 1 < model.cfg.n_layers and not torch.equal(
            post, cache[f"blocks.{layer + 1}.hook_resid_pre"]
        ):
            return f"block {layer}'s output is not block {layer + 1}'s input"
    return None


def self_check(model: HookedModel) -> None:
    """Refuse (InterpError) a structurally matched model whose probe forward fails."""
    was_training = model.hf_model.training
    model.hf_model.eval()
    try:
        with torch.no_grad():
            try:
                failure = _failure(model)
            except InterpError as err:
                failure = str(err)
            except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as err:
                failure = f"{type(err).__name__}: {err}"
    finally:
        model.hf_model.train(was_training)
    if failure is not None:
        cfg = model.hf_model.config
        raise InterpError(
            f"{type(model.hf_model).__name__} (model_type={getattr(cfg, 'model_type', '?')!r}) matched the "
            f"{model.cfg.family} family by structure, but its self-check failed: {failure}. Its blocks "
            "compute something the table does not describe; add a table with "
            "interp.adapters.register(name, Architecture(...), model_types=(model_type,))"
        )
