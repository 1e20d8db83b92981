"""Benchmark: what `stop_at_layer` saves when only an early hook is needed.

Method: a random-init Llama-style model (24 blocks by default) at one shape. For each early layer L
the contenders run interleaved, `repeats` rounds: caching `blocks.{L}.hook_resid_post` with a full
forward, and the same with `stop_at_layer=L + 1`. The measured ratio (stopped / full, medians) is
reported beside the ideal (L + 1) / n_layers; the gap is the embedding, the mask and rotary set-up
that run once per forward whatever the depth. Also `interp bench --only stop_at_layer`.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from interp.hooked import HookedModel


@dataclass(frozen=True)
class StopBenchConfig:
    n_layers: int = 24
    d_model: int = 256
    n_heads: int = 4
    d_mlp: int = 688
    vocab: int = 4096
    batch: int = 4
    pos: int = 128
    layers: tuple[int, ...] = (1, 5, 11)
    repeats: int = 7
    device: str = "cpu"
    seed: int = 0


def _model(cfg: StopBenchConfig) -> HookedModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    config = LlamaConfig(
        num_hidden_layers=cfg.n_layers,
        hidden_size=cfg.d_model,
        num_attention_heads=cfg.n_heads,
        intermediate_size=cfg.d_mlp,
        vocab_size=cfg.vocab,
        max_position_embeddings=max(cfg.pos, 64),
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    config._attn_implementation = "sdpa"
    return HookedModel(LlamaForCausalLM(config).eval().to(cfg.device))


def _time(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(cfg: StopBenchConfig = StopBenchConfig()) -> dict[str, Any]:
    """JSON-ready results: per layer, median seconds of both contenders, measured and ideal ratios."""
    model = _model(cfg)
    ids = torch.randint(0, cfg.vocab, (cfg.batch, cfg.pos), generator=torch.Generator().manual_seed(cfg.seed))
    ids = ids.to(cfg.device)
    results: dict[str, Any] = {"config": asdict(cfg), "torch": torch.__version__, "layers": {}}
    with torch.no_grad():
        for layer in cfg.layers:
            name = f"blocks.{layer}.hook_resid_post"
            contenders = {
                "full": lambda name=name: model.run_with_cache(ids, names=name),
                "stopped": lambda name=name, layer=layer: model.run_with_cache(
                    ids, names=name, stop_at_layer=layer + 1
                ),
            }
            for fn in contenders.values():
                fn()  # warm up
            samples: dict[str, list[float]] = {k: [] for k in contenders}
            for _ in range(cfg.repeats):
                for key, fn in contenders.items():
                    gc.collect()
                    samples[key].append(_time(fn))
            medians = {k: statistics.median(v) for k, v in samples.items()}
            results["layers"][str(layer)] = {
                "median_seconds": medians,
                "ratio": medians["stopped"] / medians["full"],
                "ideal_ratio": (layer + 1) / cfg.n_layers,
            }
    return results


def table(results: dict[str, Any]) -> dict[str, Any]:
    n = results["config"]["n_layers"]
    rows = [
        [f"blocks.{layer}.hook_resid_post", f"{entry['ratio']:.3f}", f"{entry['ideal_ratio']:.3f}"]
        for layer, entry in results["layers"].items()
    ]
    return {
        "title": f"stop_at_layer: cache one early hook, time / full forward ({n} blocks, medians)",
        "columns": ["hook cached", "measured ratio", "ideal (layer+1)/n_layers"],
        "rows": rows,
    }


def interp_bench(quick: bool = False) -> dict[str, Any]:
    """Entry point for `interp bench` (group `interp.benchmarks`): the results plus their table."""
    results = run(StopBenchConfig(repeats=3 if quick else 7))
    return {**results, "table": table(results)}
