"""Benchmark: the cost of caching every hook point, against a plain Hugging Face forward and TransformerLens.

Method: a tiny GPT-2 (4 layers, d_model 256, 4 heads, vocab 4096, random weights) at two shapes.
For each shape the contenders run interleaved (plain HF, ours caching every hook point, TransformerLens
`run_with_cache` on the same weights), `repeats` rounds, each round timing `inner` calls; ratios are
of medians. Set OMP_WAIT_POLICY=PASSIVE before torch is imported: spin-waiting threads otherwise
inflate small forwards many times over on a shared machine.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from interp.hooked import HookedModel

SHAPES = ((16, 128), (1, 16))


@dataclass(frozen=True)
class BenchConfig:
    n_layer: int = 4
    d_model: int = 256
    n_head: int = 4
    vocab: int = 4096
    repeats: int = 15
    seed: int = 0
    device: str = "cpu"


def _tiny_gpt2(cfg: BenchConfig, attn: str) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(cfg.seed)
    config = GPT2Config(
        n_layer=cfg.n_layer,
        n_embd=cfg.d_model,
        n_head=cfg.n_head,
        vocab_size=cfg.vocab,
        n_positions=256,
        bos_token_id=0,
        eos_token_id=0,
    )
    config._attn_implementation = attn
    return GPT2LMHeadModel(config).eval()


def transformer_lens_gpt2(hf_model: torch.nn.Module) -> torch.nn.Module | None:
    """TransformerLens's HookedTransformer with the same weights as a GPT-2 `hf_model`, converted offline
    (no hub), or None when transformer-lens is not installed. Used by the benchmark and the cross-checks."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
        from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
    except ImportError:
        return None
    c = hf_model.config
    cfg = HookedTransformerConfig(
        n_layers=c.n_layer,
        d_model=c.n_embd,
        n_heads=c.n_head,
        d_head=c.n_embd // c.n_head,
        d_mlp=4 * c.n_embd,
        n_ctx=c.n_positions,
        d_vocab=c.vocab_size,
        act_fn="gelu_new",
        normalization_type="LN",
        default_prepend_bos=False,
        eps=c.layer_norm_epsilon,
    )
    model = HookedTransformer(cfg)
    model.load_state_dict(convert_gpt2_weights(hf_model, cfg), strict=False)
    return model.eval()


def _contenders(
    hf: torch.nn.Module, model: HookedModel, tl: torch.nn.Module | None, ids: torch.Tensor
) -> dict[str, Callable[[], object]]:
    """What is timed: a plain HF forward, ours caching every hook point (and all but the pattern,
    which needs eager attention), and TransformerLens caching everything."""
    contenders: dict[str, Callable[[], object]] = {
        "hf": lambda: hf(input_ids=ids, use_cache=False),
        "ours_cache_all": lambda: model.run_with_cache(ids),
        "ours_cache_no_pattern": lambda: model.run_with_cache(ids, names=lambda n: "pattern" not in n),
    }
    if tl is not None:
        contenders["transformer_lens_cache_all"] = lambda: tl.run_with_cache(ids)
    return contenders


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], inner: int) -> float:
    _sync()
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    _sync()
    return (time.perf_counter() - start) / inner


def cache_overhead_bytes(model: HookedModel, ids: torch.Tensor) -> dict[str, float]:
    """Bytes the full cache keeps alive (distinct storages) against the bytes of the tensors it holds."""
    with torch.no_grad():
        _, cache = model.run_with_cache(ids)
    held = cache.nbytes()
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in cache.values()}
    return {
        "tensor_bytes": held,
        "storage_bytes": sum(storages.values()),
        "ratio": sum(storages.values()) / held,
    }


def run(cfg: BenchConfig = BenchConfig(), progress: Callable[[str], None] | None = None) -> dict:
    """Run the benchmark; returns a JSON-ready dict of timings (seconds, medians) and ratios."""
    results: dict = {
        "config": asdict(cfg),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "shapes": {},
    }
    for attn in ("sdpa", "eager"):
        hf = _tiny_gpt2(cfg, attn)
        tl = transformer_lens_gpt2(hf) if attn == "eager" else None
        hf, tl = hf.to(cfg.device), None if tl is None else tl.to(cfg.device)
        model = HookedModel(hf)
        for batch, pos in SHAPES:
            ids = torch.randint(0, cfg.vocab, (batch, pos), generator=torch.Generator().manual_seed(cfg.seed))
            ids = ids.to(cfg.device)
            inner = 3 if batch * pos > 1000 else 30
            contenders = _contenders(hf, model, tl, ids)
            samples: dict[str, list[float]] = {k: [] for k in contenders}
            with torch.no_grad():
                for fn in contenders.values():  # warm up
                    fn()
                for _ in range(cfg.repeats):
                    for name, fn in contenders.items():
                        gc.collect()
                        samples[name].append(_time(fn, inner))
            medians = {k: statistics.median(v) for k, v in samples.items()}
            entry = {
                "median_seconds": medians,
                "ratio_vs_hf": {k: v / medians["hf"] for k, v in medians.items() if k != "hf"},
                "n_hooks": len(model.hook_names()),
            }
            if attn == "eager":
                entry["memory"] = cache_overhead_bytes(model, ids)
            key = f"{batch}x{pos}/{attn}"
            results["shapes"][key] = entry
            if progress is not None:
                progress(key)
    return results
