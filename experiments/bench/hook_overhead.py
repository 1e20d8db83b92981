"""Hook overhead as a user meets it: the whole `run_with_cache` call, the cache kept alive, a fresh model per run.

Independent of `interp.bench` (which times back-to-back calls on one warmed-up model and drops each
result at once). Here every run builds a fresh model from the same weights, then times `calls`
consecutive calls, keeping every output alive until the run ends (as a loop that collects caches
does). Contenders, interleaved run by run, medians of the per-call time over runs:

- `hf`: the plain Hugging Face forward (default attention implementation), logits kept;
- `hf_eager`: the same with eager attention (what caching `hook_pattern` needs);
- `cache_all`: `model.run_with_cache(ids)`, every hook point, caches kept;
- `cache_all_dropped`: the same, each cache dropped at once (the `interp bench` setting);
- `cache_no_pattern`: every hook point except `attn.hook_pattern` (no switch to eager attention);
- `torch_hooks`: the floor of any implementation built on PyTorch hooks that are removed after every
  call (DESIGN: a model is never left hooked): eager attention (the pattern must be materialised), and
  on every site `run_with_cache` hooks (39 on this model) a PyTorch hook that does nothing, registered
  before and removed after each call; logits kept. It caches nothing, so it also leaves out the cost
  of fresh memory for a kept cache, which `cache_all` minus `cache_all_dropped` measures.

Ratios are against `hf`. Targets: `cache_all` <= 1.10x at 16x128 and <= 1.15x at 1x16.

Every run starts from the same allocator state: before it, garbage is collected and glibc is asked to
return freed memory to the system (`malloc_trim`), as in a fresh process. Without that, a run's cost
depended on the contender before it: a kept cache grows the heap, and whichever run came next
reused those already-mapped pages for free while the others faulted in fresh ones (one run had
`cache_no_pattern` at 0.90x of `hf`, doing strictly more work). Minor page faults, system
seconds and this process's CPU seconds per call are recorded beside the wall-clock times; on a shared
machine the CPU time (which leaves out time the process waited for a core) is the steadier figure.

OMP_WAIT_POLICY=PASSIVE python experiments/bench/hook_overhead.py [--runs 15] [--device cuda] [--out F]
"""

from __future__ import annotations

import os

from interp.threads import apply_thread_policy

apply_thread_policy()  # the CLI's policy (passive waiting, threads <= free cores, huge pages), before torch

import argparse  # noqa: E402
import ctypes  # noqa: E402
import ctypes.util  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from interp.hooked import HookedModel  # noqa: E402
from interp.io import atomic_write_text, package_versions  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "hook_overhead.json"
SHAPES = ((16, 128), (1, 16))


def _config() -> GPT2Config:
    return GPT2Config(
        n_layer=4, n_embd=256, n_head=4, vocab_size=4096, n_positions=256, bos_token_id=0, eos_token_id=0
    )


def _fresh(state: dict, device: str, attn: str | None) -> GPT2LMHeadModel:
    cfg = _config()
    if attn is not None:
        cfg._attn_implementation = attn
    model = GPT2LMHeadModel(cfg)
    model.load_state_dict(state)
    return model.to(device).eval()


def _libc_trim() -> Callable[[], object]:
    """glibc's `malloc_trim(0)` (returns freed heap memory to the system), or a no-op elsewhere."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


_TRIM = _libc_trim()


def _usage() -> tuple[int, float]:
    """Minor page faults and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_stime


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _contenders(state: dict, device: str) -> dict[str, Callable[[], Callable[[torch.Tensor], object]]]:
    """name -> a factory building a fresh model and returning the call to time."""

    def hf(attn: str | None):
        def make():
            model = _fresh(state, device, attn)
            return lambda ids: model(input_ids=ids, use_cache=False).logits

        return make

    def ours(names, keep: bool):
        def make():
            model = HookedModel(_fresh(state, device, None))

            def call(ids):
                out = model.run_with_cache(ids, names=names)
                return out if keep else None

            return call

        return make

    def torch_hooks():
        def make():
            model = _fresh(state, device, "eager")
            hooked = HookedModel(model)
            placement = hooked._install([(n, _ignore) for n in hooked.hook_names()], read_only=True)
            sites = [(hooked.module(site.path), site.io) for site in placement.sites]
            placement.remove()

            def call(ids):
                handles = [
                    module.register_forward_pre_hook(_ignore_pre, with_kwargs=True)
                    if io == "in"
                    else module.register_forward_hook(_ignore_post)
                    for module, io in sites
                ]
                try:
                    return model(input_ids=ids, use_cache=False).logits
                finally:
                    for handle in handles:
                        handle.remove()

            return call

        return make

    return {
        "hf": hf(None),
        "hf_eager": hf("eager"),
        "cache_all": ours(None, True),
        "cache_all_dropped": ours(None, False),
        "cache_no_pattern": ours(lambda n: "pattern" not in n, True),
        "torch_hooks": torch_hooks(),
    }


