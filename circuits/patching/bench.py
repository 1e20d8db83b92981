"""Benchmark: a full `resid_pre` layer x position activation-patching sweep, ours against TransformerLens.

Setting: the tiny GPT-2 of `interp.bench` (4 layers, d_model 256, 4 heads, vocab 4096, random weights),
16 positions, one clean/corrupted pair (the usual notebook case) and a batch of 8 pairs, corrupted at
one position (3 by default); the metric is a logit difference at the last position. Contenders, all on the same weights:

- `ours`: `circuits.patching.activation_patching(..., "resid_pre")`, with prefix reuse
  (`circuits.patching.prefix`): each patched run recomputes only the layers and positions its patch
  can change, and the unembedding only where the metric reads.
- `ours_full_rows`: the same sweep with `prefix_reuse=False`: every patched copy runs in full, many
  copies per forward pass (plain batching).
- `transformer_lens`: `run_with_cache` on the clean input, then `patching.get_act_patch_resid_pre`
  (one forward per site; its progress bar is switched off so that it is not timed).
- `hf_forward`: one plain Hugging Face forward of the same batch, the unit the sweeps are measured in.

Each round times every contender once, in turn (interleaved); the speed-ups are medians over rounds of
that round's ratio, so a change of machine load between rounds does not skew them. Before timing, the
two sweeps' results are checked to agree with TransformerLens's (the maximum difference is reported).
Set OMP_WAIT_POLICY=PASSIVE before torch is imported; the load average is recorded.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from circuits.patching.activation import activation_patching
from interp import bench as hook_bench
from interp.hooked import HookedModel
from interp.io import package_versions


@dataclass(frozen=True)
class PatchingBenchConfig:
    """Model size, input shape and repetitions of the patching benchmark."""

    n_layer: int = 4
    d_model: int = 256
    n_head: int = 4
    vocab: int = 4096
    n_pos: int = 16
    pairs: tuple[int, ...] = (1, 8)
    """Batch sizes (clean/corrupted pairs per sweep) to time."""
    repeats: int = 7
    """Interleaved rounds; medians over them are reported."""
    differ_at: int = 3
    """The position where corrupted prompts differ from clean ones. Sites before it patch in what is
    already there and need no pass in our sweep (TransformerLens runs them anyway): 0 is our worst case."""
    seed: int = 0
    device: str = "cpu"


def _inputs(cfg: PatchingBenchConfig, batch: int) -> tuple[Tensor, Tensor]:
    """Clean prompts and corrupted copies that differ at position `cfg.differ_at`."""
    generator = torch.Generator().manual_seed(cfg.seed + batch)
    clean = torch.randint(1, cfg.vocab, (batch, cfg.n_pos), generator=generator)
    corrupted = clean.clone()
    corrupted[:, cfg.differ_at] = torch.randint(1, cfg.vocab, (batch,), generator=generator)
    return clean.to(cfg.device), corrupted.to(cfg.device)


def logit_diff(logits: Tensor) -> Tensor:
    """The benchmark's metric: logit of token 5 minus token 7 at the last position, batch mean."""
    return (logits[:, -1, 5] - logits[:, -1, 7]).mean()


@contextlib.contextmanager
def _quiet_transformer_lens() -> Iterator[None]:
    """TransformerLens's patching loop without its progress bar."""
    from transformer_lens import patching

    bar = patching.tqdm
    patching.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        patching.tqdm = bar


