"""Ctrl-C during training: finish the current step, write a checkpoint, then stop.

A SIGINT arriving mid-step (between the optimizer update and the step counter, say) would leave a
state no checkpoint can describe exactly; so the first Ctrl-C only sets a flag that the training
loop checks between steps. A second Ctrl-C stops at once, as usual.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Interrupt:
    """`requested` turns True on the first SIGINT inside `deferred_interrupt()`."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def deferred_interrupt(enabled: bool = True) -> Iterator[Interrupt]:
    """Defer the first SIGINT to the caller's next check of `Interrupt.requested` (main thread only).

    `enabled=False` leaves SIGINT alone: under data parallelism each rank would see the flag at a
    different step and the ranks' collectives would no longer line up.
    """
    flag = Interrupt()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:  # started to ignore Ctrl-C (e.g. by `nohup cmd &`): keep ignoring it
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:  # a second Ctrl-C: stop now
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag.requested = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
