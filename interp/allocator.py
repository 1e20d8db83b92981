"""The CLI's memory-allocator policy on Linux (glibc): keep freed blocks for reuse.

On a CPU, torch takes every tensor from the C library's `malloc`. glibc serves blocks above a
threshold (128 KiB at start, raised automatically up to the largest block freed so far) with fresh
`mmap`s, and hands the top of its heap back to the kernel once more than twice that threshold is
free. A forward and backward pass frees most of what it allocated, so the next pass asks the kernel
again and pays a page fault (and the zeroing of a page) for every 4 KiB it touches. On the zoo's
models at a few hundred rows per pass this doubled the time of some elementwise ops: integrated-
gradient passes stacked four copies of a batch ran 20-35% faster with the policy below (the plain
forward and backward it is compared with, whose tensors are smaller, did not change).

Unless the user chose allocator settings themselves (any `MALLOC_*_` variable, a `glibc.malloc`
tunable, or another allocator in `LD_PRELOAD`) or opted out (`INTERP_KEEP_FREED_MEMORY=0`),
`keep_freed_memory` sets
- `M_MMAP_THRESHOLD` to 32 MiB (glibc's maximum): smaller blocks come from the heap, and
- `M_TRIM_THRESHOLD` to 256 MiB: up to that much freed memory stays with the process for reuse.
The price is a resident size up to 256 MiB above what the process holds live. (Setting a fixed
threshold by hand, e.g. `MALLOC_TRIM_THRESHOLD_=131072`, also turns glibc's own adjustment off and
maps every block above 128 KiB afresh: slower than either; `INTERP_KEEP_FREED_MEMORY=0` is the way
to keep glibc's behaviour.)
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Mapping

MMAP_THRESHOLD = 32 << 20  # glibc refuses more on 64-bit systems (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers from glibc's malloc.h
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def user_chose_allocator(environ: Mapping[str, str]) -> bool:
    """Whether the environment already says how memory is allocated."""
    if any(key.startswith("MALLOC_") and key.endswith("_") for key in environ):
        return True
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return True
    return any(name in environ.get("LD_PRELOAD", "") for name in _OTHER_ALLOCATORS)


def keep_freed_memory(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Apply the policy above where it applies; returns the settings made ({} where none was)."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return {}
    if user_chose_allocator(environ) or environ.get("INTERP_KEEP_FREED_MEMORY", "1") == "0":
        return {}
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return {}
    chosen = {"M_MMAP_THRESHOLD": MMAP_THRESHOLD, "M_TRIM_THRESHOLD": TRIM_THRESHOLD}
    # mmap threshold first: fixing either parameter turns off glibc's own adjustment of both
    if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return {}
    if libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return {"M_MMAP_THRESHOLD": MMAP_THRESHOLD}
    return chosen
