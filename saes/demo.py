"""The SAE stage of `interp demo`: a small TopK SAE on the demo model's middle residual stream.

Registered (in pyproject) under the `interp.demo_stages` entry-point group as
`20_sae = "saes.demo:stage"`. It takes the cache stage's `CachedRun` and trains on the residual
activations of the demo's own task prompts (clean ones from that cache, corrupted ones from one
forward that stops at the hook's block; computed once, then shuffled in memory for every step),
evaluates the SAE spliced into the model, and writes a density histogram. The trained SAE is the
result's `value`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from interp.demo import CachedRun, StageResult
from interp.io import atomic_write_bytes
from saes.architectures import SparseAutoencoder
from saes.config import SAEConfig, TrainConfig
from saes.evaluation import evaluate
from saes.report import DENSITY_FILENAME, write_report
from saes.trainer import Trainer

FIGURE = "sae_density.png"


def stage(run: CachedRun) -> StageResult[SparseAutoencoder]:
    """Train, evaluate and summarise a TopK SAE (about 100-300 steps on the CPU).

    Example:
        >>> result = stage(run)  # doctest: +SKIP
        >>> result.metrics["ce_loss_recovered"], result.value.cfg.hook_in  # doctest: +SKIP
    """
    inputs = run.inputs
    model = inputs.model
    layer = model.cfg.n_layers // 2
    hook = f"blocks.{layer}.hook_resid_post"
    acts = _activations(run, hook, layer)  # [n * pos, d_model], computed once for every step
    batch_size = min(256, acts.shape[0] // 2)
    d = model.cfg.d_model
    cfg = SAEConfig("topk", d_in=d, d_sae=4 * d, k=8, hook_in=hook, model_name=inputs.model_name)
    steps = 100 if inputs.quick else 300
    train_cfg = TrainConfig(
        lr=2e-3,
        total_steps=steps,
        lr_warmup_steps=10,
        lr_decay_steps=steps // 5,
        seed=inputs.seed,
        dead_window_tokens=20 * batch_size,
        progress=False,
    )
    sae = Trainer(cfg, train_cfg).fit(_shuffled_rows(acts, batch_size, inputs.seed))
    result = evaluate(sae, model, inputs.batch.clean[:64], n_browse=16, n_contexts=6)
    folder = write_report(
        result, inputs.out / "sae", title=f"TopK SAE on {inputs.model_name} {hook}", extra={"hook_in": hook}
    )
    atomic_write_bytes(inputs.out / FIGURE, (folder / DENSITY_FILENAME).read_bytes())  # drawn once
    m = result.metrics
    text = (
        f"A TopK SAE (k=8, {cfg.d_sae} latents) trained for {steps} steps on `{hook}` over the task prompts "
        f"reconstructs it with FVU {m['fvu']:.3f} at L0 {m['l0']:.1f}; spliced into the model it recovers "
        f"{_fmt(m['ce_loss_recovered'])} of the next-token loss lost by zero-ablating the hook "
        f"(KL {m['kl_div']:.3f}); {m['dead_fraction']:.1%} of latents never fired."
    )
    return StageResult("Sparse autoencoder", m, figures=(FIGURE,), text=text, value=sae)


def _activations(run: CachedRun, hook: str, layer: int) -> torch.Tensor:
    """Residual rows of the clean prompts (from the cache stage's pass) and the corrupted ones
    (one forward, stopped after block `layer`): [n * pos, d_model]."""
    model, batch = run.inputs.model, run.inputs.batch
    with torch.no_grad():
        if hook in run.cache:
            clean = run.cache[hook]
        else:
            clean = model.run_with_cache(batch.clean, names=hook, stop_at_layer=layer + 1)[1][hook]
        corrupted = model.run_with_cache(batch.corrupted, names=hook, stop_at_layer=layer + 1)[1][hook]
    return torch.cat([clean.to(corrupted.device), corrupted]).flatten(0, 1).float()


def _shuffled_rows(acts: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless shuffled batches [batch_size, d] of the rows of `acts` (reshuffled each pass)."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(acts.shape[0], generator=gen).to(acts.device)
        for start in range(0, acts.shape[0] - batch_size + 1, batch_size):
            yield acts[perm[start : start + batch_size]]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
