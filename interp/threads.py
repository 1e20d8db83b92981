"""The CLI's CPU thread policy, applied before torch is imported (OpenMP reads it once, at start).

Left alone, OpenMP threads spin while they wait for work and torch starts one per physical core; on a
machine where other processes are busy, spinning threads and more threads than free cores make a run
many times slower and its speed erratic. Unless the user set them, the CLI sets
- `OMP_WAIT_POLICY=PASSIVE` (idle threads sleep instead of spinning),
- `OMP_NUM_THREADS` to the free cores: the cores this process may use, less the 1-minute load
  average, at least 1,
- `TOKENIZERS_PARALLELISM=false` when that is one thread: the fast tokenizers' own thread pool would
  otherwise split each batch across busy cores and wait for them (tokenising took twice its CPU time
  in wall time on a loaded 2-core machine), and
- on Linux, `THP_MEM_ALLOC_ENABLE=1` (2 MiB pages for tensors of 2 MiB and more) where huge pages
  are cheap on this machine now (`interp.huge_pages`).
Set any of them yourself (e.g. `OMP_NUM_THREADS=8 OMP_WAIT_POLICY=ACTIVE interp ...` on a quiet
machine) and it is kept as given. The process's own policy (`environ` left out) also includes the
allocator policy of `interp.allocator` (freed memory kept for reuse), which applies at any time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

from interp.huge_pages import huge_page_policy


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def free_cores() -> int:
    """Usable cores minus the 1-minute load average (rounded), at least 1."""
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, cores - round(load)))


def apply_thread_policy(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the variables the user left unset; returns what was set. Sets no variable once torch
    is imported (OpenMP has read its settings by then)."""
    allocator: dict[str, str] = {}
    if environ is None:
        from interp.allocator import keep_freed_memory

        allocator = {name: str(value) for name, value in keep_freed_memory().items()}
        environ = os.environ
    if "torch" in sys.modules:
        return allocator
    chosen: dict[str, str] = {}
    if not environ.get("OMP_WAIT_POLICY"):
        chosen["OMP_WAIT_POLICY"] = "PASSIVE"
    if not environ.get("OMP_NUM_THREADS"):
        chosen["OMP_NUM_THREADS"] = str(free_cores())
    threads = chosen.get("OMP_NUM_THREADS") or environ["OMP_NUM_THREADS"]
    if not environ.get("TOKENIZERS_PARALLELISM") and threads.strip() == "1":
        chosen["TOKENIZERS_PARALLELISM"] = "false"
    chosen.update(huge_page_policy(environ))
    environ.update(chosen)
    return {**chosen, **allocator}