def _ignore(tensor: torch.Tensor) -> None:
    return None


def _ignore_pre(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
    return None


def _ignore_post(module: torch.nn.Module, args: tuple, output: object) -> None:
    return None


def _one_run(make: Callable, ids: torch.Tensor, calls: int, device: str) -> dict[str, float]:
    """Per call: wall seconds, process CPU seconds, minor page faults and system seconds (mostly the
    kernel providing those pages), over `calls` calls on a fresh model, every output kept until the
    end; the allocator starts from the same state each time (see the module docstring)."""
    fn = make()
    kept = []
    gc.collect()
    _TRIM()
    _sync(device)
    faults, system = _usage()
    cpu = time.process_time()
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(calls):
            kept.append(fn(ids))
        _sync(device)
    seconds = (time.perf_counter() - start) / calls
    cpu = (time.process_time() - cpu) / calls
    faults_after, system_after = _usage()
    del kept
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "page_faults": (faults_after - faults) / calls,
        "system_seconds": (system_after - system) / calls,
    }


def _medians(samples: dict[str, list[dict[str, float]]], key: str) -> dict[str, float]:
    return {name: statistics.median(run[key] for run in runs) for name, runs in samples.items()}


def run(runs: int, device: str, calls_big: int, calls_small: int) -> dict:
    torch.manual_seed(0)
    state = GPT2LMHeadModel(_config()).state_dict()
    contenders = _contenders(state, device)
    results: dict = {
        "method": (
            "fresh model per run; whole run_with_cache call timed; outputs kept alive; freed memory returned "
            "to the system (malloc_trim) before each run; interleaved; medians"
        ),
        "device": device,
        "threads": torch.get_num_threads(),
        "huge_pages": os.environ.get("THP_MEM_ALLOC_ENABLE"),  # the thread policy's choice, or the user's
        "versions": package_versions(),
        "loadavg_before": os.getloadavg(),
        "shapes": {},
    }
    for batch, pos in SHAPES:
        ids = torch.randint(0, 4096, (batch, pos), generator=torch.Generator().manual_seed(0)).to(device)
        calls = calls_big if batch * pos > 1000 else calls_small
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in contenders}
        for make in contenders.values():  # warm up kernels and imports once
            _one_run(make, ids, 1, device)
        for _ in range(runs):
            for name, make in contenders.items():
                samples[name].append(_one_run(make, ids, calls, device))
        med, cpu = _medians(samples, "seconds"), _medians(samples, "cpu_seconds")
        shape = results["shapes"][f"{batch}x{pos}"] = {
            "calls_per_run": calls,
            "median_seconds_per_call": med,
            "median_cpu_seconds_per_call": cpu,
            "median_page_faults_per_call": _medians(samples, "page_faults"),
            "median_system_seconds_per_call": _medians(samples, "system_seconds"),
            "ratio_vs_hf": {k: v / med["hf"] for k, v in med.items() if k != "hf"},
            "cpu_ratio_vs_hf": {k: v / cpu["hf"] for k, v in cpu.items() if k != "hf"},
            # each round's contenders run within seconds of each other: on a shared machine this
            # ratio moves less with other processes' load than the ratio of medians above
            "median_ratio_per_round": {
                k: statistics.median(
                    a["seconds"] / b["seconds"] for a, b in zip(v, samples["hf"], strict=True)
                )
                for k, v in samples.items()
                if k != "hf"
            },
        }
        # what no PyTorch-hook implementation can go below under this protocol: the hooks themselves,
        # eager attention, and fresh pages for the activations a kept cache holds
        fresh_pages = cpu["cache_all"] - cpu["cache_all_dropped"]  # what keeping the cache adds
        shape["cpu_floor_vs_hf"] = (cpu["torch_hooks"] + fresh_pages) / cpu["hf"]
        print(f"{batch}x{pos} wall", {k: round(v, 3) for k, v in shape["ratio_vs_hf"].items()}, flush=True)
        print("  per round", {k: round(v, 3) for k, v in shape["median_ratio_per_round"].items()}, flush=True)
        print("  cpu", {k: round(v, 3) for k, v in shape["cpu_ratio_vs_hf"].items()}, flush=True)
        print(f"  cpu floor for PyTorch hooks, cache kept: {shape['cpu_floor_vs_hf']:.3f}", flush=True)
    results["loadavg_after"] = os.getloadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="fresh-model runs per contender (medians)")
    parser.add_argument("--calls", type=int, default=4, help="calls per run at 16x128")
    parser.add_argument("--calls-small", type=int, default=20, help="calls per run at 1x16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"default {OUT} (or hook_overhead_<device>.json)"
    )
    args = parser.parse_args()
    out = args.out or (
        OUT if args.device == "cpu" else OUT.with_name(f"hook_overhead_{args.device.split(':')[0]}.json")
    )
    results = run(args.runs, args.device, args.calls, args.calls_small)
    atomic_write_text(out, json.dumps(results, indent=2))
    print("wrote", out)


if __name__ == "__main__":
    main()
