"""Transparent huge pages for torch's large CPU tensors (Linux), chosen before torch is imported.

Every 4 KiB page a process touches for the first time costs a page fault, in which the kernel zeroes
and maps it. A cached forward that keeps its activations touches all of them for the first time: at
16 sequences x 128 tokens on a 4-layer, 256-wide GPT-2, a kept cache is about 180 MB and its faults
took about 100 ms of system time against a ~250 ms forward. torch can ask for 2 MiB pages for tensors
of 2 MiB and more (`THP_MEM_ALLOC_ENABLE=1`, read once, at torch's first allocation); one fault then
maps 512 pages' worth. On a 2-core Intel Xeon (Linux 6.18) that cut those faults' system time from
97-104 to 39-46 ms a call and the cached forward from 1.26-1.43x to 1.15-1.17x a plain one (whose own
faults' system time fell from 25-28 to 7-10 ms).

A huge-page fault is cheap only while the kernel has whole free 2 MiB blocks. Where it has none and
its `defrag` setting makes faults on advised memory wait for compaction (`always`, `madvise`,
`defer+madvise`), each such fault can stall, and a run gets slower, not faster. So unless the user set
`THP_MEM_ALLOC_ENABLE` (any value: `0` turns it off), the policy turns it on only where
- the kernel offers transparent huge pages on request (`enabled` is `always` or `madvise`),
- its huge page is 2 MiB (torch's threshold; arm64 kernels with 16 or 64 KiB pages use 32 or 512
  MiB ones), and
- faults cannot stall (`defrag` is `defer` or `never`), or at least `MIN_FREE_HUGE_BYTES` of free
  memory sits in blocks of 2 MiB or more (`/proc/buddyinfo`).
Results are unchanged either way: only the page size behind large tensors differs.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

VARIABLE = "THP_MEM_ALLOC_ENABLE"
MIN_FREE_HUGE_BYTES = 1 << 30
HUGE_PAGE = 2 << 20  # x86-64 and 4 KiB-page arm64; the kernel's own figure is read where it has one
_THP = Path("/sys/kernel/mm/transparent_hugepage")
_BUDDYINFO = Path("/proc/buddyinfo")
_STALLING_DEFRAG = ("always", "madvise", "defer+madvise")


def selected(setting: str) -> str | None:
    """The bracketed choice of a sysfs setting ("always [madvise] never" -> "madvise")."""
    found = re.search(r"\[([^\]]+)\]", setting)
    return found.group(1) if found else None


def free_huge_bytes(buddyinfo: str, page_size: int = 4096, huge_page: int = HUGE_PAGE) -> int:
    """Free memory in blocks of at least one huge page, summed over the zones of `/proc/buddyinfo`'s
    text (each row counts the free blocks of 2^0, 2^1, ... pages of `page_size` bytes)."""
    huge_order = max(0, (huge_page // page_size).bit_length() - 1)
    total = 0
    for line in buddyinfo.splitlines():
        counts = line.split("zone", 1)[-1].split()[1:]  # drop the zone's name
        for order, count in enumerate(counts):
            if order >= huge_order and count.isdigit():
                total += int(count) << order
    return total * page_size


def worthwhile(
    enabled: str, defrag: str, buddyinfo: str, page_size: int = 4096, huge_page: int = HUGE_PAGE
) -> bool:
    """Whether huge pages for large tensors pay off, from the texts of the kernel's THP `enabled` and
    `defrag` settings and of `/proc/buddyinfo` (see the module docstring). torch asks for huge pages
    from 2 MiB up, so a larger huge page (arm64 with 16 or 64 KiB pages) would rarely be used: no."""
    if selected(enabled) not in ("always", "madvise") or huge_page > HUGE_PAGE:
        return False
    if selected(defrag) not in _STALLING_DEFRAG:
        return True
    return free_huge_bytes(buddyinfo, page_size, huge_page) >= MIN_FREE_HUGE_BYTES


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def huge_page_policy(environ: Mapping[str, str]) -> dict[str, str]:
    """{VARIABLE: "1"} where the policy turns huge pages on for this machine now, else {} (the
    caller sets it before torch is imported)."""
    if VARIABLE in environ or not sys.platform.startswith("linux"):
        return {}
    huge_page = _read(_THP / "hpage_pmd_size").strip()
    if not worthwhile(
        _read(_THP / "enabled"),
        _read(_THP / "defrag"),
        _read(_BUDDYINFO),
        os.sysconf("SC_PAGE_SIZE"),
        int(huge_page) if huge_page.isdigit() else HUGE_PAGE,
    ):
        return {}
    return {VARIABLE: "1"}
