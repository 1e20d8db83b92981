"""`ActivationStore`: stream a hooked model's activations over a `datasets.Dataset` for SAE training.

How a pass works:
1. Documents (a text column, tokenised with the model's tokenizer, or a column of token ids) are joined
   into one token stream (separated by EOS when the tokenizer has one) and cut into `context_len` windows.
2. Windows run through the model `model_batch_size` at a time; every requested hook is recorded in the
   same forward pass and flattened to [batch * pos, width] (`attn.hook_z` heads are concatenated).
3. Activations go through a shuffle buffer (seeded: every pass yields the same batches), and leave as
   `dict[hook name -> Tensor[batch_size, width]]`, the same rows for every hook, so a transcoder's input
   and output stay paired.

With `cache_dir`, the raw activations of a full pass are written as safetensors shards plus a
`manifest.json` describing what produced them; a later store with the same model, data, hooks and
context length reads the shards instead of running the model (and yields identical batches).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from interp.errors import InterpError
from interp.io import atomic_write_json

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_TOKEN_COLUMNS = ("input_ids", "tokens", "token_ids")


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
        self.from_cache = self._cache_is_usable()

    # ---- public -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        """One pass over the dataset (or `max_tokens` positions), in shuffled full batches."""
        return self._shuffled(self._raw_chunks(), torch.Generator().manual_seed(self.seed))

    def batches(self, n_tokens: int | None = None) -> Iterator[dict[str, Tensor]]:
        """Repeated passes (each reshuffled with a new seed) until `n_tokens` activations were yielded."""
        seen, epoch = 0, 0
        while n_tokens is None or seen < n_tokens:
            produced = 0
            gen = torch.Generator().manual_seed(self.seed + epoch)
            for batch in self._shuffled(self._raw_chunks(), gen):
                yield batch
                produced += self.batch_size
                seen += self.batch_size
                if n_tokens is not None and seen >= n_tokens:
                    return
            if produced == 0:
                return
            epoch += 1

    def token_windows(self, n: int) -> Tensor:
        """The first `n` token windows [<= n, context_len] of the dataset (e.g. for evaluation)."""
        windows = []
        for chunk in self._windows(self.model_batch_size):
            windows.append(chunk)
            if sum(w.shape[0] for w in windows) >= n:
                break
        if not windows:
            raise InterpError(f"the dataset has fewer than context_len={self.context_len} tokens")
        return torch.cat(windows)[:n]

    def widths(self) -> dict[str, int]:
        """Activation width per hook (runs one small forward pass unless cached)."""
        if self.from_cache:
            return dict(json.loads((self.cache_dir / MANIFEST).read_text())["widths"])
        tokens = next(self._windows(self.model_batch_size))
        return {h: a.shape[-1] for h, a in self._forward(tokens).items() if not h.endswith(":grad")}

    # ---- tokens -------------------------------------------------------------------------------
    def _documents(self) -> Iterator[list[int]]:
        tokenizer = getattr(self.model, "tokenizer", None)
        for row in self.dataset:
            value = row[self.column]
            if self.is_tokens:
                yield [int(t) for t in value]
            else:
                yield list(tokenizer(value)["input_ids"])

    def _windows(self, per_batch: int) -> Iterator[Tensor]:
        """[<= per_batch, context_len] token windows cut from the joined document stream."""
        tokenizer = getattr(self.model, "tokenizer", None)
        eos = getattr(tokenizer, "eos_token_id", None) if not self.is_tokens else None
        limit = None if self.max_tokens is None else -(-self.max_tokens // self.context_len)
        stream: list[int] = []
        windows: list[list[int]] = []
        made = 0
        for doc in self._documents():
            stream.extend(doc if eos is None else [*doc, eos])
            while len(stream) >= self.context_len and (limit is None or made < limit):
                windows.append(stream[: self.context_len])
                del stream[: self.context_len]
                made += 1
                if len(windows) == per_batch:
                    yield torch.tensor(windows, dtype=torch.long)
                    windows = []
            if limit is not None and made >= limit:
                break
        if windows:
            yield torch.tensor(windows, dtype=torch.long)

    # ---- activations --------------------------------------------------------------------------
    def _forward(self, tokens: Tensor) -> dict[str, Tensor]:
        if not self.with_grads:
            with torch.no_grad():
                _, cache = self.model.run_with_cache(tokens, names=self.hooks)
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

    def _raw_chunks(self) -> Iterator[dict[str, Tensor]]:
        """Unshuffled activation chunks, from the disk cache when it is usable."""
        if self.from_cache:
            yield from self._read_cache()
            return
        chunks = (self._forward(t) for t in self._windows(self.model_batch_size))
        if self.cache_dir is None:
            yield from chunks
        else:
            yield from self._write_cache(chunks)

    def _shuffled(
        self, chunks: Iterator[dict[str, Tensor]], gen: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        """Fill the buffer; when full, emit a shuffled half (whole batches) and keep the rest."""
        buffer: dict[str, list[Tensor]] = {}
        size = yielded = 0
        for chunk in chunks:
            for name, acts in chunk.items():
                buffer.setdefault(name, []).append(acts)
            size += next(iter(chunk.values())).shape[0]
            if size >= self.shuffle_buffer:
                n_out = (size - self.shuffle_buffer // 2) // self.batch_size * self.batch_size
                out, buffer, size = _split(buffer, n_out, gen)
                for batch in _batches(out, self.batch_size):
                    yielded += 1
                    yield batch
        if size >= self.batch_size:
            out, _, _ = _split(buffer, size // self.batch_size * self.batch_size, gen)
            for batch in _batches(out, self.batch_size):
                yielded += 1
                yield batch
        if yielded == 0:
            raise InterpError(
                f"the dataset gave {size} activations, fewer than one batch of {self.batch_size}; "
                "lower batch_size or add data"
            )

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
            "max_tokens": self.max_tokens,
            "with_grads": self.with_grads,
        }

    def _cache_is_usable(self) -> bool:
        if self.cache_dir is None or not (self.cache_dir / MANIFEST).is_file():
            return False
        manifest = json.loads((self.cache_dir / MANIFEST).read_text())
        if manifest.get("key") != self._cache_key():
            raise InterpError(
                f"activation cache {self.cache_dir} was built from a different model, dataset, hooks or "
                "context length; delete it or pick another cache_dir"
            )
        logger.info("reusing cached activations in %s", self.cache_dir)
        return True

    def _read_cache(self) -> Iterator[dict[str, Tensor]]:
        manifest = json.loads((self.cache_dir / MANIFEST).read_text())
        for shard, sizes in zip(manifest["shards"], manifest["chunks"], strict=True):
            data = load_file(str(self.cache_dir / shard))
            # re-cut into the original forward-pass chunks so the shuffle buffer sees the same sequence
            parts = {name: data[name].split(sizes) for name in manifest["names"]}
            for i in range(len(sizes)):
                yield {name: parts[name][i] for name in manifest["names"]}

    def _write_cache(self, chunks: Iterator[dict[str, Tensor]]) -> Iterator[dict[str, Tensor]]:
        """Pass chunks through while writing shards; the manifest appears only after a full pass."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = self.cache_dir / ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        pending: dict[str, list[Tensor]] = {}
        shards: list[str] = []
        chunk_sizes: list[list[int]] = []
        widths: dict[str, int] = {}
        sizes: list[int] = []

        def flush() -> None:
            nonlocal pending, sizes
            name = f"shard_{len(shards):05d}.safetensors"
            save_file({k: torch.cat(v).contiguous() for k, v in pending.items()}, str(partial / name))
            shards.append(name)
            chunk_sizes.append(sizes)
            pending, sizes = {}, []

        for chunk in chunks:
            for name, acts in chunk.items():
                pending.setdefault(name, []).append(acts)
                widths[name] = acts.shape[-1]
            sizes.append(next(iter(chunk.values())).shape[0])
            if sum(sizes) >= self.shard_size:
                flush()
            yield chunk
        if sizes:
            flush()
        for name in shards:
            (partial / name).replace(self.cache_dir / name)
        partial.rmdir()
        names = list(widths)
        atomic_write_json(
            self.cache_dir / MANIFEST,
            {
                "key": self._cache_key(),
                "names": names,
                "widths": widths,
                "shards": shards,
                "chunks": chunk_sizes,
            },
        )
        self.from_cache = True
        logger.info("cached %d activation shards in %s", len(shards), self.cache_dir)


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
    """[batch, pos, ...] -> [batch * pos, prod(...)] in float32 on the CPU (heads concatenated)."""
    if acts.ndim < 3:
        raise InterpError(f"activation of shape {tuple(acts.shape)} has no [batch, pos, width] layout")
    return acts.reshape(acts.shape[0] * acts.shape[1], -1).float().cpu()


def _split(buffer: dict[str, list[Tensor]], n_out: int, gen: torch.Generator):
    """Shuffle the buffer; return (first n_out rows per hook, the rest as a new buffer, its size)."""
    full = {k: torch.cat(v) for k, v in buffer.items()}
    total = next(iter(full.values())).shape[0]
    perm = torch.randperm(total, generator=gen)
    out = {k: v[perm[:n_out]] for k, v in full.items()}
    rest = {k: [v[perm[n_out:]]] for k, v in full.items()}
    return out, rest, total - n_out


def _batches(acts: dict[str, Tensor], batch_size: int) -> Iterator[dict[str, Tensor]]:
    n = next(iter(acts.values())).shape[0]
    for start in range(0, n - batch_size + 1, batch_size):
        yield {k: v[start : start + batch_size] for k, v in acts.items()}
