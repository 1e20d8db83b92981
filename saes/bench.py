"""Benchmark: TopK SAE training throughput (tokens per second), ours against SAELens and a dense step.

Setting (the issue's): d_in 256, 16x expansion (d_sae 4096), k 32, batch 4096, float32, random
Gaussian activations (a pool of 4 batches, cycled). Contenders, each one optimiser step per batch:

- `ours`: `saes.Trainer`'s full step with the sparse TopK path (`saes.sparse`): LR warm-up and decay
  schedule, sparsity-coefficient warm-up, dead-latent tracking and AuxK, decoder-norm gradient
  projection and renormalisation, gradient clipping, Adam, metrics every `log_every` steps.
- `ours_dense`: the same trainer with `sparse_topk=False` (the dense reference path).
- `saelens`: SAELens's `TopKTrainingSAE` driven by `SAETrainer._train_step` (its training forward
  pass and loss, dead-neuron bookkeeping, backward, clipping, Adam, schedulers), default settings.
- `saelens_sparse_acts`: the same with `use_sparse_activations=True` (SAELens's sparse-COO decode;
  with `rescale_acts_by_decoder_norm=False`, since its backward fails with the rescaling on).
- `dense_minimal`: encode, top-k, scatter to a dense code, decode, MSE, backward, Adam step.
- `sparse_minimal`: the same with `saes.sparse` instead of the scatter and dense decode.

Contenders run interleaved: `repeats` rounds, each timing `inner` consecutive steps of every
contender in turn; tokens/s come from the median step time, and the reported speed-ups (`ratios`) are
medians over rounds of each round's ratio, which a load change between rounds does not skew
(`ratios_of_medians` has the plain ratios of the medians). Set OMP_WAIT_POLICY=PASSIVE before torch
is imported (spinning OpenMP threads distort timings on a shared machine). The machine's load
average is recorded at the start and the end, since it moves the absolute numbers a lot.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from torch import Tensor

from saes import sparse
from saes.config import SAEConfig, TrainConfig
from saes.trainer import Trainer

Step = Callable[[Tensor], object]


@dataclass(frozen=True)
class SAEBenchConfig:
    """Sizes and repetitions of the TopK training benchmark."""

    d_in: int = 256
    """Activation width."""
    expansion: int = 16
    """d_sae / d_in."""
    k: int = 32
    """Active latents per token."""
    batch: int = 4096
    """Activations per optimiser step."""
    repeats: int = 7
    """Interleaved rounds (medians over these)."""
    inner: int = 3
    """Consecutive steps timed per contender and round."""
    lr: float = 1e-4
    """Adam learning rate for every contender."""
    seed: int = 0
    """Seed of the data and of every initialisation."""
    saelens: bool = True
    """Include SAELens's contenders (when sae-lens, a dev extra, is installed)."""
    device: str = "cpu"
    """Where every contender runs (e.g. "cuda"); CUDA timings synchronise before reading the clock."""

    @property
    def d_sae(self) -> int:
        """Dictionary size."""
        return self.d_in * self.expansion


# ---- contenders -------------------------------------------------------------------------------------
def ours(cfg: SAEBenchConfig, first: Tensor, *, sparse_topk: bool = True) -> Step:
    """A `saes.Trainer` step, exactly what `Trainer.fit` runs per batch, after a one-batch `fit` that
    estimates the input scale and b_dec."""
    sae_cfg = SAEConfig("topk", d_in=cfg.d_in, d_sae=cfg.d_sae, k=cfg.k, sparse_topk=sparse_topk)
    tc = TrainConfig(
        lr=cfg.lr,
        batch_size=cfg.batch,
        total_steps=1_000_000,
        lr_warmup_steps=1_000,
        lr_decay_steps=100_000,
        sparsity_warmup_steps=1_000,
        seed=cfg.seed,
        progress=False,
    )
    trainer = Trainer(sae_cfg, tc, device=cfg.device)
    trainer.fit([first])
    trainer.sae.train()
    bar = _NoBar()

    def step(x: Tensor) -> object:
        x, target, grad = trainer._unpack(x)
        terms = trainer._train_step(x, target, grad)
        trainer._after_step(terms, x.shape[0], bar, None)
        return terms

    return step


