"""`ActivationStore`: stream a hooked model's activations over a `datasets.Dataset` for SAE training.

How a pass works:
1. Documents (a text column, tokenised with the model's tokenizer, or a column of token ids) are joined
   into one token stream (separated by EOS when the tokenizer has one) and cut into `context_len` windows;
   `model_batch_size` windows make one chunk.
2. Each chunk runs through the model once, stopping after the last block any requested hook lives in
   (no later blocks, no unembedding); every requested hook is recorded in that forward and flattened to
   [batch * pos, width] (`attn.hook_z` heads concatenated), on the model's device.
3. Activations go through a shuffle buffer (seeded: every pass yields the same batches) and leave as
   `dict[hook name -> Tensor[batch_size, width]]`, the same rows for every hook, so a transcoder's input
   and output stay paired and SAEs on several hooks can train from one forward (`saes.fit_many`).

With `cache_dir`, activations are written to safetensors shards as they are produced (`saes.shards`
describes the format); a later store with the same model, data, hooks and context length reads the
cached windows instead of running the model and computes only what is missing, with identical batches.

Resuming: the shuffle depends only on row counts, never on values, so `batches(...).skip_batches(n)`
replays the first `n` batches as row ids alone; only chunks with rows still waiting in the buffer are
computed (or read from the cache) again, never the consumed ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from interp.errors import InterpError
from interp.names import HookPoint
from saes.shards import ShardCache
from saes.shuffle import Chunk, PassBatches, PassCount, shuffled
from saes.tokens import encode

logger = logging.getLogger(__name__)

_TOKEN_COLUMNS = ("input_ids", "tokens", "token_ids")
_ROWS_AT_ONCE = 32


class ActivationStore:
    """Activations of one or more hooks of `model` over `dataset`, in shuffled batches.

    Example:
        >>> store = ActivationStore(model, interp.data.shakespeare(), "blocks.1.hook_resid_post",
        ...                         context_len=64, batch_size=1024)  # doctest: +SKIP
        >>> batch = next(iter(store))  # {"blocks.1.hook_resid_post": Tensor[1024, d_model]}  # doctest: +SKIP
        >>> sae = saes.Trainer(cfg, tc).fit(store.batches(n_tokens=1_000_000))  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        dataset: Any,
        hooks: str | Sequence[str],
        *,
        context_len: int = 128,
        batch_size: int = 4096,
        model_batch_size: int = 16,
        shuffle_buffer: int | None = None,
        text_column: str = "text",
        tokens_column: str | None = None,
        max_tokens: int | None = None,
        cache_dir: str | Path | None = None,
        shard_size: int = 65536,
        with_grads: bool = False,
        seed: int = 0,
    ) -> None:
        if context_len < 1 or batch_size < 1 or model_batch_size < 1:
            raise InterpError("context_len, batch_size and model_batch_size must be positive")
        if len(dataset) == 0:
            raise InterpError("the dataset is empty: nothing to compute activations on")
        self.model = model
        self.dataset = dataset
        self.hooks = model.select(hooks)
        self.context_len = context_len
        self.batch_size = batch_size
        self.model_batch_size = model_batch_size
        self.shuffle_buffer = max(shuffle_buffer or 8 * batch_size, batch_size)
        self.column, self.is_tokens = _pick_column(dataset, text_column, tokens_column)
        if not self.is_tokens and getattr(model, "tokenizer", None) is None:
            raise InterpError(
                f"column {self.column!r} holds text but the model has no tokenizer; pass token ids"
            )
        self.max_tokens = max_tokens
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.shard_size = shard_size
        self.with_grads = with_grads
        self.seed = seed
        self._stream_windows: int | None = None
        self._cache = (
            None
            if cache_dir is None
            else ShardCache(cache_dir, self._cache_key(), context_len, shard_rows=shard_size)
        )
        if self._cache is not None and self._cache.windows:
            logger.info("reusing %d cached activation windows in %s", self._cache.windows, cache_dir)

    # ---- public -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        """One pass over the dataset (or `max_tokens` positions), in shuffled full batches."""
        return self._pass(self.seed, skip=0, count=PassCount())

    def batches(self, n_tokens: int | None = None) -> PassBatches:
        """Repeated passes (each reshuffled with a new seed) until `n_tokens` activations were yielded.

        The result is iterable; `.skip_batches(n)` starts after the first `n` batches without computing
        their activations (the trainer uses it to resume)."""
        return PassBatches(self, n_tokens, "the dataset")

    def token_windows(self, n: int) -> Tensor:
        """The first `n` token windows [<= n, context_len] of the dataset (e.g. for evaluation)."""
        column = {"tokens_column": self.column} if self.is_tokens else {"text_column": self.column}
        return token_windows(self.model, self.dataset, n, self.context_len, **column)

    def widths(self) -> dict[str, int]:
        """Activation width per hook (from the cache, else one small forward pass)."""
        if self._cache is not None and self._cache.windows:
            return {h: w for h, w in self._cache.widths.items() if not h.endswith(":grad")}
        tokens = next(self._windows(self.model_batch_size))[:1]
        return {h: a.shape[-1] for h, a in self._forward(tokens).items() if not h.endswith(":grad")}

    @property
    def runs_model(self) -> bool:
        """Whether a pass runs the model (no complete disk cache): the trainer then computes batches
        on a background thread while it steps (`saes.prefetch`)."""
        return not self.from_cache

    @property
    def from_cache(self) -> bool:
        """Whether the disk cache holds a whole pass (the model will not run)."""
        return self._cache is not None and self._cache.complete

    # ---- tokens -------------------------------------------------------------------------------
    def _windows(self, per_batch: int) -> Iterator[Tensor]:
        """[<= per_batch, context_len] token windows; sets `_stream_windows` when the data ran out."""
        limit = None if self.max_tokens is None else -(-self.max_tokens // self.context_len)
        made = held = 0
        parts: list[Tensor] = []
        for block in _cut(self.model, self.dataset, self.column, self.is_tokens, self.context_len):
            cut = limit is not None and made + block.shape[0] > limit  # windows remain past the limit
            if cut:
                block = block[: limit - made]
            made += block.shape[0]
            parts.append(block)
            held += block.shape[0]
            while held >= per_batch:
                joined = torch.cat(parts) if len(parts) > 1 else parts[0]
                yield joined[:per_batch]
                parts, held = [joined[per_batch:]], held - per_batch
            if cut:
                break
        else:
            self._stream_windows = made
        if held:
            yield torch.cat(parts)

    def _chunks(self) -> Iterator[Chunk]:
        """(first window, windows, token ids or None) per model batch; no tokenising over a full cache."""
        mb, cache = self.model_batch_size, self._cache
        if cache is not None and cache.complete:
            total = cache.windows
            if self.max_tokens is not None:
                total = min(total, -(-self.max_tokens // self.context_len))
            for first in range(0, total, mb):
                yield first, min(mb, total - first), None
            return
        first = 0
        self._stream_windows = None
        try:
            for tokens in self._windows(mb):
                yield first, tokens.shape[0], tokens
                first += tokens.shape[0]
        finally:
            if cache is not None:
                cache.finish(self._stream_windows)

    # ---- activations --------------------------------------------------------------------------
    def _fetch(self, chunk: Chunk) -> dict[str, Tensor]:
        first, windows, tokens = chunk
        cache = self._cache
        if cache is not None and first + windows <= cache.windows:
            return cache.read(first, windows, device=self.model.device)
        if tokens is None:
            raise InterpError(f"windows {first}..{first + windows} are neither cached nor tokenised")
        acts = self._forward(tokens)
        if cache is not None:
            cache.append(first, acts, windows)
        return acts

    def _forward(self, tokens: Tensor) -> dict[str, Tensor]:
        if not self.with_grads:
            with torch.no_grad():
                cache = _run_to_last_hook(self.model, tokens, self.hooks)
            return {h: _flatten(cache[h]) for h in self.hooks}
        # Gradients of the next-token loss with respect to each hook's activation. The activations are
        # routed through replacement hooks so the tensors we differentiate are on the forward path.
        recorded: dict[str, Tensor] = {}

        def keep(act: Tensor, name: str) -> Tensor:
            recorded[name] = act.clone() if act.requires_grad else act.detach().clone().requires_grad_()
            return recorded[name]

        with torch.enable_grad(), self.model.hooks({h: keep for h in self.hooks}):
            logits = self.model(tokens)
        loss = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten().to(logits.device)
        )
        grads = torch.autograd.grad(loss, [recorded[h] for h in self.hooks], allow_unused=True)
        out = {h: _flatten(recorded[h].detach()) for h in self.hooks}
        for h, g in zip(self.hooks, grads, strict=True):
            out[f"{h}:grad"] = _flatten(torch.zeros_like(recorded[h]) if g is None else g)
        return out

    def _pass(
        self, seed: int, skip: int, count: PassCount, max_rows: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(seed)
        yield from shuffled(
            self._chunks(),
            self._fetch,
            rows_per_window=self.context_len,
            buffer=self.shuffle_buffer,
            batch_size=self.batch_size,
            gen=gen,
            skip=skip,
            count=count,
            max_rows=max_rows,
        )
        if count.batches == 0:
            raise InterpError(
                f"the dataset gave fewer than one batch of {self.batch_size} activations; "
                "lower batch_size or add data"
            )
        if self._cache is not None:
            self._cache.flush()

    # ---- disk cache ---------------------------------------------------------------------------
    def _cache_key(self) -> dict[str, Any]:
        hf = getattr(self.model, "hf_model", None)
        h = hashlib.sha256()
        if hf is not None:
            h.update(hf.config.to_json_string().encode())
            with torch.no_grad():
                for p in hf.parameters():
                    h.update(f"{float(p.double().sum()):.6e}".encode())
        return {
            "model": h.hexdigest(),
            "dataset": str(getattr(self.dataset, "_fingerprint", len(self.dataset))),
            "column": self.column,
            "hooks": list(self.hooks),
            "context_len": self.context_len,
            "with_grads": self.with_grads,
        }


def token_windows(
    model: Any,
    dataset: Any,
    n: int,
    context_len: int,
    *,
    text_column: str = "text",
    tokens_column: str | None = None,
) -> Tensor:
    """The first `n` `context_len`-token windows [<= n, context_len] of `dataset`'s joined documents
    (tokenising only as much as needed; no model runs)."""
    col, is_tokens = _pick_column(dataset, text_column, tokens_column)
    n, blocks, have = max(n, 1), [], 0
    for block in _cut(model, dataset, col, is_tokens, context_len):
        blocks.append(block[: n - have])
        have += blocks[-1].shape[0]
        if have >= n:
            break
    if not have:
        raise InterpError(f"the dataset has fewer than context_len={context_len} tokens")
    return torch.cat(blocks)


def _cut(model: Any, dataset: Any, column: str, is_tokens: bool, context_len: int) -> Iterator[Tensor]:
    """Documents joined into one stream (EOS-separated for text) and cut into `context_len` windows,
    yielded as blocks [m, context_len] of consecutive windows (m may be 0). Rows are read and tokenised
    `_ROWS_AT_ONCE` at a time (one tokenizer call per group); the stream is kept as one tensor, since
    per-token Python work here cost as much as a third of the tokenizer's own time."""
    tokenizer = getattr(model, "tokenizer", None)
    eos = getattr(tokenizer, "eos_token_id", None) if not is_tokens else None
    carry = torch.empty(0, dtype=torch.long)
    for start in range(0, len(dataset), _ROWS_AT_ONCE):
        values = dataset[start : start + _ROWS_AT_ONCE][column]
        if is_tokens:
            docs = [d.tolist() if hasattr(d, "tolist") else d for d in values]
        else:
            docs = encode(tokenizer, list(values))
        flat: list[int] = []
        for doc in docs:
            flat.extend(doc)
            if eos is not None:
                flat.append(eos)
        stream = torch.cat([carry, torch.tensor(flat, dtype=torch.long)])
        m = stream.shape[0] // context_len
        yield stream[: m * context_len].view(m, context_len)
        carry = stream[m * context_len :]


def last_block(model: Any, hooks: Sequence[str]) -> int | None:
    """The forward can stop after block `last_block` (None: every hook needs the whole model)."""
    layers = []
    for name in hooks:
        point = HookPoint.try_parse(name)
        if point is None or (point.layer is None and not point.is_embedding):
            return None
        layers.append(point.layer or 0)
    return max(layers)


def _run_to_last_hook(model: Any, tokens: Tensor, hooks: Sequence[str]) -> Any:
    """Record `hooks`, running blocks only up to the last one they need (never the unembedding)."""
    last = last_block(model, hooks)
    stop = {} if last is None else {"stop_at_layer": last + 1}
    _, cache = model.run_with_cache(tokens, names=hooks, **stop)
    return cache


def _pick_column(dataset: Any, text_column: str, tokens_column: str | None) -> tuple[str, bool]:
    columns = list(getattr(dataset, "column_names", None) or [])
    if tokens_column is not None:
        if tokens_column not in columns:
            raise InterpError(f"dataset has no column {tokens_column!r}; columns: {columns}")
        return tokens_column, True
    for name in _TOKEN_COLUMNS:
        if name in columns:
            return name, True
    if text_column in columns:
        return text_column, False
    raise InterpError(
        f"dataset has neither a text column {text_column!r} nor token ids ({', '.join(_TOKEN_COLUMNS)}); "
        f"columns: {columns}"
    )


def _flatten(acts: Tensor) -> Tensor:
    """[batch, pos, ...] -> [batch * pos, prod(...)] in float32 on the model's device (heads concatenated)."""
    if acts.ndim < 3:
        raise InterpError(f"activation of shape {tuple(acts.shape)} has no [batch, pos, width] layout")
    return acts.reshape(acts.shape[0] * acts.shape[1], -1).float()
