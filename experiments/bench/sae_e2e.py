"""End-to-end SAE training speed: `interp sae train` against its floor and SAELens's own runner.

Setting: `shakespeare-tiny` (the zoo's 2-layer GPT-2 LM, d_model 128), hook `blocks.0.hook_resid_post`,
TopK (by default k 16, expansion 8, batch 1024 activations: `sae train`'s defaults), 64-token windows of the shipped corpus. Contenders, each
over the same number of training tokens, interleaved round by round, medians:

- `e2e`: `saes.pipeline.train_run` (what `interp sae train` runs): tokenising, the activation store
  (forward to the hook only, shuffle buffer) and the trainer; tokens/s as `result.json` reports it
  (the training part: store + trainer, not the evaluation after it). On two or more cores the store
  runs on a background thread while the trainer steps (`saes.prefetch`), the torch threads split
  between the two;
- `e2e_serial`: the same with the batches computed in the trainer's thread (`prefetch=False`);
- `forward_to_hook`: the model alone on the same windows, 16 at a time, up to the hook's block;
- `train_step`: `saes.Trainer.fit` alone on activations already in memory (same configs);
- `saelens_runner`: SAELens's `LanguageModelSAETrainingRunner` on the same model (converted to
  TransformerLens offline), hook, windows and token count (no wandb, no checkpoints, no evals).

Reported, by wall-clock and by CPU (process) time: tokens/s of each; `e2e_over_floor` = e2e time per
token / (forward time + step time per token) (target <= 1.15; below 1 when the two overlap);
`prefetch_speedup` = serial time / e2e time; `e2e_over_saelens` = e2e tokens/s over SAELens runner
tokens/s (target >= 3). Ratios are taken within each round, then the median over rounds. Every
contender runs with the process's torch threads (the thread policy gives one per free core; set
`OMP_NUM_THREADS` to fix it): SAELens's runner and the floor's parts use them within each op, ours
splits them between the store's thread and the trainer's. On a shared machine the CPU-time figures
move less than the wall-clock ones; with background threads, CPU time is the work done, not the wait.

python experiments/bench/sae_e2e.py [--tokens 200000] [--rounds 3] [--device cuda] [--no-saelens]
    [--k 16] [--expansion 8] [--batch 1024]
"""

from __future__ import annotations

import os

from interp.threads import apply_thread_policy

apply_thread_policy()  # the CLI's thread policy, before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import interp  # noqa: E402
from interp.io import atomic_write_text, package_versions  # noqa: E402
from saes.config import SAEConfig, TrainConfig  # noqa: E402
from saes.pipeline import RunInputs, _split, load_dataset, model_batch_windows, train_run  # noqa: E402
from saes.store import ActivationStore, token_windows  # noqa: E402
from saes.trainer import Trainer  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "sae_e2e.json"
MODEL, HOOK, K, EXPANSION, BATCH, CTX = "shakespeare-tiny", "blocks.0.hook_resid_post", 16, 8, 1024, 64


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def e2e(tokens: int, device: str, prefetch: bool = True) -> tuple[float, float]:
    """Seconds per token (wall, CPU) of the training part of `interp sae train`, from its result.json."""
    inputs = RunInputs(
        MODEL,
        HOOK,
        "topk",
        k=K,
        expansion=EXPANSION,
        tokens=tokens,
        batch_size=BATCH,
        context_len=CTX,
        eval_windows=2,
        device=device,
    )
    with tempfile.TemporaryDirectory() as out:
        result = train_run(inputs, Path(out) / "run", progress=False, prefetch=prefetch)
    train = result["metrics"]["train"]
    return train["seconds"] / train["tokens"], train["cpu_seconds"] / train["tokens"]


class Clock:
    """Wall-clock and CPU (process) seconds of a block; on a shared machine CPU time moves less."""

    def __init__(self, device: str) -> None:
        self.device = device

    def __enter__(self) -> Clock:
        _sync(self.device)
        self.start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.wall = time.perf_counter() - self.start[0]
        self.cpu = time.process_time() - self.start[1]


def forward_to_hook(model, windows: torch.Tensor, device: str) -> tuple[float, float]:
    """Seconds per token (wall, CPU) of the forward up to the hook's block alone, as many windows per
    call as the store takes."""
    with Clock(device) as clock, torch.no_grad():
        for chunk in windows.split(model_batch_windows(CTX)):
            model.run_with_cache(chunk.to(device), names=HOOK, stop_at_layer=1)
    return clock.wall / windows.numel(), clock.cpu / windows.numel()


