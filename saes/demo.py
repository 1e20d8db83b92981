"""The SAE stage of `interp demo`: a small TopK SAE on the demo model's middle residual stream.

Registered (in pyproject) under the `interp.demo_stages` entry-point group as
`saes = "saes.demo:stage"`. It trains on the residual activations of the demo's own task prompts
(clean ones from the cache stage, corrupted ones from one forward that stops at the hook's block;
computed once, then shuffled in memory for every step), evaluates the SAE spliced into the model, and writes a density histogram.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from interp.demo import DemoContext, StageResult
from saes.config import SAEConfig, TrainConfig
from saes.evaluation import evaluate
from saes.report import density_figure, write_report
from saes.trainer import Trainer

FIGURE = "sae_density.png"


def stage(ctx: DemoContext) -> StageResult:
    """Train, evaluate and summarise a TopK SAE (about 100-300 steps on the CPU).

    Example:
        >>> result = stage(ctx)  # doctest: +SKIP
        >>> result.metrics["ce_loss_recovered"]  # doctest: +SKIP
    """
    model = ctx.model
    layer = model.cfg.n_layers // 2
    hook = f"blocks.{layer}.hook_resid_post"
    acts = _activations(ctx, hook, layer)  # [n * pos, d_model], computed once for every step
    batch_size = min(256, acts.shape[0] // 2)
    d = model.cfg.d_model
    cfg = SAEConfig("topk", d_in=d, d_sae=4 * d, k=8, hook_in=hook, model_name=ctx.model_name)
    steps = 100 if ctx.quick else 300
    train_cfg = TrainConfig(
        lr=2e-3,
        total_steps=steps,
        lr_warmup_steps=10,
        lr_decay_steps=steps // 5,
        seed=ctx.seed,
        dead_window_tokens=20 * batch_size,
        progress=False,
    )
    sae = Trainer(cfg, train_cfg).fit(_shuffled_rows(acts, batch_size, ctx.seed))
    result = evaluate(sae, model, ctx.batch.clean[:64], n_browse=16, n_contexts=6)
    density_figure(result.density, title=f"TopK SAE, {hook}").savefig(ctx.out / FIGURE)
    write_report(
        result, ctx.out / "sae", title=f"TopK SAE on {ctx.model_name} {hook}", extra={"hook_in": hook}
    )
    m = result.metrics
    ctx.shared["sae"] = sae
    text = (
        f"A TopK SAE (k=8, {cfg.d_sae} latents) trained for {steps} steps on `{hook}` over the task prompts "
        f"reconstructs it with FVU {m['fvu']:.3f} at L0 {m['l0']:.1f}; spliced into the model it recovers "
        f"{_fmt(m['ce_loss_recovered'])} of the next-token loss lost by zero-ablating the hook "
        f"(KL {m['kl_div']:.3f}); {m['dead_fraction']:.1%} of latents never fired."
    )
    return StageResult("Sparse autoencoder", m, figures=(FIGURE,), text=text)


def _activations(ctx: DemoContext, hook: str, layer: int) -> torch.Tensor:
    """Residual rows of the clean prompts (from the cache stage when it ran) and the corrupted ones
    (one forward, stopped after block `layer`): [n * pos, d_model]."""
    model, cached = ctx.model, ctx.shared.get("cache")
    with torch.no_grad():
        if cached is not None and hook in cached:
            clean = cached[hook]
        else:
            clean = model.run_with_cache(ctx.batch.clean, names=hook, stop_at_layer=layer + 1)[1][hook]
        corrupted = model.run_with_cache(ctx.batch.corrupted, names=hook, stop_at_layer=layer + 1)[1][hook]
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
