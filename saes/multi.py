"""`fit_many`: train SAEs on several hooks from one activation stream (one forward pass per chunk).

The store records every hook in the same forward; each batch (a dict hook -> rows) is handed to every
trainer, which picks its own `cfg.hook_in` (and `out_hook`). Trainers run in their own threads over
bounded queues, so the batches are computed once and the SAE steps of different hooks overlap.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from interp.errors import InterpError
from saes.architectures import SparseAutoencoder
from saes.trainer import Trainer

_DONE = object()


def fit_many(
    trainers: Mapping[str, Trainer], batches: Iterable[dict[str, Any]]
) -> dict[str, SparseAutoencoder]:
    """Feed every batch of `batches` to every trainer; returns {name: trained SAE}.

    Example:
        >>> store = ActivationStore(model, ds, ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"])  # doctest: +SKIP
        >>> trainers = {h: Trainer(SAEConfig("topk", d_in=64, d_sae=512, k=8, hook_in=h), tc) for h in store.hooks}  # doctest: +SKIP
        >>> saes_by_hook = fit_many(trainers, store.batches(n_tokens=1_000_000))  # doctest: +SKIP
    """
    if not trainers:
        raise InterpError("fit_many needs at least one trainer")
    queues = {name: queue.Queue(maxsize=2) for name in trainers}
    results: dict[str, SparseAutoencoder] = {}
    errors: dict[str, BaseException] = {}

    def feed(q: queue.Queue) -> Iterator[dict[str, Any]]:
        while (item := q.get()) is not _DONE:
            yield item

    def work(name: str) -> None:
        try:
            results[name] = trainers[name].fit(feed(queues[name]))
        except BaseException as exc:  # re-raised in the calling thread
            errors[name] = exc

    threads = {name: threading.Thread(target=work, args=(name,), daemon=True) for name in trainers}
    for thread in threads.values():
        thread.start()
    try:
        for batch in batches:
            live = [n for n, t in threads.items() if t.is_alive()]
            if not live:
                break
            for name in live:
                _put(queues[name], batch, threads[name])
    finally:
        for name, thread in threads.items():
            _put(queues[name], _DONE, thread)
        for thread in threads.values():
            thread.join()
    if errors:
        name, exc = next(iter(errors.items()))
        raise (
            exc if isinstance(exc, InterpError) else InterpError(f"training the SAE {name!r} failed: {exc}")
        ) from exc
    return results


def _put(q: queue.Queue, item: Any, thread: threading.Thread) -> None:
    """Put unless the trainer finished (it stops reading once it reached its step budget)."""
    while thread.is_alive():
        try:
            q.put(item, timeout=0.05)
            return
        except queue.Full:
            continue
