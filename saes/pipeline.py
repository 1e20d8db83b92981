"""End-to-end runs behind `interp sae train` and `interp sae eval`: model + data -> SAE folder + report.

A run folder holds
- `sae/`: the trained SAE (SAELens layout), `checkpoints/`: training checkpoints,
- `result.json`: inputs, configs, seed, package versions and metrics (written atomically),
- `eval.json`, `density.png`, `features.html`: the evaluation report.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import datasets
import torch

import interp
from interp.errors import InterpError
from interp.io import write_result
from saes import run_checks
from saes.architectures.registry import REGISTRY
from saes.config import SAEConfig, TrainConfig
from saes.evaluation import evaluate
from saes.format import RESULT_FILENAME
from saes.io import load
from saes.report import write_report
from saes.run_inputs import RunInputs
from saes.store import ActivationStore, token_windows
from saes.trainer import Trainer

logger = logging.getLogger(__name__)


def load_dataset(spec: str | None) -> Any:
    """`None` or "shakespeare": the corpus shipped with `interp.data`; otherwise a `save_to_disk` folder."""
    if spec is None or spec == "shakespeare":
        try:
            from interp import data
        except ImportError as exc:
            raise InterpError(
                "no --dataset given and interp.data (the shipped corpus) is unavailable"
            ) from exc
        return data.shakespeare()
    path = Path(spec)
    if not path.exists():
        raise InterpError(f"dataset {spec!r} not found: pass a folder written by datasets' save_to_disk")
    try:
        return datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise InterpError(f"{spec} is not a datasets folder ({exc})") from exc


def _split(dataset: Any, eval_rows: int) -> tuple[Any, Any]:
    """Hold out the last rows for evaluation (all of it for both when the dataset is tiny)."""
    n = len(dataset)
    if n == 0:
        raise InterpError("the dataset is empty")
    held = min(eval_rows, n // 5)
    if held == 0:
        return dataset, dataset
    return dataset.select(range(n - held)), dataset.select(range(n - held, n))


def model_batch_windows(context_len: int) -> int:
    """Windows per forward of `sae train`'s store: 16, or more for short windows, up to 2048 tokens.

    Each forward has a fixed cost in Python (the model's modules, masks and hooks) that competes with
    the trainer's thread; at 64-token windows, 32 per forward trained 5% faster than 16 with the
    store on a background thread (shakespeare-tiny, 2 cores)."""
    return max(16, 2048 // max(1, context_len))


def train_run(
    inputs: RunInputs,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    prefetch: bool = True,
) -> dict[str, Any]:
    """Train, save, evaluate and write `result.json`; returns its content. `prefetch=False` computes
    the activation batches in the trainer's thread (`TrainConfig.prefetch`).

    Example:
        >>> train_run(RunInputs("shakespeare-tiny", "blocks.1.hook_resid_post", "topk", k=16), "runs/topk")  # doctest: +SKIP
    """
    run_checks.check_numbers(inputs)
    out = run_checks.prepare_out(out, inputs, force=force, resume=resume)  # before any work starts
    model = interp.load(inputs.model, device=inputs.device)
    if inputs.context_len is None:
        inputs = replace(inputs, context_len=run_checks.default_context_len(model))
    hooks = [inputs.hook] + ([inputs.hook_out] if inputs.hook_out and inputs.hook_out != inputs.hook else [])
    run_checks.check_hooks(hooks, model, inputs.context_len)
    train_ds, eval_ds = _split(load_dataset(inputs.dataset), eval_rows=200)
    store = ActivationStore(
        model,
        train_ds,
        hooks,
        context_len=inputs.context_len,
        batch_size=inputs.batch_size,
        model_batch_size=model_batch_windows(inputs.context_len),
        cache_dir=inputs.cache_dir,
        seed=inputs.seed,
    )
    widths = store.widths()
    sae_cfg = SAEConfig(
        arch=inputs.arch,
        d_in=widths[inputs.hook],
        d_sae=widths[inputs.hook] * inputs.expansion,
        # an unknown arch needs no k here: SAEConfig refuses it with the list of architectures
        k=inputs.resolved_k(inputs.arch in REGISTRY and REGISTRY[inputs.arch].needs_k),
        d_out=widths[hooks[-1]] if len(hooks) > 1 else None,
        hook_in=inputs.hook,
        hook_out=inputs.hook_out if len(hooks) > 1 else None,
        model_name=inputs.model,
    )
    steps = max(1, inputs.tokens // inputs.batch_size)
    train_cfg = TrainConfig(
        lr=inputs.lr,
        batch_size=inputs.batch_size,
        total_steps=steps,
        lr_warmup_steps=min(100, steps // 10),
        lr_decay_steps=steps // 5,
        sparsity_coef=inputs.sparsity_coef,
        sparsity_warmup_steps=steps // 10,
        seed=inputs.seed,
        checkpoint_dir=str(out / "checkpoints"),
        checkpoint_every=max(1, steps // 4),
        dead_window_tokens=min(1_000_000, inputs.tokens // 4),
        progress=progress,
        prefetch=prefetch,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer = Trainer(sae_cfg, train_cfg, device=inputs.device)
    run_checks.record_inputs(out, inputs)  # what --resume compares against
    sae = trainer.fit(store.batches(n_tokens=steps * inputs.batch_size), resume=resume)  # no spare rows
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    sae.save(out / "sae")
    window = dict(trainer.last_metrics)
    previous = out / RESULT_FILENAME
    if not window and previous.is_file():  # a resumed run that had already finished: no step ran here
        train = json.loads(previous.read_text())["metrics"]["train"]
    else:
        train = {
            # means over the last logging window; `mse` per element in model units, as in `eval`
            "mse": window.pop("mse_per_element", None),  # None only if no step ran and no earlier result
            "mse_normalized": window.pop("mse", None),
            **window,
            "steps": trainer.step,
            "tokens": trainer.tokens,
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu_seconds, 3),  # all threads of this process; wall-clock above
            "tokens_per_second": round(trainer.tokens / max(seconds, 1e-9)),
        }
    metrics = {"train": train, "eval": _evaluate_into(sae, model, eval_ds, inputs, out)}
    return write_result(
        out,
        command="sae train",
        inputs=asdict(inputs),
        config={"sae": sae_cfg.to_dict(), "train": train_cfg.to_dict()},
        seed=inputs.seed,
        metrics=metrics,
    )


def eval_run(run_dir: str | Path, *, eval_windows: int | None = None) -> dict[str, Any]:
    """Re-evaluate the SAE of a `sae train` folder; rewrites the report and `result.json`'s metrics."""
    run_dir = Path(run_dir)
    result_path = run_dir / RESULT_FILENAME
    if not result_path.is_file():
        raise InterpError(f"{run_dir} is not an `interp sae train` folder (no {RESULT_FILENAME})")
    previous = json.loads(result_path.read_text())
    inputs = RunInputs(**previous["inputs"])
    if eval_windows is not None:
        inputs = RunInputs(**{**previous["inputs"], "eval_windows": eval_windows})
    sae = load(run_dir / "sae", device=inputs.device)
    model = interp.load(inputs.model, device=inputs.device)
    _, eval_ds = _split(load_dataset(inputs.dataset), eval_rows=200)
    metrics = _evaluate_into(sae, model, eval_ds, inputs, run_dir)
    return write_result(
        run_dir,
        command="sae eval",
        inputs=previous["inputs"],
        config=previous["config"],
        seed=previous["seed"],
        metrics={**previous.get("metrics", {}), "eval": metrics},
    )


def _evaluate_into(sae: Any, model: Any, eval_ds: Any, inputs: RunInputs, out: Path) -> dict[str, Any]:
    tokens = token_windows(model, eval_ds, inputs.eval_windows, inputs.context_len)  # no second store
    result = evaluate(sae, model, tokens.to(torch.device(inputs.device)))
    write_report(result, out, title=f"{sae.cfg.arch} SAE on {inputs.model} {sae.cfg.hook_in}")
    return result.metrics
