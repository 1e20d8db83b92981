"""`interp demo`: the toolkit's main job on the embedded default model, as a report folder.

Stages run in order and each returns a `StageResult` (metrics, figures, a paragraph for report.md).
The core stages live here; `saes` and `circuits` add theirs (an SAE, a patching heatmap, a circuit
graph) through the `interp.demo_stages` entry-point group, each entry a function
`stage(ctx: DemoContext) -> StageResult`, ordered by entry-point name. No upward imports needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import torch

from interp import zoo
from interp.errors import InterpError
from interp.hooked import HookedModel
from interp.io import atomic_dir, atomic_write_text, check_out_dir, write_result
from interp.loading import load
from interp.tasks import TaskBatch, get
from interp.view.record import attention_payload, write_attention
from interp.view.tokens import scheme_of

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "ioi-tiny"


@dataclass
class DemoContext:
    """What every stage can use: the model, a task batch, the folder being written, and the mode."""

    model: HookedModel
    model_name: str
    task: str
    batch: TaskBatch
    out: Path
    quick: bool
    seed: int
    shared: dict = field(default_factory=dict)  # stages may leave things for later stages

    def token_labels(self, example: int = 0) -> list[str]:
        ids = self.batch.clean[example].tolist()
        return self.model.tokenizer.convert_ids_to_tokens(ids)


@dataclass(frozen=True)
class StageResult:
    title: str
    metrics: dict
    figures: tuple[str, ...] = ()
    text: str = ""


Stage = Callable[[DemoContext], StageResult]


def evaluate_stage(ctx: DemoContext) -> StageResult:
    with torch.no_grad():
        logits = ctx.model(ctx.batch.clean)
    metrics = ctx.batch.metrics(logits)
    card = zoo.card(ctx.model_name)
    text = (
        f"`{ctx.model_name}` on `{ctx.task}` ({len(ctx.batch)} fresh prompts, seed {ctx.seed}): accuracy "
        f"{metrics['accuracy']:.3f} (card: {card['accuracy'].get(ctx.task, float('nan')):.3f}), mean logit "
        f"difference {metrics['logit_diff']:.2f}, mean answer probability {metrics['prob']:.3f}."
    )
    return StageResult("Task performance", metrics, text=text)


def cache_stage(ctx: DemoContext) -> StageResult:
    start = time.perf_counter()
    with torch.no_grad():
        _, cache = ctx.model.run_with_cache(ctx.batch.clean)
    seconds = time.perf_counter() - start
    ctx.shared["cache"] = cache
    metrics = {"hooks_cached": len(cache), "cache_megabytes": cache.nbytes() / 2**20, "seconds": seconds}
    text = (
        f"One forward pass cached all {len(cache)} hook points ({metrics['cache_megabytes']:.1f} MB) in "
        f"{seconds * 1e3:.0f} ms; for every block resid_pre + attn_out + mlp_out = resid_post."
    )
    return StageResult("Activation cache", metrics, text=text)


def logit_lens_stage(ctx: DemoContext) -> StageResult:
    import matplotlib.pyplot as plt

    cache = ctx.shared["cache"]
    end = ctx.batch.positions["END"]
    rows = torch.arange(len(ctx.batch))
    resid = cache.accumulated_resid()[:, rows, end]  # [layer + 1, batch, d_model]
    with torch.no_grad():
        lens = ctx.model.unembed(resid)  # [layer + 1, batch, vocab]
    # plotted and reported: on the host whatever device the model runs on
    diff = (lens[:, rows, ctx.batch.answer] - lens[:, rows, ctx.batch.wrong]).mean(1).cpu()
    prob = lens.softmax(-1)[:, rows, ctx.batch.answer].mean(1).cpu()
    labels = [f"pre {i}" for i in range(len(diff) - 1)] + ["final"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(labels, diff.numpy(), marker="o", label="logit diff (answer - wrong)")
    ax2 = ax.twinx()
    ax2.plot(labels, prob.numpy(), marker="s", color="tab:orange", label="P(answer)")
    ax.set_xlabel("residual stream read before block / after last")
    ax.set_ylabel("logit difference")
    ax2.set_ylabel("probability")
    ax.set_title(f"Logit lens: {ctx.model_name} on {ctx.task}")
    fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88), fontsize=8)
    fig.tight_layout()
    fig.savefig(ctx.out / "logit_lens.png", dpi=120)
    plt.close(fig)
    metrics = {"logit_diff_by_layer": diff.tolist(), "prob_by_layer": prob.tolist()}
    text = f"Read through the final norm and unembedding, the answer emerges at `{labels[int(diff.argmax())]}` (max logit difference {float(diff.max()):.2f})."
    return StageResult("Logit lens", metrics, ("logit_lens.png",), text)


def attention_figure(patterns: torch.Tensor, tokens: list[str], title: str):
    """One heatmap per head of `patterns` [layer, head, q_pos, k_pos], query rows and key columns
    labelled with `tokens`, and one colour bar (a matplotlib `Figure`, no pyplot state)."""
    from matplotlib.figure import Figure

    n_layers, n_heads = patterns.shape[:2]
    # constrained layout is solved while saving: one drawing pass, where tight_layout needs two
    fig = Figure(figsize=(2.2 * n_heads + 0.8, 2.3 * n_layers + 0.6), layout="constrained")
    axes = fig.subplots(n_layers, n_heads, squeeze=False)
    for layer in range(n_layers):
        for head in range(n_heads):
            ax = axes[layer][head]
            image = ax.imshow(patterns[layer, head].numpy(), cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"L{layer}.H{head}", fontsize=8)
            # token ticks on the outer axes only: the grid shares them (and ticks are what is slow to draw)
            if layer == n_layers - 1:
                ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=5)
                ax.set_xlabel("key position", fontsize=7)
            else:
                ax.set_xticks([])
            if head == 0:
                ax.set_yticks(range(len(tokens)), tokens, fontsize=5)
                ax.set_ylabel("query position", fontsize=7)
            else:
                ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    bar = fig.colorbar(image, ax=axes, fraction=0.025, pad=0.02)
    bar.set_label("attention probability", fontsize=7)
    return fig


def attention_stage(ctx: DemoContext) -> StageResult:
    cache = ctx.shared["cache"]
    tokens = ctx.token_labels(0)
    n_layers, n_heads = ctx.model.cfg.n_layers, ctx.model.cfg.n_heads
    patterns = cache.stack("attn.hook_pattern")[:, 0].cpu()  # [layer, head, q_pos, k_pos]
    write_attention(ctx.out, attention_payload(tokens, patterns, scheme_of(ctx.model.tokenizer)))
    figure = attention_figure(patterns, tokens, f"Attention patterns, example 0: {ctx.batch.clean_text[0]}")
    figure.savefig(ctx.out / "attention_patterns.png", dpi=120)
    end = int(ctx.batch.positions["END"][0])
    top = {}
    for layer in range(n_layers):
        for head in range(n_heads):
            top[f"L{layer}.H{head}"] = tokens[int(patterns[layer, head, end].argmax())]
    text = (
        "From the final position, each head attends most to: "
        + ", ".join(f"{k} -> `{v}`" for k, v in top.items())
        + "."
    )
    return StageResult(
        "Attention patterns", {"end_position_top_token": top}, ("attention_patterns.png",), text
    )  # attention.json (every head's pattern on example 0) is for `interp view`


CORE_STAGES: tuple[tuple[str, Stage], ...] = (
    ("evaluate", evaluate_stage),
    ("cache", cache_stage),
    ("logit_lens", logit_lens_stage),
    ("attention", attention_stage),
)


def plugin_stages() -> list[tuple[str, Stage]]:
    return [
        (entry.name, entry.load())
        for entry in sorted(entry_points(group="interp.demo_stages"), key=lambda e: e.name)
    ]


def run_demo(
    out: str | Path,
    *,
    model_name: str = DEFAULT_MODEL,
    quick: bool = False,
    force: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run every stage and write the report folder atomically; returns the result.json payload."""
    check_out_dir(out, force)  # before any work starts
    card_tasks = zoo.card(model_name).get("tasks") or []
    if not card_tasks:
        raise InterpError(
            f"{model_name}'s model card names no task, so the demo has nothing to run on it; pick a model "
            f"with a task (e.g. {DEFAULT_MODEL}; `interp zoo list` shows each model's tasks)"
        )
    torch.manual_seed(seed)
    model = load(model_name)
    task = card_tasks[0]
    batch = get(task).generate(32 if quick else 128, seed=seed)
    results: dict[str, StageResult] = {}
    with atomic_dir(out, force=force) as folder:
        ctx = DemoContext(model, model_name, task, batch, folder, quick, seed)
        for name, stage in (*CORE_STAGES, *plugin_stages()):
            if progress is not None:
                progress(name)
            start = time.perf_counter()
            results[name] = stage(ctx)
            logger.info("demo stage %s took %.1f s", name, time.perf_counter() - start)
        payload = write_result(
            folder,
            command="demo",
            inputs={"model": model_name, "task": task, "n_prompts": len(batch)},
            config={"quick": quick},
            seed=seed,
            metrics={name: r.metrics for name, r in results.items()},
            figures=[f for r in results.values() for f in r.figures],
        )
        atomic_write_text(folder / "report.md", _report(model_name, task, results))
    return payload


def _report(model_name: str, task: str, results: dict[str, StageResult]) -> str:
    lines = [f"# interp demo: `{model_name}` on `{task}`", ""]
    for result in results.values():
        lines += [f"## {result.title}", "", result.text, ""]
        lines += [f"![{result.title}]({figure})" for figure in result.figures]
        if result.figures:
            lines.append("")
    return "\n".join(lines)