def saelens(cfg: SAEBenchConfig, *, sparse_acts: bool = False) -> Step:
    """SAELens's own TopK training step: `SAETrainer._train_step` on a `TopKTrainingSAE`."""
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(cfg.seed)
    sae_cfg = TopKTrainingSAEConfig(
        d_in=cfg.d_in,
        d_sae=cfg.d_sae,
        k=cfg.k,
        dtype="float32",
        device=cfg.device,
        use_sparse_activations=sparse_acts,
        # its sparse-COO backward fails with decoder-norm rescaling on (torch 2.13: no sparse `view`)
        rescale_acts_by_decoder_norm=not sparse_acts,
    )
    sae = TopKTrainingSAE(sae_cfg)
    trainer_cfg = SAETrainerConfig(
        total_training_samples=1_000_000 * cfg.batch,
        train_batch_size_samples=cfg.batch,
        lr=cfg.lr,
        lr_end=cfg.lr / 10,
        lr_warm_up_steps=1_000,
        lr_decay_steps=100_000,
        device=cfg.device,
    )
    trainer = SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=iter(()))

    def step(x: Tensor) -> object:
        out = trainer._train_step(sae=sae, sae_in=x)
        trainer.n_training_steps += 1
        trainer.n_training_samples += x.shape[0]
        return out

    return step


