"""The allocator policy: applied only where the user chose nothing, and harmless elsewhere."""

from __future__ import annotations

import platform
import sys

import pytest
import torch

from interp import allocator
from interp.threads import apply_thread_policy


@pytest.mark.parametrize(
    "environ",
    [
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
        {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
    ],
)
def test_a_users_choice_is_kept(environ: dict[str, str]) -> None:
    assert allocator.user_chose_allocator(environ)
    assert allocator.keep_freed_memory(environ) == {}


def test_unrelated_variables_are_no_choice() -> None:
    assert not allocator.user_chose_allocator(
        {"GLIBC_TUNABLES": "glibc.rtld.nns=2", "LD_PRELOAD": "libfoo.so"}
    )


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="a glibc policy"
)
def test_policy_applies_on_glibc_and_results_are_unchanged() -> None:
    x = torch.randn(64, 1024, generator=torch.Generator().manual_seed(0))
    before = (x @ x.T).tanh()
    chosen = allocator.keep_freed_memory({})
    assert chosen == {"M_MMAP_THRESHOLD": 32 << 20, "M_TRIM_THRESHOLD": 256 << 20}
    for _ in range(3):  # large blocks freed and taken again from the kept heap
        big = torch.ones(8 << 20)
        del big
    assert torch.equal((x @ x.T).tanh(), before)


def test_thread_policy_on_a_given_environment_sets_only_variables() -> None:
    environ: dict[str, str] = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    assert apply_thread_policy(environ) == {}  # torch is imported here and the user chose both
    assert environ == {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def test_opting_out_is_kept() -> None:
    assert allocator.keep_freed_memory({"INTERP_KEEP_FREED_MEMORY": "0"}) == {}