def contenders(
    hf: torch.nn.Module, model: HookedModel, tl: torch.nn.Module | None, clean: Tensor, corrupted: Tensor
) -> dict[str, Callable[[], Tensor]]:
    """Name -> a call that runs the sweep (or the reference forward) and returns its result."""

    def ours(prefix_reuse: bool) -> Callable[[], Tensor]:
        return lambda: (
            activation_patching(
                model,
                clean,
                corrupted,
                logit_diff,
                "resid_pre",
                normalise_metric=False,
                prefix_reuse=prefix_reuse,
            ).values
        )

    calls: dict[str, Callable[[], Tensor]] = {
        "hf_forward": lambda: hf(input_ids=corrupted, use_cache=False).logits,
        "ours": ours(True),
        "ours_full_rows": ours(False),
    }
    if tl is not None:
        from transformer_lens import patching

        def transformer_lens() -> Tensor:
            _, cache = tl.run_with_cache(clean)
            return patching.get_act_patch_resid_pre(tl, corrupted, cache, logit_diff)

        calls["transformer_lens"] = transformer_lens
    return calls


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(
    cfg: PatchingBenchConfig = PatchingBenchConfig(), progress: Callable[[str], None] | None = None
) -> dict:
    """Time every contender for each batch size; a JSON-ready dict of medians, speed-ups and checks."""
    load_before = os.getloadavg()
    hf = hook_bench._tiny_gpt2(
        hook_bench.BenchConfig(n_layer=cfg.n_layer, d_model=cfg.d_model, n_head=cfg.n_head, vocab=cfg.vocab),
        "eager",
    ).to(cfg.device)
    model = HookedModel(hf)
    tl = hook_bench.transformer_lens_gpt2(hf)
    if tl is not None:
        tl = tl.to(cfg.device)
    results: dict[str, Any] = {"config": asdict(cfg), "batches": {}}
    with torch.no_grad(), _quiet_transformer_lens() if tl is not None else contextlib.nullcontext():
        for batch in cfg.pairs:
            clean, corrupted = _inputs(cfg, batch)
            calls = contenders(hf, model, tl, clean, corrupted)
            reference = calls["transformer_lens"]() if tl is not None else calls["ours_full_rows"]()
            agreement = {
                name: float((calls[name]().cpu() - reference.cpu()).abs().max())
                for name in ("ours", "ours_full_rows")
            }
            samples: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(cfg.repeats):
                for name, call in calls.items():
                    gc.collect()
                    _sync(cfg.device)
                    start = time.perf_counter()
                    call()
                    _sync(cfg.device)
                    samples[name].append(time.perf_counter() - start)
            sweep = activation_patching(
                model, clean, corrupted, logit_diff, "resid_pre", normalise_metric=False
            )
            results["batches"][str(batch)] = {
                "median_seconds": {k: statistics.median(v) for k, v in samples.items()},
                "speedups": _speedups(samples),
                "forwards": {
                    k: statistics.median(v) / statistics.median(samples["hf_forward"])
                    for k, v in samples.items()
                },
                "max_abs_diff_vs_reference": agreement,
                "reference": "transformer_lens" if tl is not None else "ours_full_rows",
                "ours_forward_passes": sweep.meta["forward_passes"],
            }
            if progress is not None:
                progress(f"{batch} pair(s)")
    results["environment"] = {
        "device": str(torch.cuda.get_device_name(cfg.device)) if cfg.device.startswith("cuda") else "cpu",
        "threads": torch.get_num_threads(),
        "loadavg_1_5_15_before": list(load_before),
        "loadavg_1_5_15_after": list(os.getloadavg()),
        "versions": package_versions(("transformer-lens",)),
    }
    return results


def _speedups(samples: dict[str, list[float]]) -> dict[str, float]:
    """How many times faster `ours` (and `ours_full_rows`) ran than each other contender: median over
    rounds of the per-round time ratio."""
    out = {}
    for fast in ("ours", "ours_full_rows"):
        for slow in ("transformer_lens", "ours_full_rows"):
            if slow in samples and slow != fast:
                ratios = [s / f for s, f in zip(samples[slow], samples[fast], strict=True)]
                out[f"{fast}_vs_{slow}"] = statistics.median(ratios)
    return out


def table(results: dict[str, Any]) -> dict[str, Any]:
    """The results as a table spec for `interp bench` (title, columns, rows of strings)."""
    rows = []
    for batch, entry in results["batches"].items():
        median, speed = entry["median_seconds"], entry["speedups"]
        rows.append(
            [
                batch,
                f"{median['ours'] * 1e3:.1f}",
                f"{median['ours_full_rows'] * 1e3:.1f}",
                f"{median['transformer_lens'] * 1e3:.1f}" if "transformer_lens" in median else "-",
                f"{speed['ours_vs_transformer_lens']:.2f}x" if "ours_vs_transformer_lens" in speed else "-",
                f"{speed['ours_vs_ours_full_rows']:.2f}x",
                f"{entry['forwards']['ours']:.1f}",
                f"{max(entry['max_abs_diff_vs_reference'].values()):.1e}",
            ]
        )
    cfg = results["config"]
    return {
        "title": f"resid_pre patching sweep, {cfg['n_layer']} layers x {cfg['n_pos']} positions (medians)",
        "columns": [
            "pairs",
            "ours ms",
            "full rows ms",
            "TransformerLens ms",
            "ours vs TL",
            "ours vs full rows",
            "ours in HF forwards",
            "max |diff| vs TL",
        ],
        "rows": rows,
    }


def interp_bench(quick: bool = False) -> dict[str, Any]:
    """Entry point for `interp bench` (group `interp.benchmarks`): the results plus their table."""
    results = run(PatchingBenchConfig(repeats=3 if quick else 7))
    return {**results, "table": table(results)}
