"""`interp demo`: the toolkit's main job on the embedded default model, as a report folder.

The stages pass typed values, never a shared dict:

1. `DemoInputs` (the model, a task batch, the folder being written, the mode) is made once;
2. `cache_run(inputs) -> CachedRun` runs the one forward pass every later stage reuses: the clean
   prompts' logits and every hook's activations;
3. every stage is `stage(run: CachedRun) -> StageResult` (metrics, figures, a paragraph for
   report.md, and optionally what it made, as `value`).

The core stages live here; `saes` and `circuits` add theirs (an SAE, a patching heatmap, a circuit
graph) through the `interp.demo_stages` entry-point group, ordered by entry-point name. They receive
the same interp-level `CachedRun`, so no upward imports are needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from interp import zoo
from interp.cache import ActivationCache
from interp.errors import InterpError
from interp.figures import heatmap
from interp.hooked import HookedModel
from interp.io import atomic_dir, atomic_write_text, check_out_dir, save_figure, write_result
from interp.loading import load
from interp.tasks import TaskBatch, get
from interp.view.record import attention_payload, write_attention
from interp.view.tokens import scheme_of

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "ioi-tiny"
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class DemoInputs:
    """What the demo runs on: the model, a task batch, the folder being written, and the mode."""

    model: HookedModel
    model_name: str
    task: str
    batch: TaskBatch
    out: Path
    quick: bool
    seed: int

    def token_labels(self, example: int = 0) -> list[str]:
        ids = self.batch.clean[example].tolist()
        return self.model.tokenizer.convert_ids_to_tokens(ids)


@dataclass(frozen=True, eq=False)
class CachedRun:
    """The cache stage's value, which every later stage takes: the inputs, and one forward pass over
    the clean prompts with every hook recorded."""

    inputs: DemoInputs
    logits: torch.Tensor  # [batch, pos, vocab] on the clean prompts
    cache: ActivationCache  # every hook point of the same pass
    seconds: float  # how long that pass took


@dataclass(frozen=True)
class StageResult(Generic[T]):
    """What a stage reports (title, metrics, figure files, a paragraph) and, as `value`, what it made
    (e.g. the SAE stage's trained SAE), for a caller that wants more than the report."""

    title: str
    metrics: dict
    figures: tuple[str, ...] = ()
    text: str = ""
    value: T | None = None


Stage = Callable[[CachedRun], StageResult[Any]]


def cache_run(inputs: DemoInputs) -> CachedRun:
    """One forward pass over the clean prompts, caching every hook point (the stages' shared input)."""
    start = time.perf_counter()
    with torch.no_grad():
        logits, cache = inputs.model.run_with_cache(inputs.batch.clean)
    return CachedRun(inputs, logits, cache, time.perf_counter() - start)


def evaluate_stage(run: CachedRun) -> StageResult[None]:
    inputs = run.inputs
    metrics = inputs.batch.metrics(run.logits)  # the cached pass's logits: no second forward
    card = zoo.card(inputs.model_name)
    text = (
        f"`{inputs.model_name}` on `{inputs.task}` ({len(inputs.batch)} fresh prompts, seed {inputs.seed}): "
        f"accuracy {metrics['accuracy']:.3f} (card: {card['accuracy'].get(inputs.task, float('nan')):.3f}), "
        f"mean logit difference {metrics['logit_diff']:.2f}, mean answer probability {metrics['prob']:.3f}."
    )
    return StageResult("Task performance", metrics, text=text)


def cache_stage(run: CachedRun) -> StageResult[None]:
    cache, seconds = run.cache, run.seconds
    metrics = {"hooks_cached": len(cache), "cache_megabytes": cache.nbytes() / 2**20, "seconds": seconds}
    text = (
        f"One forward pass cached all {len(cache)} hook points ({metrics['cache_megabytes']:.1f} MB) in "
        f"{seconds * 1e3:.0f} ms; for every block resid_pre + attn_out + mlp_out = resid_post."
    )
    return StageResult("Activation cache", metrics, text=text)


def logit_lens_stage(run: CachedRun) -> StageResult[None]:
    from matplotlib.figure import Figure

    inputs, batch = run.inputs, run.inputs.batch
    end = batch.positions["END"]
    rows = torch.arange(len(batch))
    resid = run.cache.accumulated_resid()[:, rows, end]  # [layer + 1, batch, d_model]
    with torch.no_grad():
        lens = inputs.model.unembed(resid)  # [layer + 1, batch, vocab]
    # plotted and reported: on the host whatever device the model runs on
    diff = (lens[:, rows, batch.answer] - lens[:, rows, batch.wrong]).mean(1).cpu()
    prob = lens.softmax(-1)[:, rows, batch.answer].mean(1).cpu()
    labels = [f"pre {i}" for i in range(len(diff) - 1)] + ["final"]
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    ax.plot(labels, diff.numpy(), marker="o", label="logit diff (answer - wrong)")
    ax2 = ax.twinx()
    ax2.plot(labels, prob.numpy(), marker="s", color="tab:orange", label="P(answer)")
    ax.set_xlabel("residual stream read before block / after last")
    ax.set_ylabel("logit difference")
    ax2.set_ylabel("probability")
    ax.set_title(f"Logit lens: {inputs.model_name} on {inputs.task}")
    fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88), fontsize=8)
    fig.tight_layout()
    save_figure(fig, inputs.out / "logit_lens.png", dpi=120)
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
            # token ticks on the outer axes only: the grid shares them (and ticks are what is slow to draw)
            bottom, left = layer == n_layers - 1, head == 0
            image = heatmap(
                ax,
                patterns[layer, head].numpy(),
                rows=tokens if left else None,
                cols=tokens if bottom else None,
                cmap="Blues",
                vmin=0,
                vmax=1,
                rotate=True,
                fontsize=5,
                aspect="equal",
            )
            ax.set_title(f"L{layer}.H{head}", fontsize=8)
            if bottom:
                ax.set_xlabel("key position", fontsize=7)
            if left:
                ax.set_ylabel("query position", fontsize=7)
    fig.suptitle(title, fontsize=8)
    bar = fig.colorbar(image, ax=axes, fraction=0.025, pad=0.02)
    bar.set_label("attention probability", fontsize=7)
    return fig


def attention_stage(run: CachedRun) -> StageResult[None]:
    inputs, batch, model = run.inputs, run.inputs.batch, run.inputs.model
    tokens = inputs.token_labels(0)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    patterns = run.cache.stack("attn.hook_pattern")[:, 0].cpu()  # [layer, head, q_pos, k_pos]
    write_attention(inputs.out, attention_payload(tokens, patterns, scheme_of(model.tokenizer)))
    figure = attention_figure(patterns, tokens, f"Attention patterns, example 0: {batch.clean_text[0]}")
    save_figure(figure, inputs.out / "attention_patterns.png", dpi=120)
    end = int(batch.positions["END"][0])
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
        inputs = DemoInputs(model, model_name, task, batch, folder, quick, seed)
        stages = (*CORE_STAGES, *plugin_stages())
        if progress is not None:
            progress("cache")
        run = cache_run(inputs)  # the one forward pass every stage reads
        for name, stage in stages:
            if progress is not None:
                progress(name)
            start = time.perf_counter()
            results[name] = stage(run)
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
