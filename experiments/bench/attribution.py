"""Attribution-graph benchmark: writes experiments/bench/results/attribution.json.

1. Graph time: `attribute` on a 32-token prompt of the shipped corpus (all active features and the top
   logits as targets, `--batch-size` targets per batched forward+backward) against one forward+backward
   pass of the same model on the same prompt. Rounds interleave the two; the ratio is the median of the
   per-round ratios.
2. Transcoder-set training throughput on the same activations (MLP inputs and outputs of every layer,
   recorded once): one optimiser step per batch of `--train-batch` positions, for
   - `ours_set_per_layer`: the whole per-layer set as one block-diagonal `clt_topk` SAE (one `Trainer`);
   - `ours_set_cross_layer`: a cross-layer transcoder (`clt_topk`, block upper-triangular decoder);
   - `ours_separate`: one `saes.Trainer` TopK transcoder per layer, stepped in turn;
   - `saelens_separate`: SAELens's `TopKTrainingSAE` per layer driven by `SAETrainer._train_step`, fed
     the same MLP inputs. SAELens 6's trainer reconstructs its input (it has no transcoder training
     step), so this is its step for an SAE of the same shape -- the same matmuls, another target.
   Tokens per second count positions (each trains every layer); rounds interleave the contenders.

OMP_WAIT_POLICY=PASSIVE python experiments/bench/attribution.py [--device cuda] [--repeats 5]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import interp  # noqa: E402
from circuits.attribution.graph import attribute  # noqa: E402
from circuits.attribution.replacement import ReplacementModel  # noqa: E402
from interp.io import atomic_write_json  # noqa: E402
from saes import SAEConfig, TrainConfig, Trainer  # noqa: E402
from saes.store import ActivationStore  # noqa: E402
from saes.transcoder_set import HOOK_IN, HOOK_OUT, TranscoderSet, train_transcoder_set  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "attribution.json"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def graph_timing(model, tset: TranscoderSet, args) -> dict:
    # the first prompt_len tokens of a validation text (the whole text is longer than the context)
    ids = model.tokenizer(interp.data.shakespeare("validation")["text"][0])["input_ids"][: args.prompt_len]
    tokens = torch.tensor([ids], device=model.device)  # [1, prompt_len]
    rm = ReplacementModel(model, tset)

    def forward_backward() -> None:
        model.hf_model.zero_grad(set_to_none=True)
        model(tokens)[0, -1].max().backward()

    graph = attribute(rm, tokens, batch_size=args.batch_size)  # warm-up
    forward_backward()
    fb, gr = [], []
    for _ in range(args.repeats):
        fb.append(_timed(forward_backward, args.device))
        gr.append(_timed(lambda: attribute(rm, tokens, batch_size=args.batch_size), args.device))
    n_targets = graph.n_features + len(graph.logit_tokens)
    return {
        "prompt_tokens": int(tokens.shape[1]),
        "n_features": graph.n_features,
        "n_targets": n_targets,
        "batch_size": args.batch_size,
        "backward_passes": -(-n_targets // args.batch_size),
        "forward_backward_s": statistics.median(fb),
        "graph_s": statistics.median(gr),
        "graph_over_forward_backward": statistics.median(g / f for g, f in zip(gr, fb, strict=True)),
    }


def _ours_step(cfg: SAEConfig, tc: TrainConfig, first, device: str) -> Callable:
    trainer = Trainer(cfg, tc, device=device)
    trainer.fit([first])
    trainer.sae.train()

    def step(x, target) -> None:
        terms = trainer._train_step(x, target, None)
        trainer.step += 1
        trainer._track_latents(terms.acts, x.shape[0])

    return step


def _saelens_step(d: int, n: int, k: int, batch: int, device: str) -> Callable:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=n, k=k, dtype="float32", device=device))
    trainer_cfg = SAETrainerConfig(
        total_training_samples=10**9,
        train_batch_size_samples=batch,
        lr=3e-3,
        lr_end=3e-4,
        lr_warm_up_steps=0,
        lr_decay_steps=0,
        device=device,
    )
    trainer = SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=iter(()))

    def step(x, target) -> None:
        trainer._train_step(sae=sae, sae_in=x)
        trainer.n_training_steps += 1
        trainer.n_training_samples += x.shape[0]

    return step


def training_throughput(model, args) -> dict:
    n_layers, d = model.cfg.n_layers, model.cfg.d_model
    n, k = args.expansion * d, args.k
    hooks = [HOOK_IN.format(l=lyr) for lyr in range(n_layers)] + [
        HOOK_OUT.format(l=lyr) for lyr in range(n_layers)
    ]
    store = ActivationStore(
        model, interp.data.shakespeare(), hooks, context_len=64, batch_size=args.train_batch
    )
    pool = [{h: v.to(args.device) for h, v in b.items()} for b in store.batches(args.train_batch * args.pool)]
    cat = [
        (
            torch.cat([b[HOOK_IN.format(l=lyr)] for lyr in range(n_layers)], -1),
            torch.cat([b[HOOK_OUT.format(l=lyr)] for lyr in range(n_layers)], -1),
        )
        for b in pool
    ]
    tc = TrainConfig(lr=3e-3, batch_size=args.train_batch, total_steps=10**9, progress=False)

    def set_cfg(cross: bool) -> SAEConfig:
        return SAEConfig(
            "clt_topk",
            d_in=n_layers * d,
            d_sae=n_layers * n,
            d_out=n_layers * d,
            k=k * n_layers,
            n_layers=n_layers,
            cross_layer=cross,
            hook_in="in",
            hook_out="out",
        )

    per_layer = {
        "ours_set_per_layer": _ours_step(set_cfg(False), tc, cat[0], args.device),
        "ours_set_cross_layer": _ours_step(set_cfg(True), tc, cat[0], args.device),
    }
    separate = [
        _ours_step(
            SAEConfig(
                "topk", d_in=d, d_sae=n, k=k, hook_in=HOOK_IN.format(l=lyr), hook_out=HOOK_OUT.format(l=lyr)
            ),
            tc,
            (pool[0][HOOK_IN.format(l=lyr)], pool[0][HOOK_OUT.format(l=lyr)]),
            args.device,
        )
        for lyr in range(n_layers)
    ]
    contenders: dict[str, Callable[[int], None]] = {
        name: (lambda i, s=step: s(*cat[i % len(cat)])) for name, step in per_layer.items()
    }
    contenders["ours_separate"] = lambda i: [
        s(pool[i % len(pool)][HOOK_IN.format(l=lyr)], pool[i % len(pool)][HOOK_OUT.format(l=lyr)])
        for lyr, s in enumerate(separate)
    ]
    try:
        lens = [_saelens_step(d, n, k, args.train_batch, args.device) for _ in range(n_layers)]
        contenders["saelens_separate"] = lambda i: [
            s(pool[i % len(pool)][HOOK_IN.format(l=lyr)], None) for lyr, s in enumerate(lens)
        ]
    except ImportError:
        pass
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn(0)  # warm-up
    for r in range(args.repeats):
        for name, fn in contenders.items():
            samples[name].append(
                _timed(lambda fn=fn, r=r: [fn(r * args.inner + j) for j in range(args.inner)], args.device)
                / args.inner
            )
    tps = {name: args.train_batch / statistics.median(s) for name, s in samples.items()}
    ratios = {
        f"ours_set_per_layer_vs_{other}": statistics.median(
            b / a for a, b in zip(samples["ours_set_per_layer"], samples[other], strict=True)
        )
        for other in samples
        if other != "ours_set_per_layer"
    }
    return {
        "n_layers": n_layers,
        "d_model": d,
        "features_per_layer": n,
        "k_per_layer": k,
        "batch": args.train_batch,
        "tokens_per_second": tps,
        "speedup_median_of_round_ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="shakespeare-tiny")
    parser.add_argument(
        "--transcoders", default=None, help="transcoder-set folder (default: train a small one)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64, help="targets per backward pass")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--expansion", type=int, default=4)
    parser.add_argument("--train-batch", type=int, default=1024)
    parser.add_argument("--pool", type=int, default=4, help="distinct activation batches, cycled")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    load_before = os.getloadavg()
    model = interp.load(args.model, device=args.device)
    if args.transcoders:
        tset = TranscoderSet.load(args.transcoders, device=args.device)
    else:
        tc = TrainConfig(lr=3e-3, batch_size=256, total_tokens=40_000, progress=False)
        tset = train_transcoder_set(
            model,
            interp.data.shakespeare(),
            k=args.k,
            expansion=args.expansion,
            tokens=40_000,
            train_cfg=tc,
            device=args.device,
        ).to(args.device)
    results = {
        "graph": graph_timing(model, tset, args),
        "training": training_throughput(model, args),
        "environment": {
            "device": args.device,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    print(json.dumps({k: results[k] for k in ("graph", "training")}, indent=2))


if __name__ == "__main__":
    main()
