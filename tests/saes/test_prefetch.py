"""Batches computed on a background thread (`saes.prefetch`): same batches, same training, clean exits."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

import saes
from saes import prefetch
from saes.checkpoint import checkpoint_dirs
from saes.prefetch import Prefetched, prefetch_threads
from saes.store import ActivationStore

from .helpers import assert_same_weights

HOOK = "blocks.0.hook_resid_post"


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_items_arrive_in_order_from_another_thread():
    seen = []

    def source():
        for i in range(20):
            seen.append(threading.current_thread().name)
            yield i

    with Prefetched(source(), depth=3) as it:
        assert list(it) == list(range(20))
    assert set(seen) == {"activation-prefetch"}
    assert not _threads_named("activation-prefetch")


def test_errors_reach_the_consumer_with_their_type():
    def source():
        yield 1
        raise KeyError("broken shard")

    with Prefetched(source()) as it:
        assert next(it) == 1
        with pytest.raises(KeyError, match="broken shard"):
            next(it)
        with pytest.raises(StopIteration):
            next(it)


def test_a_source_that_cannot_be_iterated_is_an_error_not_a_hang():
    with Prefetched(42) as it, pytest.raises(TypeError, match="not iterable"):
        next(it)


def test_closing_early_stops_the_producer_and_runs_the_sources_clean_up():
    produced, cleaned = [], []

    def source():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            cleaned.append(threading.current_thread().name)  # e.g. a store finishing its disk cache

    it = Prefetched(source(), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert cleaned == ["activation-prefetch"] and not _threads_named("activation-prefetch")
    assert len(produced) <= 3 + 2 + 2  # taken, queued, and at most the one in hand and one more
    with pytest.raises(StopIteration):
        next(it)


def test_a_limit_stops_the_producer_there():
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    with Prefetched(source(), limit=4, depth=10) as it:
        assert list(it) == [0, 1, 2, 3]
    assert produced == [0, 1, 2, 3]


def test_threads_are_split_then_restored():
    before = torch.get_num_threads()
    inside = []

    def source():
        for i in range(3):
            inside.append(torch.get_num_threads())
            yield i

    torch.set_num_threads(4)
    try:
        with Prefetched(source(), producer_threads=1) as it:
            consumer = torch.get_num_threads()
            assert list(it) == [0, 1, 2]
        assert consumer == 3
        assert inside[0] == 4 and inside[1:] == [1, 1]  # all threads until the first item is handed over
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


def test_when_prefetching_applies():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert prefetch_threads(cpu, threads=2, cores=2) == 1
    assert prefetch_threads(cpu, threads=1, cores=2) == 1  # a busy core is shared, never worse
    assert prefetch_threads(cpu, threads=8, cores=8) == 4
    assert prefetch_threads(cpu, threads=1, cores=1) == 0
    assert prefetch_threads(cuda, threads=8, cores=8) == 0


@pytest.fixture
def two_cores(monkeypatch):
    """Prefetching on, with one torch thread each side, whatever this machine has."""
    monkeypatch.setattr(prefetch, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _store(model, tokens_ds):
    return ActivationStore(model, tokens_ds, HOOK, context_len=16, batch_size=64, model_batch_size=4)


def _fit(store_batches, tc_kwargs, resume=False):
    cfg = saes.SAEConfig("topk", d_in=64, d_sae=128, k=4, hook_in=HOOK)
    tc = saes.TrainConfig(lr=1e-3, progress=False, dead_window_tokens=4096, **tc_kwargs)
    return saes.Trainer(cfg, tc).fit(store_batches, resume=resume)


def _counting_forwards(store, monkeypatch) -> list[int]:
    """A list that grows by one for each forward the store runs."""
    calls, real_forward = [], store._forward
    monkeypatch.setattr(store, "_forward", lambda tokens: calls.append(1) or real_forward(tokens))
    return calls


def test_training_from_a_store_is_the_same_with_and_without_prefetching(
    model, tokens_ds, two_cores, monkeypatch
):
    started = []
    real_init = Prefetched.__init__

    def counting_init(self, *args, **kwargs):
        started.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Prefetched, "__init__", counting_init)
    ahead = _fit(_store(model, tokens_ds).batches(64 * 30), {"total_steps": 30})
    assert started == [1]
    plain = _fit(_store(model, tokens_ds).batches(64 * 30), {"total_steps": 30, "prefetch": False})
    assert started == [1]
    assert_same_weights(ahead, plain)
    # a list of ready batches runs nothing: no thread
    batches = list(_store(model, tokens_ds).batches(64 * 5))
    _fit(batches, {"total_steps": 5})
    assert started == [1]
    assert torch.get_num_threads() == 1 and not _threads_named("activation-prefetch")


def test_the_producer_computes_no_batch_past_the_last_step(model, tokens_ds, two_cores, monkeypatch):
    store, plain = _store(model, tokens_ds), _store(model, tokens_ds)
    forwards, plain_forwards = _counting_forwards(store, monkeypatch), _counting_forwards(plain, monkeypatch)
    # an unbounded stream of passes: only the trainer's step budget stops it
    _fit(store.batches(), {"total_steps": 12})
    _fit(plain.batches(), {"total_steps": 12, "prefetch": False})
    assert len(forwards) == len(plain_forwards)


@pytest.mark.parametrize("sigint", [signal.default_int_handler], indirect=True)
def test_ctrl_c_during_training_stops_the_store_thread_and_resumes_exactly(
    model, tokens_ds, two_cores, tmp_path, monkeypatch, sigint
):
    """SIGINT while the background thread runs the store: the trainer finishes its step,
    checkpoints, stops the thread and raises; resuming gives the uninterrupted weights."""
    tc = {"total_steps": 30, "checkpoint_dir": str(tmp_path / "run"), "checkpoint_every": 100}
    reference = _fit(_store(model, tokens_ds).batches(64 * 30), {"total_steps": 30})
    real_step = saes.Trainer._train_step

    def step(self, *args):
        if self.step == 5:
            assert _threads_named("activation-prefetch")  # the store is running beside the trainer
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(saes.Trainer, "_train_step", step)
        with pytest.raises(KeyboardInterrupt):
            _fit(_store(model, tokens_ds).batches(64 * 30), tc)
    assert not _threads_named("activation-prefetch") and torch.get_num_threads() == 1
    (saved,) = checkpoint_dirs(tmp_path / "run")
    assert saved.name == "step_000000006"
    assert_same_weights(reference, _fit(_store(model, tokens_ds).batches(64 * 30), tc, resume=True))


def test_an_error_before_the_first_step_stops_the_store_thread(model, tokens_ds, two_cores):
    store = _store(model, tokens_ds)
    real_forward, calls = store._forward, []

    def forward(tokens):
        calls.append(1)
        if len(calls) == 3:  # still filling the shuffle buffer: the trainer is waiting for batch 1
            raise RuntimeError("out of memory")
        return real_forward(tokens)

    store._forward = forward
    with pytest.raises(RuntimeError, match="out of memory"):
        _fit(store.batches(64 * 30), {"total_steps": 30})
    assert not _threads_named("activation-prefetch") and torch.get_num_threads() == 1
