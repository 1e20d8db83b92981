"""The SAE stage of `interp demo`: a small TopK SAE on the demo model's middle residual stream.

Registered (by the lead, in pyproject) under the `interp.demo_stages` entry-point group as
`saes = "saes.demo:stage"`. It trains on the residual activations of the demo's own task prompts
(clean and corrupted), evaluates the SAE spliced into the model, and writes a density histogram.
"""

from __future__ import annotations

import datasets
import torch

from interp.demo import DemoContext, StageResult
from saes.config import SAEConfig, TrainConfig
from saes.evaluation import evaluate
from saes.report import density_figure, write_report
from saes.store import ActivationStore
from saes.trainer import Trainer

FIGURE = "sae_density.png"


def stage(ctx: DemoContext) -> StageResult:
    """Train, evaluate and summarise a TopK SAE (about 100-300 steps on the CPU).

    Example:
        >>> result = stage(ctx)  # doctest: +SKIP
        >>> result.metrics["ce_loss_recovered"]  # doctest: +SKIP
    """
    model = ctx.model
    hook = f"blocks.{model.cfg.n_layers // 2}.hook_resid_post"
    tokens = torch.cat([ctx.batch.clean, ctx.batch.corrupted]).cpu()  # [n, pos]
    dataset = datasets.Dataset.from_dict({"input_ids": tokens.tolist()})
    batch_size = min(256, tokens.numel() // 2)
    store = ActivationStore(
        model, dataset, hook, context_len=tokens.shape[1], batch_size=batch_size, seed=ctx.seed
    )
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
    sae = Trainer(cfg, train_cfg).fit(store.batches(n_tokens=(steps + 1) * batch_size))
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


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
