"""Compute the next activation batches on a second core while the trainer steps on the current one.

Without it, training alternates: the store runs the model (and its shuffle buffer) for the next batch,
then the trainer takes a step, then the store again, so one core idles while the other works. Here a
background thread iterates the store and hands batches over through a small bounded queue; the two
overlap, and the time per batch approaches the larger of the two instead of their sum.

The batches and their order are exactly those of iterating the store directly: the store's shuffle
uses its own seeded generator and the model runs in eval mode, so which thread runs them changes
nothing. Errors raised in the thread are re-raised in the trainer's. Closing the iterator (at the end
of `fit`, on an error or Ctrl-C) stops the thread after the batch it is on and closes the store's
iterator in that thread, so a disk cache it was writing is finished there.

The trainer uses it for sources that run a model (`runs_model`: an `ActivationStore` without a
complete disk cache) on a CPU with two or more cores (`TrainConfig.prefetch` turns it off). The torch
threads are split between the two (OpenMP's thread count is per thread): the producer gets
`producer_threads` of them, the trainer the rest (at least one each), and the process's count is
restored afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from interp.threads import usable_cores

_DONE = object()


def prefetch_threads(device: torch.device, threads: int | None = None, cores: int | None = None) -> int:
    """Torch threads to give the producer: half of the process's (at least 1; the trainer keeps the
    rest, at least 1) on a CPU with two or more usable cores; 0 (no prefetching) on one core, and on an
    accelerator, where the forward already runs asynchronously to the Python that queues it.

    One torch thread each is still worth it: the thread policy gives one thread when the load average
    says a core is busy, but two threads joined by a queue (no barrier between them, unlike OpenMP's
    threads within an op) lose nothing when they have to share a core, and overlap when they need not."""
    if device.type != "cpu" or (usable_cores() if cores is None else cores) < 2:
        return 0
    threads = torch.get_num_threads() if threads is None else threads
    return max(1, threads // 2)


class Prefetched(Iterator[Any]):
    """Iterate `source` (at most `limit` items of it) in a background thread, at most `depth` items
    ahead of the consumer.

    Use as a context manager (or call `close`) so the thread is stopped and joined on every exit path.
    """

    def __init__(
        self, source: Iterable[Any], *, limit: int | None = None, depth: int = 5, producer_threads: int = 1
    ) -> None:
        self._source: Iterable[Any] | None = source
        self._limit = limit
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._finished = False
        self._threads_before = torch.get_num_threads()
        self._producer_threads = max(1, producer_threads)
        consumer_threads = max(1, self._threads_before - self._producer_threads)
        if consumer_threads != self._threads_before:
            torch.set_num_threads(consumer_threads)
        self._thread = threading.Thread(target=self._produce, name="activation-prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        # this thread's OpenMP team: every thread until the consumer has its first item (it only waits
        # until then; a store fills its whole shuffle buffer first), then the producer's share
        torch.set_num_threads(max(self._threads_before, self._producer_threads))
        source, self._source = self._source, None  # this thread holds the only reference from here
        it = None
        try:
            it = iter(source)
            del source
            for item in itertools.islice(it, self._limit):
                if not self._put((item, None)):
                    return
                torch.set_num_threads(self._producer_threads)
            self._put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put((_DONE, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # the source's own clean-up (e.g. finishing a disk cache) runs in its thread

    def _put(self, entry: tuple[Any, BaseException | None]) -> bool:
        """Queue `entry` unless the consumer closed the iterator; False once it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        item, exc = self._queue.get()
        if item is _DONE:
            self.close()
            if exc is not None:
                raise exc
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the producer after its current item, wait for it, and restore the thread count."""
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # free a slot: a producer waiting on it sees the stop
                self._queue.get_nowait()
            self._thread.join(timeout=0.05)
        torch.set_num_threads(self._threads_before)

    def __enter__(self) -> Prefetched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
