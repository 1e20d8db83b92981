"""TransformerLens-style conveniences mixed into `HookedModel`: `run_with_hooks`, `to_str_tokens`,
`generate` (with hooks active)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch

from interp.errors import InterpError


class HookName(str):
    """A hook name that also answers `.name`, so TransformerLens hook functions `fn(x, hook)` work."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return str(self)


def _pairs(hooks: Mapping | Iterable | None) -> list[tuple[str, Callable]]:
    if hooks is None:
        return []
    return list(hooks.items()) if isinstance(hooks, Mapping) else list(hooks)


def _named(fn: Callable) -> Callable:
    return lambda tensor, name: fn(tensor, HookName(name))


class TLCompat:
    """Mixed into `HookedModel`: needs `hooks`, `to_tokens`, `__call__`, `tokenizer`, `hf_model`."""

    def run_with_hooks(
        self,
        inputs: object,
        fwd_hooks: Mapping | Sequence[tuple[str, Callable]] = (),
        **kwargs: object,
    ) -> torch.Tensor:
        """Logits with `fwd_hooks` [(name or glob, fn(tensor, hook) -> tensor | None)] active for one
        forward (TransformerLens's signature; `hook.name` is the hook's name). Keyword arguments
        (`stop_at_layer`, `attention_mask`, ...) go to the forward."""
        with self.hooks([(name, _named(fn)) for name, fn in _pairs(fwd_hooks)]):
            return self(inputs, **kwargs)

    def to_str_tokens(self, inputs: str | Sequence[str] | torch.Tensor) -> list[str] | list[list[str]]:
        """Each token as text: a list for one text or a 1-d/one-row tensor, a list of lists for a batch
        (padding included)."""
        if self.tokenizer is None:
            raise InterpError("to_str_tokens needs a tokenizer: HookedModel(hf_model, tokenizer)")
        single = isinstance(inputs, str) or (isinstance(inputs, torch.Tensor) and inputs.ndim == 1)
        ids, _ = self.to_tokens(inputs)
        rows = [[self.tokenizer.decode([t]) for t in row] for row in ids.tolist()]
        return rows[0] if single else rows

    @torch.no_grad()
    def generate(
        self,
        inputs: str | Sequence[str] | torch.Tensor,
        max_new_tokens: int = 20,
        *,
        hooks: Mapping | Sequence[tuple[str, Callable]] | None = None,
        do_sample: bool = False,
        **generate_kwargs: object,
    ) -> torch.Tensor:
        """Token ids [batch, pos + new] from the model's own `generate` (greedy unless `do_sample`),
        with `hooks` {name: fn(tensor, name)} active at every step. With the key-value cache, each
        step's forward (and so each hook call) sees only the new position(s)."""
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise InterpError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        if not hasattr(self.hf_model, "generate") or self.hf_model.get_output_embeddings() is None:
            raise InterpError(f"{type(self.hf_model).__name__} has no LM head to generate with")
        padding_side = getattr(self.tokenizer, "padding_side", None)
        if padding_side is not None:
            self.tokenizer.padding_side = "left"  # generation continues from the last position of every row
        try:
            ids, mask = self.to_tokens(inputs)
        finally:
            if padding_side is not None:
                self.tokenizer.padding_side = padding_side
        if mask is None:
            mask = torch.ones_like(ids)
        pad = getattr(self.hf_model.generation_config, "pad_token_id", None)
        eos = getattr(self.hf_model.generation_config, "eos_token_id", None)
        generate_kwargs.setdefault("pad_token_id", pad if pad is not None else eos)
        with self.hooks(_pairs(hooks)):
            return self.hf_model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                **generate_kwargs,
            )
