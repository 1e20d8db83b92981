"""The huge-page policy: on only where the kernel serves huge pages without stalling; a user's choice kept;
results unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from interp import huge_pages

# /proc/buddyinfo rows: free blocks of 2^0 .. 2^10 pages of 4 KiB
PLENTY = """Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3
Node 0, zone    DMA32      2      4      2      2      1      2      0      3      3      1    753
Node 0, zone   Normal  25785  14083   7152   4714   2268   1173    431   1089    874    615   1850
"""
FRAGMENTED = """Node 0, zone   Normal  91234  40211  12001   3012    870    120     31      9      2      3      1
"""


def test_free_huge_bytes_counts_only_blocks_of_2_mib_and_more() -> None:
    assert huge_pages.free_huge_bytes(FRAGMENTED) == (3 * 2 + 1 * 4) << 20
    plenty = (1 * 2 + 3 * 4) + (1 * 2 + 753 * 4) + (615 * 2 + 1850 * 4)  # MiB, zone by zone
    assert huge_pages.free_huge_bytes(PLENTY) == plenty << 20


@pytest.mark.parametrize(
    ("enabled", "defrag", "buddyinfo", "expected"),
    [
        ("always [madvise] never", "always defer defer+madvise [madvise] never", PLENTY, True),
        ("always [madvise] never", "always defer defer+madvise [madvise] never", FRAGMENTED, False),
        ("[always] madvise never", "always [defer] defer+madvise madvise never", FRAGMENTED, True),
        ("always madvise [never]", "always defer defer+madvise [madvise] never", PLENTY, False),
        ("", "", "", False),  # no THP support in the kernel: nothing to read
    ],
)
def test_worthwhile(enabled: str, defrag: str, buddyinfo: str, expected: bool) -> None:
    assert huge_pages.worthwhile(enabled, defrag, buddyinfo) is expected


def test_larger_huge_pages_than_torchs_threshold_are_not_used() -> None:
    enabled, defrag = "[always] madvise never", "always [defer] defer+madvise madvise never"
    assert huge_pages.worthwhile(enabled, defrag, PLENTY, page_size=4096, huge_page=2 << 20)
    assert not huge_pages.worthwhile(enabled, defrag, PLENTY, page_size=64 << 10, huge_page=512 << 20)
    # in 16 KiB pages a 2 MiB block is order 7
    assert huge_pages.free_huge_bytes(FRAGMENTED, page_size=16 << 10) == (
        9 * 2**7 + 2 * 2**8 + 3 * 2**9 + 2**10
    ) * (16 << 10)


def test_a_users_choice_is_kept() -> None:
    assert huge_pages.huge_page_policy({"THP_MEM_ALLOC_ENABLE": "0"}) == {}
    assert huge_pages.huge_page_policy({"THP_MEM_ALLOC_ENABLE": "1"}) == {}


PROBE = """
import hashlib, json, os
from interp.threads import apply_thread_policy
apply_thread_policy()
import torch
g = torch.Generator().manual_seed(0)
a, b = torch.randn(512, 2048, generator=g), torch.randn(2048, 1024, generator=g)
out = (a @ b).tanh() @ b.T  # tensors of 2-8 MiB: huge-page candidates
print(json.dumps({"thp": os.environ.get("THP_MEM_ALLOC_ENABLE"), "page_aligned": a.data_ptr() % 4096 == 0,
                  "digest": hashlib.sha256(out.numpy().tobytes()).hexdigest()}))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="transparent huge pages are Linux's")
def test_policy_reaches_torch_and_leaves_results_unchanged() -> None:
    chosen = _probe()
    expected = huge_pages.huge_page_policy({}).get("THP_MEM_ALLOC_ENABLE")
    assert chosen["thp"] == expected
    on, off = _probe(THP_MEM_ALLOC_ENABLE="1"), _probe(THP_MEM_ALLOC_ENABLE="0")
    assert on["thp"] == "1" and off["thp"] == "0"  # the user's value, kept
    assert on["page_aligned"]  # torch read the variable: large tensors start on a page boundary
    assert on["digest"] == off["digest"] == chosen["digest"]  # same kernels, same bits