def train_step(batches: list[torch.Tensor], d_in: int, steps: int, device: str) -> tuple[float, float]:
    """Seconds per token (wall, CPU) of `Trainer.fit` on activations already on the device (the
    pipeline's configs)."""
    cfg = SAEConfig("topk", d_in=d_in, d_sae=d_in * EXPANSION, k=K, hook_in=HOOK)
    tc = TrainConfig(
        lr=1e-3,
        batch_size=BATCH,
        total_steps=steps,
        lr_warmup_steps=min(100, steps // 10),
        lr_decay_steps=steps // 5,
        progress=False,
        dead_window_tokens=min(1_000_000, steps * BATCH // 4),
    )
    with Clock(device) as clock:
        Trainer(cfg, tc, device=device).fit(batches[i % len(batches)] for i in range(steps + 1))
    return clock.wall / (steps * BATCH), clock.cpu / (steps * BATCH)


def saelens_runner(model, windows: torch.Tensor, tokens: int, device: str) -> tuple[float, float] | None:
    """Seconds per token (wall, CPU) of SAELens's own training runner on the same model, hook and
    windows."""
    try:
        import datasets
        from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig
        from sae_lens.saes.topk_sae import TopKTrainingSAEConfig

        from interp.bench import transformer_lens_gpt2
    except ImportError:
        return None
    tl = transformer_lens_gpt2(model.hf_model.cpu()).to(device)
    model.hf_model.to(device)
    d = model.cfg.d_model
    cfg = LanguageModelSAERunnerConfig(
        sae=TopKTrainingSAEConfig(d_in=d, d_sae=d * EXPANSION, k=K, device=device),
        model_name="gpt2",  # unused: the model is passed in
        hook_name=HOOK,
        dataset_path="unused",  # unused: the dataset is passed in
        is_dataset_tokenized=True,
        context_size=CTX,
        training_tokens=tokens,
        train_batch_size_tokens=BATCH,
        store_batch_size_prompts=model_batch_windows(CTX),  # windows per forward, as ours (its default: 32)
        n_batches_in_buffer=8 * BATCH // CTX,  # its buffer holds this x context_size rows: 8 batches, as ours
        prepend_bos=False,
        device=device,
        act_store_device=device,
        lr=1e-3,
        logger=LoggingConfig(log_to_wandb=False),
        n_checkpoints=0,
        save_final_checkpoint=False,
        n_eval_batches=0,
        output_path=None,
        verbose=False,
    )
    ds = datasets.Dataset.from_dict({"input_ids": windows.tolist()})
    runner = LanguageModelSAETrainingRunner(cfg, override_dataset=ds, override_model=tl)
    with Clock(device) as clock:
        runner.run()
    return clock.wall / tokens, clock.cpu / tokens


def main() -> None:
    global K, EXPANSION, BATCH
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tokens",
        type=int,
        default=200_000,
        help="training tokens per contender and round (sae train's default)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians over them)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--k", type=int, default=K, help="active latents (default: 16)")
    parser.add_argument(
        "--expansion", type=int, default=EXPANSION, help="d_sae / d_in (default: 8, as sae train)"
    )
    parser.add_argument(
        "--batch", type=int, default=BATCH, help="activations per step (default: 1024, as sae train)"
    )
    parser.add_argument("--no-saelens", action="store_true", help="leave SAELens's runner out")
    parser.add_argument("--out", type=Path, default=None, help=f"default {OUT} (or sae_e2e_<device>.json)")
    args = parser.parse_args()
    K, EXPANSION, BATCH = args.k, args.expansion, args.batch
    out = args.out or (
        OUT if args.device == "cpu" else OUT.with_name(f"sae_e2e_{args.device.split(':')[0]}.json")
    )
    device = args.device
    model = interp.load(MODEL, device=device)
    train_ds, _ = _split(load_dataset(None), eval_rows=200)
    n_windows = -(-args.tokens // CTX) + 16
    windows = token_windows(model, train_ds, n_windows, CTX)  # [n, CTX]
    store = ActivationStore(model, train_ds, HOOK, context_len=CTX, batch_size=BATCH)
    batches = [b[HOOK] for _, b in zip(range(16), store.batches(16 * BATCH), strict=False)]
    steps = args.tokens // BATCH
    names = ("e2e", "e2e_serial", "forward_to_hook", "train_step", "saelens_runner")
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        samples["e2e"].append(e2e(args.tokens, device))
        samples["e2e_serial"].append(e2e(args.tokens, device, prefetch=False))
        samples["forward_to_hook"].append(forward_to_hook(model, windows, device))
        samples["train_step"].append(train_step(batches, model.cfg.d_model, steps, device))
        if not args.no_saelens:
            found = saelens_runner(model, windows, args.tokens, device)
            if found is not None:
                samples["saelens_runner"].append(found)
        print(
            f"round {r + 1} tokens/s (wall):",
            {k: round(1 / v[-1][0]) for k, v in samples.items() if v},
            flush=True,
        )
    results = {
        "setting": {
            "model": MODEL,
            "hook": HOOK,
            "arch": "topk",
            "k": K,
            "expansion": EXPANSION,
            "batch_size": BATCH,
            "context_len": CTX,
            "tokens": args.tokens,
            "rounds": args.rounds,
        },
        "device": device,
        "threads": torch.get_num_threads(),
        "omp": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
        "huge_pages": os.environ.get("THP_MEM_ALLOC_ENABLE"),  # the thread policy's choice, or the user's
        "samples_seconds_per_token": {k: v for k, v in samples.items() if v},
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "versions": package_versions(("sae-lens", "transformer-lens")),
    }
    for i, clock in enumerate(("wall", "cpu")):
        per_round = [{k: v[r][i] for k, v in samples.items() if v} for r in range(args.rounds)]
        floor = [p["forward_to_hook"] + p["train_step"] for p in per_round]
        results[clock] = {
            "tokens_per_second": {k: 1 / statistics.median(x[i] for x in v) for k, v in samples.items() if v},
            # ratios within each round (same load), then the median over rounds
            "e2e_over_floor": statistics.median(p["e2e"] / f for p, f in zip(per_round, floor, strict=True)),
            "serial_over_floor": statistics.median(
                p["e2e_serial"] / f for p, f in zip(per_round, floor, strict=True)
            ),
            "prefetch_speedup": statistics.median(p["e2e_serial"] / p["e2e"] for p in per_round),
            "e2e_over_saelens": statistics.median(p["saelens_runner"] / p["e2e"] for p in per_round)
            if samples["saelens_runner"]
            else None,
        }
    atomic_write_text(out, json.dumps(results, indent=2))
    print(json.dumps({k: results[k] for k in ("wall", "cpu", "loadavg_before", "loadavg_after")}, indent=2))
    print("wrote", out)


if __name__ == "__main__":
    main()