def minimal(cfg: SAEBenchConfig, *, sparse_path: bool) -> Step:
    """A bare TopK SAE step in plain PyTorch: dense scatter + matmul decode, or `saes.sparse`."""
    g = torch.Generator().manual_seed(cfg.seed)
    W_dec = torch.nn.functional.normalize(torch.randn(cfg.d_sae, cfg.d_in, generator=g), dim=-1).to(
        cfg.device
    )
    W_enc = torch.nn.Parameter(W_dec.T.clone().contiguous())  # [d_in, d_sae]
    W_dec = torch.nn.Parameter(W_dec)  # [d_sae, d_in]
    b_enc = torch.nn.Parameter(torch.zeros(cfg.d_sae, device=cfg.device))
    b_dec = torch.nn.Parameter(torch.zeros(cfg.d_in, device=cfg.device))
    opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=cfg.lr)

    def select(pre: Tensor) -> Tensor:
        return pre.topk(cfg.k, dim=-1, sorted=False).indices

    def step(x: Tensor) -> object:
        if sparse_path:
            vals, bags = sparse.topk_encode(x, W_enc, b_enc, b_dec, select)  # vals: [batch, k]
            recon = sparse.topk_decode(vals.relu(), bags, W_dec, b_dec)
        else:
            pre = (x - b_dec) @ W_enc + b_enc  # [batch, d_sae]
            vals, idx = pre.topk(cfg.k, dim=-1, sorted=False)
            acts = torch.zeros_like(pre).scatter(-1, idx, vals.relu())
            recon = acts @ W_dec + b_dec  # [batch, d_in]
        loss = (recon - x).pow(2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def encoder_floor(cfg: SAEBenchConfig) -> Step:
    """Not a training step: the encoder matmul and the top-k alone, which every contender pays."""
    g = torch.Generator().manual_seed(cfg.seed)
    W_enc = (torch.randn(cfg.d_in, cfg.d_sae, generator=g) / cfg.d_in**0.5).to(cfg.device)
    b_enc = torch.zeros(cfg.d_sae, device=cfg.device)

    def step(x: Tensor) -> object:
        return torch.addmm(b_enc, x, W_enc).topk(cfg.k, dim=-1, sorted=False)

    return step


# ---- the run ------------------------------------------------------------------------------------------
def contenders(cfg: SAEBenchConfig, first: Tensor) -> dict[str, Step]:
    """Every contender's step function, built (and warmed) in a fixed order."""
    out: dict[str, Step] = {
        "ours": ours(cfg, first),
        "ours_dense": ours(cfg, first, sparse_topk=False),
        "dense_minimal": minimal(cfg, sparse_path=False),
        "sparse_minimal": minimal(cfg, sparse_path=True),
        "encoder_floor": encoder_floor(cfg),
    }
    if cfg.saelens:
        try:
            out["saelens"] = saelens(cfg)
            out["saelens_sparse_acts"] = saelens(cfg, sparse_acts=True)
        except ImportError:  # sae-lens is a dev extra
            pass
    return out


def run(cfg: SAEBenchConfig = SAEBenchConfig(), progress: Callable[[str], None] | None = None) -> dict:
    """Time every contender interleaved; returns a JSON-ready dict (seconds per step, tokens/s, ratios).

    Example:
        >>> results = run(SAEBenchConfig(repeats=3))  # doctest: +SKIP
        >>> results["ratios"]["ours_vs_dense_minimal"]  # doctest: +SKIP
    """
    g = torch.Generator().manual_seed(cfg.seed)
    pool = [torch.randn(cfg.batch, cfg.d_in, generator=g).to(cfg.device) for _ in range(4)]
    load_before = os.getloadavg()
    steps = contenders(cfg, pool[0])
    batches = _cycle(pool)
    for fn in steps.values():  # warm up: allocator, Adam state, lazy imports
        fn(next(batches))
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(cfg.repeats):
        gc.collect()
        for name, fn in steps.items():
            samples[name].append(_time_steps(fn, batches, cfg.inner))
        if progress is not None:
            progress(f"round {r + 1}/{cfg.repeats}")
    median = {name: statistics.median(v) for name, v in samples.items()}
    tokens_per_s = {name: cfg.batch / s for name, s in median.items() if name != "encoder_floor"}
    return {
        "config": {**dataclasses.asdict(cfg), "d_sae": cfg.d_sae},
        "environment": _environment(load_before),
        "median_seconds_per_step": median,
        "tokens_per_second": tokens_per_s,
        "ratios": _ratios(samples, per_round=True),
        "ratios_of_medians": _ratios({name: [s] for name, s in median.items()}, per_round=False),
        "encoder_floor_fraction_of_ours": median["encoder_floor"] / median["ours"],
        "samples_seconds_per_step": samples,
    }


def table(results: dict[str, Any]) -> dict[str, Any]:
    """The results as a table (`title`, `columns`, `rows` of strings) for `interp bench` to print."""
    cfg = results["config"]
    rows = [
        [name, f"{tps:,.0f}", f"{results['median_seconds_per_step'][name] * 1e3:.0f}"]
        for name, tps in results["tokens_per_second"].items()
    ]
    rows += [[name, f"{ratio:.2f}x", ""] for name, ratio in results["ratios"].items()]
    title = (
        f"TopK SAE training, d_in {cfg['d_in']}, d_sae {cfg['d_sae']}, k {cfg['k']}, batch {cfg['batch']} "
        f"(medians of {cfg['repeats']} interleaved rounds)"
    )
    return {"title": title, "columns": ["contender / ratio", "tokens/s", "ms/step"], "rows": rows}


def interp_bench(quick: bool = False) -> dict[str, Any]:
    """Entry point for `interp bench` (group `interp.benchmarks`): the results plus their table."""
    results = run(SAEBenchConfig(repeats=3 if quick else 7))
    return {**results, "table": table(results)}


# ---- helpers ------------------------------------------------------------------------------------------
class _NoBar:
    """Stands in for the trainer's progress bar."""

    def set_postfix(self, *_: Any) -> None: ...

    def update(self, *_: Any) -> None: ...


def _cycle(pool: list[Tensor]) -> Iterator[Tensor]:
    while True:
        yield from pool


def _time_steps(fn: Step, batches: Iterator[Tensor], inner: int) -> float:
    """Seconds per step over `inner` steps, with the cyclic garbage collector paused (as `timeit` does)."""
    gc.disable()
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(inner):
            fn(next(batches))
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / inner
    finally:
        gc.enable()


RATIO_PAIRS = (
    ("ours", "dense_minimal"),
    ("ours", "saelens"),
    ("ours", "saelens_sparse_acts"),
    ("ours", "ours_dense"),
    ("sparse_minimal", "dense_minimal"),
    ("saelens", "dense_minimal"),
)
"""(a, b) pairs reported as `a_vs_b`: how many times a's tokens/s is b's."""


def _ratios(samples: dict[str, list[float]], per_round: bool) -> dict[str, float]:
    """Speed-ups t_b / t_a; with `per_round`, the median over rounds of each round's ratio (robust to
    the machine's load drifting between rounds), else of the single values given."""
    out = {}
    for a, b in RATIO_PAIRS:
        if a in samples and b in samples:
            ratios = [tb / ta for ta, tb in zip(samples[a], samples[b], strict=True)]
            out[f"{a}_vs_{b}"] = statistics.median(ratios) if per_round else ratios[0]
    return out


def _environment(load_before: tuple[float, float, float]) -> dict[str, Any]:
    try:
        sae_lens_version = version("sae-lens")
    except PackageNotFoundError:
        sae_lens_version = None
    return {
        "torch": torch.__version__,
        "sae_lens": sae_lens_version,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_1_5_15_before": list(load_before),
        "loadavg_1_5_15_after": list(os.getloadavg()),
    }
