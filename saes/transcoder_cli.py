"""`interp sae train-transcoders MODEL --out DIR`: train a transcoder set (every layer at once, from one
activation pass) and save it in the transcoder-set layout (`saes.transcoder_set`), with result.json."""

from __future__ import annotations

import json
import time

import typer


def register(sae_app: typer.Typer) -> None:
    @sae_app.command("train-transcoders")
    def train_transcoders(
        model: str = typer.Argument(..., help="Zoo name, local model folder, or hub id."),
        out: str = typer.Option(..., "--out", help="Output folder (the transcoder set)."),
        arch: str = typer.Option("topk", "--arch", help="topk or jumprelu."),
        cross_layer: bool = typer.Option(False, "--cross-layer", help="Train a cross-layer transcoder."),
        k: int = typer.Option(16, "--k", help="Active features per token per layer (topk)."),
        expansion: int = typer.Option(4, "--expansion", help="Features per layer = expansion * d_model."),
        tokens: int = typer.Option(100_000, "--tokens", help="Training activations."),
        dataset: str = typer.Option(
            None, "--dataset", help="datasets save_to_disk folder (default: the shipped corpus)."
        ),
        context_len: int = typer.Option(64, "--context-len", help="Tokens per window."),
        batch_size: int = typer.Option(256, "--batch-size", help="Activations per step."),
        lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate."),
        sparsity_coef: float = typer.Option(1.0, "--sparsity-coef", help="L0 coefficient (jumprelu)."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        as_json: bool = typer.Option(False, "--json", help="Print result.json."),
    ) -> None:
        """Train transcoders for every layer of MODEL (MLP input -> MLP output) and save them to OUT."""
        import interp
        from interp.io import write_result
        from saes.config import TrainConfig
        from saes.pipeline import load_dataset
        from saes.transcoder_set import train_transcoder_set

        loaded = interp.load(model, device=device)
        tc = TrainConfig(
            lr=lr,
            batch_size=batch_size,
            total_tokens=tokens,
            sparsity_coef=sparsity_coef,
            seed=seed,
            progress=not as_json,
        )
        start = time.perf_counter()
        tset = train_transcoder_set(
            loaded,
            load_dataset(dataset),
            arch=arch,
            cross_layer=cross_layer,
            expansion=expansion,
            k=k,
            tokens=tokens,
            context_len=context_len,
            train_cfg=tc,
            model_name=model,
            device=device,
        )
        seconds = time.perf_counter() - start
        tset.save(out)
        payload = write_result(
            out,
            command="sae train-transcoders",
            inputs={"model": model, "dataset": dataset or "shakespeare"},
            config={
                "arch": arch,
                "cross_layer": cross_layer,
                "k": k,
                "expansion": expansion,
                "tokens": tokens,
                "context_len": context_len,
                "train": tc.to_dict(),
            },
            seed=seed,
            metrics={
                "kind": tset.kind,
                "n_layers": tset.n_layers,
                "seconds": seconds,
                "tokens_per_second": tokens / seconds,
            },
        )
        if as_json:
            print(json.dumps(payload, indent=2))
        else:
            print(f"trained a {tset.kind} transcoder set ({tset.n_layers} layers) in {seconds:.1f}s -> {out}")
