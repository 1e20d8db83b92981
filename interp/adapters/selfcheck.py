"""The load-time check of a structurally matched model: one tiny probe forward.

A model matched to a family by its module tree (not by an exact table) might compute something the
table does not describe: a norm or multiplier on a sublayer's output, a residual added elsewhere. The
probe verifies, on a few token ids, that (1) caching every hook point leaves the logits bitwise
unchanged, (2) `hook_resid_pre + hook_attn_out + hook_mlp_out == hook_resid_post` in every block, and
(3) each block's `hook_resid_post` is the next block's `hook_resid_pre`, and (4) the architecture
description reproduces the activations from the weights (`interp.adapters.verify.weight_checks`:
q/k/v from the attention input, hook_z through W_O to hook_attn_out, the MLP likewise). On failure the model is
refused, naming the family and how to add a table. Attention patterns are checked apart: if the
pattern hooks never fire (the family computes its probabilities without the attention-function
interface) or an identity pattern hook changes the logits (extra terms such as attention sinks), the
model is kept but `attn.hook_pattern` is marked absent, saying why.
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
    from interp.adapters.verify import sums_to

    for layer in range(model.cfg.n_layers):
        parts = [cache[f"blocks.{layer}.{k}"] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out")]
        post = cache[f"blocks.{layer}.hook_resid_post"]
        if not sums_to(parts, post):
            return f"block {layer}: hook_resid_pre + hook_attn_out + hook_mlp_out != hook_resid_post"
        if layer + 1 < model.cfg.n_layers and not torch.equal(
            post, cache[f"blocks.{layer + 1}.hook_resid_pre"]
        ):
            return f"block {layer}'s output is not block {layer + 1}'s input"
    return None


def _pattern_problem(model: HookedModel) -> str | None:
    """None when every pattern hook fires and identity pattern hooks keep the logits, else why not."""
    names = [n for n in model.hook_names() if n.endswith("hook_pattern")]
    if not names:
        return None
    tokens = probe_tokens(model)
    plain = model(tokens)
    seen: set[str] = set()
    with model.hooks({n: (lambda t, name: seen.add(name)) for n in names}):
        hooked = model(tokens)
    if seen != set(names):
        return "its attention code computes the probabilities itself, out of reach of the pattern hook"
    from interp.adapters.verify import close

    eager = getattr(model.hf_model.config, "_attn_implementation", None) == "eager"
    if (eager and not torch.equal(hooked, plain)) or not close(hooked, plain):
        return "its attention adds terms (e.g. sinks) the eager pattern function does not reproduce"
    return None


def self_check(model: HookedModel) -> dict[str, str]:
    """Refuse (InterpError) a structurally matched model whose probe forward fails; returns the hook
    names to mark absent (name -> why) when only the attention pattern cannot be hooked exactly."""
    was_training = model.hf_model.training
    model.hf_model.eval()
    pattern_problem = None
    try:
        with torch.no_grad():
            try:
                failure = _failure(model)
                if failure is None:
                    from interp.adapters.verify import weight_checks

                    failure = "; ".join(weight_checks(model, probe_tokens(model))[:2]) or None
                pattern_problem = _pattern_problem(model) if failure is None else None
            except InterpError as err:
                failure = str(err)
            except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as err:
                failure = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
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
    if pattern_problem is None:
        return {}
    why = f"{model.cfg.family}-like {type(model.hf_model).__name__}: {pattern_problem}; no hook_pattern"
    return {n: why for n in model.hook_names() if n.endswith("hook_pattern")}
