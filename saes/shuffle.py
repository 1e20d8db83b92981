"""The activation store's shuffle buffer, which can skip batches without computing them.

The buffer fills with chunks of rows; once it holds `buffer` rows it emits a shuffled part of them
(whole batches, leaving half the buffer) and keeps the rest. Which rows leave together depends only on
the row counts and the seeded generator, never on the values, so the same plan can run on row ids
alone. Skipping `n` batches does exactly that; at the first batch to yield, the rows still waiting in
the buffer are fetched again (only their chunks), and from there on the buffer holds activations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interp.errors import InterpError

Acts = dict[str, Tensor]
Chunk = tuple[int, int, "Tensor | None"]  # (first window, windows, token ids [windows, pos] or None)


@dataclass
class PassCount:
    """Batches planned in one pass (yielded or skipped)."""

    batches: int = 0


def shuffled(
    chunks: Iterator[Chunk],
    fetch: Callable[[Chunk], Acts],
    *,
    rows_per_window: int,
    buffer: int,
    batch_size: int,
    gen: torch.Generator,
    skip: int = 0,
    count: PassCount | None = None,
    max_rows: int | None = None,
) -> Iterator[Acts]:
    """Shuffled full batches of the rows of `chunks` (activations from `fetch(chunk)`), the first
    `skip` of them planned but neither fetched nor yielded. With `max_rows`, no chunk is read once that
    many rows were (the buffer is then emitted), so a consumer that stops there leaves none unused."""
    count = count if count is not None else PassCount()
    ids: list[Tensor] = []  # global row ids in the buffer, kept while skipping
    data: dict[str, list[Tensor]] | None = None if skip else {}  # activations, once yielding
    held: dict[int, Chunk] = {}  # chunks (by first window) with rows in the buffer, while skipping
    size = read = 0

    def emit(n_out: int) -> Iterator[Acts]:
        nonlocal ids, data, size, skip, held
        perm = torch.randperm(size, generator=gen)
        n_batches = n_out // batch_size
        if data is not None:
            out, data = _take(data, perm, n_out)
        else:
            all_ids = torch.cat(ids)
            out_ids, rest = all_ids[perm[:n_out]], all_ids[perm[n_out:]]
            ids = [rest]
            first = min(skip, n_batches)
            skip -= first
            count.batches += first
            if first < n_batches:  # the skip ends inside this emission: fetch what is still needed
                wanted = torch.cat([out_ids[first * batch_size :], rest])
                acts = _gather(wanted, held, fetch, rows_per_window)
                cut = (n_batches - first) * batch_size
                out = {k: v[:cut] for k, v in acts.items()}
                data = {k: [v[cut:]] for k, v in acts.items()}
                ids, held = [], {}
                n_batches -= first
            else:
                keep = set((rest // rows_per_window).tolist())
                held = {w: c for w, c in held.items() if any(w <= x < w + c[1] for x in keep)}
                size -= n_out
                return
        size -= n_out
        for start in range(0, n_batches * batch_size, batch_size):
            count.batches += 1
            yield {k: v[start : start + batch_size] for k, v in out.items()}

    for chunk in chunks:
        first_window, windows, _ = chunk
        rows = windows * rows_per_window
        if data is not None:
            for name, acts in fetch(chunk).items():
                data.setdefault(name, []).append(acts)
        else:
            ids.append(torch.arange(first_window * rows_per_window, first_window * rows_per_window + rows))
            held[first_window] = chunk
        size += rows
        read += rows
        if size >= buffer:
            yield from emit((size - buffer // 2) // batch_size * batch_size)
        if max_rows is not None and read >= max_rows:
            getattr(chunks, "close", lambda: None)()  # let the source finish (e.g. flush its disk cache)
            break
    if size >= batch_size:
        yield from emit(size // batch_size * batch_size)


def _take(data: dict[str, list[Tensor]], perm: Tensor, n_out: int) -> tuple[Acts, dict[str, list[Tensor]]]:
    """Shuffle the buffered activations: (the first `n_out` rows per name, the rest as a new buffer)."""
    out, rest = {}, {}
    for name, parts in data.items():
        full = torch.cat(parts) if len(parts) > 1 else parts[0]  # [size, width]
        p = perm.to(full.device)
        out[name], rest[name] = full[p[:n_out]], [full[p[n_out:]]]
    return out, rest


def _gather(
    wanted: Tensor, held: dict[int, Chunk], fetch: Callable[[Chunk], Acts], rows_per_window: int
) -> Acts:
    """Activations of the global row ids `wanted`, in that order, fetching only the chunks they are in."""
    starts = sorted(held)
    chunk_of = torch.tensor(starts) * rows_per_window  # first row id of each held chunk
    which = torch.searchsorted(chunk_of, wanted, right=True) - 1  # [n] index into starts
    needed = sorted(set(which.tolist()))
    offsets, parts, total = {}, [], 0
    for i in needed:
        acts = fetch(held[starts[i]])
        offsets[i] = total
        total += next(iter(acts.values())).shape[0]
        parts.append(acts)
    base = torch.zeros(len(starts), dtype=torch.long)
    for i, off in offsets.items():
        base[i] = off - int(chunk_of[i])
    index = wanted + base[which]  # position of each wanted row in the concatenated chunks
    out = {}
    for name in parts[0]:
        full = torch.cat([p[name] for p in parts])
        out[name] = full[index.to(full.device)]
    return out


class PassBatches:
    """The batches of a source's repeated passes (`ActivationStore`, `ShardReader`), each pass reshuffled
    with the next seed, until `n_tokens` rows were yielded; `.skip_batches(n)` resumes after the first `n`
    batches, which are planned but not computed. The source gives `seed`, `batch_size` and
    `_pass(seed, skip, count, max_rows)`; `what` names it when it cannot fill one batch."""

    def __init__(self, source: Any, n_tokens: int | None, what: str) -> None:
        self.source, self.n_tokens, self.what = source, n_tokens, what

    def __iter__(self) -> Iterator[Acts]:
        return self.skip_batches(0)

    @property
    def runs_model(self) -> bool:
        """Whether producing these batches runs a model (see `ActivationStore.runs_model`)."""
        return bool(getattr(self.source, "runs_model", False))

    def skip_batches(self, n: int) -> Iterator[Acts]:
        source, limit = self.source, self.n_tokens
        seen, epoch, skip = 0, 0, n
        while limit is None or (seen + n) * source.batch_size < limit:
            count = PassCount()
            # rows this pass still has to supply, counting batches skipped in earlier passes
            rows = None if limit is None else limit - (seen + n - skip) * source.batch_size
            for batch in source._pass(source.seed + epoch, skip, count, rows):
                yield batch
                seen += 1
                if limit is not None and (seen + n) * source.batch_size >= limit:
                    return
            if count.batches == 0:
                raise InterpError(f"{self.what} holds less than one batch of {source.batch_size} rows")
            skip -= min(skip, count.batches)
            epoch += 1
