"""Every transformers detail that prefix reuse (`circuits.patching.prefix`) relies on, in one place.

Prefix reuse feeds a model only the suffix of its input, with the target run's keys and values for the
prefix as the model's own key-value cache, and makes the blocks below the first patched layer pass
their input through. That needs, beyond the public forward:

- the name of the forward's key-value-cache argument (`cache` in transformers 5.x; the older
  `past_key_values` is deprecated from 5.40) and of the output field that returns it;
- the per-layer keys and values of a returned `DynamicCache` (`cache.layers[i].keys / .values`);
- a `DynamicCache` built from given keys and values (`DynamicCache(config=...)` + `update`);
- blocks whose output is a bare tensor, so an instance `forward` override can pass one through.

`usable(model)` checks all of it once per model class, by running the prefix path on a short input and
comparing with a plain forward; when anything is missing or differs, prefix reuse is switched off and
the sweep runs every patched copy in full (the reference path), with a log line saying why.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)


@functools.cache
def cache_argument(model_class: type) -> str | None:
    """The forward's key-value-cache argument: `cache`, `past_key_values`, or None (no cache)."""
    params = inspect.signature(model_class.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def returned_cache(out: Any) -> Any:
    """The key-value cache a forward with `use_cache=True` returned."""
    for name in ("cache", "past_key_values"):
        found = out.get(name) if hasattr(out, "get") else getattr(out, name, None)
        if found is not None:
            return found
    raise AttributeError("the model returned no key-value cache")


def keys_values(cache: Any) -> list[tuple[Tensor, Tensor]]:
    """Per layer (keys, values), each [batch, kv_head, pos, d_head]."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def build_cache(layers: Sequence[tuple[Tensor, Tensor]], config: Any) -> Any:
    """A `DynamicCache` holding the given per-layer keys and values."""
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    for i, (k, v) in enumerate(layers):
        cache.update(k, v, i)
    return cache


def cache_kwargs(model_class: type, cache: Any) -> dict[str, Any]:
    """Keyword arguments that pass `cache` to the forward of `model_class`."""
    name = cache_argument(model_class)
    if name is None:
        raise TypeError(f"{model_class.__name__}.forward takes no key-value cache")
    return {name: cache, "use_cache": cache is not None}


@contextlib.contextmanager
def skipped(blocks: Sequence[nn.Module], n_skip: int) -> Iterator[None]:
    """Blocks 0..n_skip-1 return their input unchanged (an instance `forward` override, undone after)."""
    for block in blocks[:n_skip]:
        block.forward = _pass_through
    try:
        yield
    finally:
        for block in blocks[:n_skip]:
            del block.forward


def _pass_through(hidden_states: Tensor, *args: object, **kwargs: object) -> Tensor:
    return hidden_states


def usable(model: Any) -> bool:
    """Whether prefix reuse works on this model class (checked once per class; see the module doc)."""
    return _probe(type(model.hf_model), model)


_probed: dict[type, bool] = {}


def _probe(model_class: type, model: Any) -> bool:
    if model_class in _probed:
        return _probed[model_class]
    try:
        ok, why = _check(model)
    except Exception as exc:  # any failure of the internals means: not usable
        ok, why = False, f"{type(exc).__name__}: {exc}"
    if not ok:
        logger.info("prefix reuse is off for %s (%s); patched runs go in full", model_class.__name__, why)
    _probed[model_class] = ok
    return ok


def _check(model: Any) -> tuple[bool, str]:
    hf = model.hf_model
    if cache_argument(type(hf)) is None:
        return False, "its forward takes no key-value cache"
    vocab = int(model.cfg.d_vocab)
    ids = torch.arange(6, device=model.device)[None] % vocab  # [1, 6]
    blocks = model.module(model.adapter.layers)
    outputs: list[object] = []
    probe = blocks[0].register_forward_hook(lambda module, args, out: outputs.append(out))
    try:
        with torch.no_grad():
            full = hf(input_ids=ids, use_cache=True)
    finally:
        probe.remove()
    if not isinstance(outputs[0], Tensor):
        return False, "its blocks return tuples, so they cannot be passed through"
    layers = keys_values(returned_cache(full))
    cache = build_cache([(k[:, :, :3], v[:, :, :3]) for k, v in layers], hf.config)
    with torch.no_grad():
        suffix = hf(input_ids=ids[:, 3:], **cache_kwargs(type(hf), cache))
    logits = getattr(full, "logits", None)
    logits = logits if logits is not None else full.last_hidden_state
    got = getattr(suffix, "logits", None)
    got = got if got is not None else suffix.last_hidden_state
    tol = 1e-4 if logits.dtype == torch.float32 else 2e-2
    if not torch.allclose(got.float(), logits[:, 3:].float(), rtol=tol * 10, atol=tol):
        return False, "a run from a rebuilt key-value cache differs from the plain forward"
    return True, ""
